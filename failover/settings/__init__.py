"""The whole config: its models (``model``: the failover part on top of ``watchdog.targets``), the
loader that reads the YAML file, expands ``${VAR}`` and explains every error (``loader``), and where
the file is (``source``). The models load on first use (PEP 562): ``source`` loads without pydantic."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from failover.settings.model import FailoverPortal, ServerSettings, Settings, StaffAuth

__all__ = ["FailoverPortal", "ServerSettings", "Settings", "StaffAuth"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("failover.settings.model"), name)
