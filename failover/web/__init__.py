"""The fallback booking page and the rest of portalguard's web surface (``/staff``, ``/healthz``,
``/metrics``): ``create_app`` builds the ASGI app, ``preview_token`` the drill preview links."""

from failover.web.app import create_app
from failover.web.security import preview_token

__all__ = ["create_app", "preview_token"]
