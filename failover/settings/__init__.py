"""The whole config: its models (``model``: the failover part on top of ``watchdog.targets``) and
the loader that reads the YAML file, expands ``${VAR}`` and explains every error (``loader``)."""

from failover.settings.model import FailoverPortal, ServerSettings, Settings, StaffAuth

__all__ = ["FailoverPortal", "ServerSettings", "Settings", "StaffAuth"]
