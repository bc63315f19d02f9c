"""The staff login's browser session: a cookie signed with the app secret, with an idle timeout.

The cookie holds the account, its role, when the session was issued and when it was last used;
an HMAC-SHA256 over them with the app secret (``security.app_secret``) makes it unforgeable. It
carries no password and nothing of patients. Each use refreshes ``seen``; a session unused for
longer than the idle timeout is no longer valid, whatever the browser keeps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

SESSION_COOKIE = "pg_staff"
PURPOSE = b"staff-session\0"  # a session MAC can never pass as a CSRF or preview token
MAX_COOKIE = 1024  # longer is not ours: not even decoded


@dataclass(frozen=True, slots=True)
class Session:
    account: str
    role: str  # "operator" | "viewer"
    issued: float
    seen: float


def encode(key: bytes, session: Session) -> str:
    """The cookie's value: base64 JSON, a dot, its MAC."""
    data = {"a": session.account, "r": session.role, "i": session.issued, "s": session.seen}
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{body}.{_mac(key, body)}"


def decode(key: bytes, value: str | None, now: float, idle: float) -> Session | None:
    """The session in the cookie, or None: missing, forged, malformed, or idle longer than ``idle``."""
    if not value or len(value) > MAX_COOKIE or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    if not hmac.compare_digest(mac.encode(), _mac(key, body).encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        session = Session(str(data["a"]), str(data["r"]), float(data["i"]), float(data["s"]))
    except (ValueError, KeyError, TypeError):
        return None
    # A "seen" in the future (a clock stepped back) counts as now: never as extra idle time.
    return session if now - min(session.seen, now) <= idle else None


def cookie_header(value: str, secure: bool, idle: float) -> str:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure over https."""
    flags = "; Secure" if secure else ""
    return f"{SESSION_COOKIE}={value}; Path=/; Max-Age={int(idle)}; HttpOnly; SameSite=Strict{flags}"


def clear_header(secure: bool) -> str:
    flags = "; Secure" if secure else ""
    return f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{flags}"


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, PURPOSE + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
