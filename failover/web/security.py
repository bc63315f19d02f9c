"""What keeps the web app safe: the app secret, CSRF tokens, preview tokens, the rate limiter, the staff
login check and the security headers on every response.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from failover.settings import Settings, StaffAuth

SECRET_BYTES = 32
CSRF_COOKIE = "pg_csrf"
CSRF_FIELD = "csrf"
_COOKIE_FORM = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
_FORM_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")  # secrets.token_urlsafe(16)

# No script at all, styles and images only from us, forms post only to us, never framed.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class SecretError(Exception):
    pass


# -- the app secret ---------------------------------------------------------------------------


def secret_path(settings: Settings) -> Path:
    """``server.secret_file``, else beside the SQLite store (a PostgreSQL store requires the setting)."""
    return settings.server.secret_file or Path(f"{settings.store}.key")


def app_secret(settings: Settings) -> bytes:
    """32 random bytes kept beside the store (mode 0600), created on first use.

    Why a file and not a key derived from the staff password: CSRF and preview tokens are MACs that
    patients and links see, and a MAC keyed by a password invites offline guessing of that password.
    Why persisted: the service and ``portalguard drill`` must agree on preview links, and a restart
    must not invalidate forms patients have open.
    """
    path = secret_path(settings)
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic: of two processes starting at once, one key wins
    except OSError as err:
        raise SecretError(f"cannot create the web secret {path}: {err.strerror} (check the store directory)") from None
    finally:
        tmp.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except PermissionError:
        raise SecretError(f"cannot read the web secret {path}: permission denied") from None
    if len(key) < SECRET_BYTES:
        raise SecretError(f"the web secret {path} is damaged: delete it (open forms and preview links become invalid)")
    return key


def _mac(key: bytes, purpose: str, message: str) -> str:
    # The purpose separates token kinds: a CSRF token can never pass as a preview token.
    digest = hmac.new(key, f"{purpose}\0{message}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


# -- preview tokens ---------------------------------------------------------------------------


def preview_token(settings: Settings, portal: str) -> str:
    """The token of ``/book/{portal}?preview=…``: staff see the fallback page while it is off."""
    return _mac(app_secret(settings), "preview", portal)


def preview_ok(key: bytes, portal: str, token: str) -> bool:
    return hmac.compare_digest(_mac(key, "preview", portal).encode(), token.encode("utf-8", "replace"))


# -- CSRF: signed double-submit cookie --------------------------------------------------------


class Csrf:
    """A random cookie per browser; forms carry a MAC of it. A cross-site page can neither read the
    cookie nor compute the MAC, and a cookie planted by a sibling subdomain has no valid MAC."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @staticmethod
    def cookie_of(cookies: dict[str, str]) -> str | None:
        value = cookies.get(CSRF_COOKIE, "")
        return value if _COOKIE_FORM.match(value) else None

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(32)

    def token(self, cookie: str) -> str:
        return _mac(self._key, "csrf", cookie)

    def valid(self, cookie: str | None, token: str) -> bool:
        if cookie is None:
            return False
        return hmac.compare_digest(self.token(cookie).encode(), token.encode("utf-8", "replace"))

    def form_token(self, cookie: str) -> str:
        """The token of one rendered booking form: a fresh id and a MAC of it with the cookie, so
        the form can be sent once (``failover.store`` keeps which request each id made)."""
        form = secrets.token_urlsafe(16)
        return f"{form}.{_mac(self._key, 'form', f'{cookie}.{form}')}"

    def form_of(self, cookie: str | None, token: str) -> str | None:
        """The form id of a valid form token (None: not ours, or not this browser's)."""
        form, _, mac = token.partition(".")
        if cookie is None or not _FORM_ID.match(form):
            return None
        expected = _mac(self._key, "form", f"{cookie}.{form}")
        return form if hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")) else None

    def done_token(self, portal: str, number: int, drill: bool) -> str:
        """The confirmation page's URL token: only numbers this service gave out are confirmed."""
        return _mac(self._key, "done", f"{portal}:{number}:{int(drill)}")

    def done_ok(self, portal: str, number: int, drill: bool, token: str) -> bool:
        return hmac.compare_digest(self.done_token(portal, number, drill).encode(), token.encode("utf-8", "replace"))


def csrf_cookie_header(value: str, secure: bool) -> str:
    # Lax: sent with the same-site form post; HttpOnly: no script needs it (the page has none).
    flags = "; Secure" if secure else ""
    return f"{CSRF_COOKIE}={value}; Path=/; Max-Age=172800; HttpOnly; SameSite=Lax{flags}"


# -- rate limiting ----------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per client: ``per_minute`` at once, refilled evenly over the minute.

    Memory stays bounded: past ``max_clients`` entries, the full (idle) buckets are forgotten.
    """

    def __init__(
        self, per_minute: int, clock: Callable[[], float], max_clients: int = 10_000, ipv6_prefix: int = 64
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self.ipv6_prefix = ipv6_prefix
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def allow(self, client: str) -> bool:
        client = client_bucket(client, self.ipv6_prefix)
        now = self.clock()
        tokens, at = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - at) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_clients:
            self._forget_idle(now)
        return allowed

    def exhausted(self, client: str) -> bool:
        """True if ``allow`` would refuse now (a look that takes nothing)."""
        client = client_bucket(client, self.ipv6_prefix)
        now = self.clock()
        tokens, at = self._buckets.get(client, (self.capacity, now))
        return min(self.capacity, tokens + max(0.0, now - at) * self.rate) < 1.0

    def _forget_idle(self, now: float) -> None:
        full_after = self.capacity / self.rate
        self._buckets = {c: (t, at) for c, (t, at) in self._buckets.items() if now - at < full_after}
        while len(self._buckets) > self.max_clients:  # still too many busy clients: drop the oldest
            del self._buckets[next(iter(self._buckets))]


def client_bucket(address: str, ipv6_prefix: int) -> str:
    """Whom a limit counts: an IPv4 address, or an IPv6 address's ``/ipv6_prefix`` network.

    One IPv6 subscriber gets a whole /64 (or more) and can pick a fresh address per request: counted
    per address, 300 posts from one /64 were 300 "clients". IPv4-mapped addresses count as IPv4.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # "unknown" or a test client's name: as it is
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/{ipv6_prefix}", strict=False))
    return str(ip)


# -- staff login ------------------------------------------------------------------------------


def staff_authorized(auth: StaffAuth, authorization: str | None) -> bool:
    """A ``Bearer`` token or ``Basic`` user:password from the config, compared in constant time."""
    scheme, _, value = (authorization or "").partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and auth.token is not None:
        return _same(value, auth.token.get_secret_value())
    if scheme == "basic" and auth.username is not None and auth.password is not None:
        user, password = _basic(value)
        # Both comparisons always run: which part was wrong must not show in the timing.
        user_ok = _same(user, auth.username)
        password_ok = _same(password, auth.password.get_secret_value())
        return user_ok and password_ok
    return False


def staff_challenge(auth: StaffAuth) -> str:
    if auth.username is not None:
        return 'Basic realm="portalguard staff", charset="UTF-8"'
    return 'Bearer realm="portalguard staff"'


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


def _same(given: str, expected: str) -> bool:
    """Constant-time equality that never accepts an empty credential on either side.

    An empty configured secret (a blank variable that slipped past the config check) would
    otherwise match ``Authorization: Bearer`` with nothing after it.
    """
    matches = hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))  # bytes: non-ASCII too
    return matches and bool(given) and bool(expected)


# -- headers on every response ----------------------------------------------------------------


class SecurityHeadersMiddleware:
    """Adds ``SECURITY_HEADERS`` to every response, and ``Cache-Control: no-store`` unless the
    response chose its own caching (static assets): pages, redirects and staff data are never cached,
    so a browser never replays yesterday's redirect to a portal that is down today."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
