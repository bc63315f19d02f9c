"""Action ``webhook``: POSTs a signed JSON body on switch on/off (IVR, website banner, status page)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import ssl
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr

from failover.actions.base import ActionContext, ActionError, Incident
from failover.redact import install_log_redaction, url_origin
from failover.secrets_policy import Secret
from watchdog.config_types import PositiveDuration, StrictModel


class WebhookConfig(StrictModel):
    type: Literal["webhook"]
    url: SecretStr = Field(description="http(s) URL; may carry a token, so it is treated as a secret.")
    secret: Secret | None = Field(
        None,
        description="HMAC-SHA256 key for the X-Portalguard-Signature header; without it `doctor` reports not ready.",
    )
    timeout: PositiveDuration = 10.0


SIGNATURE_HEADER = "X-Portalguard-Signature"
TIMESTAMP_HEADER = "X-Portalguard-Timestamp"
_RETRYABLE_4XX = (408, 429)  # timeout and rate limit: the receiver asks us to come back


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over ``timestamp.body``, so an old body cannot be replayed
    with a fresh timestamp."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: float = 300.0) -> bool:
    """What a receiver does: the signature matches and the timestamp is within ``tolerance``
    seconds of ``now``. ``headers`` keys are matched case-insensitively."""
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(given, sign(secret, timestamp, body))


class Webhook:
    """POSTs ``state: failover`` on apply and ``state: recovered`` on revert, signed with
    ``secret`` (headers ``X-Portalguard-Timestamp`` and ``X-Portalguard-Signature``).

    Delivery is at least once: a POST is recorded as delivered only after a 2xx, so a timeout or
    a crash after the receiver acted makes us send it again. Receivers must be idempotent: key
    on ``(portal, incident, state)`` (also sent as the ``Idempotency-Key`` header).

    The URL may carry a token in its path or query: errors name ``scheme://host:port`` only.
    """

    def __init__(self, name: str, config: WebhookConfig, deps: ActionContext) -> None:
        self.name = name
        self.config = config
        self.deps = deps
        self._url = config.url.get_secret_value()
        self._where = f"webhook {name} ({url_origin(self._url)})"
        install_log_redaction()  # httpx logs every request's full URL at INFO

    def _key(self, number: int, state: str) -> str:
        return f"webhook:{self.deps.portal_id}:{number}:{self.name}:{state}"

    async def observe(self) -> bool:
        # A webhook cannot be read back: report what we know was delivered for the current incident.
        number = (await self.deps.store.portal(self.deps.portal_id)).incident
        store = self.deps.store
        if number == 0 or not await store.claimed(self._key(number, "on")):
            return False
        return not await store.claimed(self._key(number, "off"))

    async def apply(self, incident: Incident) -> None:
        await self._switch(incident, "on")

    async def revert(self, incident: Incident) -> None:
        await self._switch(incident, "off")

    async def _switch(self, incident: Incident, to: str) -> None:
        key = self._key(incident.number, to)
        if await self.deps.store.claimed(key):
            return  # delivered already: idempotent
        await self._post(incident, "failover" if to == "on" else "recovered")
        await self.deps.store.claim(key)

    async def maintain(self, incident: Incident) -> None:
        return None

    async def check(self) -> str:
        """Preflight without an HTTP request: many receivers act on any request (GET, HEAD or
        OPTIONS included), so we only resolve the host and open a TCP (and TLS) connection."""
        parts = urlsplit(self._url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ActionError(f"{self._where}: actions.{self.name}.url is not an http(s) URL", permanent=True)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        tls = ssl.create_default_context() if parts.scheme == "https" else None
        try:
            async with asyncio.timeout(self.config.timeout):
                _, writer = await asyncio.open_connection(parts.hostname, port, ssl=tls)
        except (OSError, TimeoutError) as err:
            raise ActionError(
                f"{self._where}: cannot connect ({_kind(err)}); check the host, the firewall and "
                f"actions.{self.name}.url"
            ) from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        if self.config.secret is None:
            # Not a config error (old configs still load and send), but not ready: the spec says
            # webhooks are signed, and an unsigned POST can be forged by anyone who finds the URL.
            raise ActionError(
                f"{self._where}: reachable but UNSIGNED; set `secret:` under actions.{self.name} "
                f"(the HMAC-SHA256 key the receiver checks {SIGNATURE_HEADER} with)",
                permanent=True,
            )
        return f"{url_origin(self._url)} reachable{' (TLS ok)' if tls else ''}, signed; nothing sent"

    async def drill(self, incident: Incident) -> str:
        status = await self._post(replace(incident, drill=True), "failover")
        return f"drill POST to {url_origin(self._url)}: HTTP {status}"

    # -- the request ------------------------------------------------------------------------------

    def payload(self, incident: Incident, state: str) -> dict[str, object]:
        tz = ZoneInfo(self.deps.clinic.timezone)
        return {
            "portal": self.deps.portal_id,
            "state": state,
            "reason": incident.reason,
            "incident": incident.number,
            "since": _iso(incident.since, tz),
            "ended": _iso(incident.ended, tz) if state == "recovered" else None,
            "clinic": self.deps.clinic.name,
            "fallback_url": self.deps.links.fallback_url,
            "drill": incident.drill,
            "sent_at": _iso(self.deps.now(), tz),
        }

    async def _post(self, incident: Incident, state: str) -> int:
        if state == "recovered" and incident.ended is None:
            incident = replace(incident, ended=self.deps.now())
        body = json.dumps(self.payload(incident, state), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": f"{incident.portal}:{incident.number}:{state}{':drill' if incident.drill else ''}",
        }
        if self.config.secret is not None:
            timestamp = str(int(self.deps.now()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self.config.secret.get_secret_value(), timestamp, body)
        import httpx  # on first use: loading the config (every CLI command does) must not load httpx

        try:
            resp = await self.deps.http.post(
                self._url, content=body, headers=headers, timeout=self.config.timeout, follow_redirects=False
            )
        except httpx.TimeoutException:
            raise ActionError(f"{self._where}: no answer within {self.config.timeout:g}s; will retry") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise ActionError(f"{self._where}: actions.{self.name}.url is not a usable URL", permanent=True) from None
        except httpx.HTTPError as err:
            raise ActionError(f"{self._where}: {_kind(err)}; will retry") from None
        _raise_for(resp.status_code, self._where, self.name)
        return resp.status_code


def _raise_for(status: int, where: str, name: str) -> None:
    if 200 <= status < 300:
        return
    if status >= 500 or status in _RETRYABLE_4XX:
        raise ActionError(f"{where}: the receiver answered HTTP {status}; will retry")
    if status < 400:  # a redirect: a POST must not be re-sent elsewhere behind our back
        raise ActionError(
            f"{where}: the receiver redirects (HTTP {status}); put the final URL in actions.{name}.url",
            permanent=True,
        )
    raise ActionError(
        f"{where}: the receiver refused it with HTTP {status}; not retried. Check actions.{name}.url and "
        f"actions.{name}.secret against the receiver's settings",
        permanent=True,
    )


def _kind(err: BaseException) -> str:
    # The exception's text may quote the URL: show its type (and errno) only.
    errno = getattr(err, "errno", None)
    return f"{type(err).__name__}{f' errno {errno}' if errno else ''}"


def _iso(ts: float | None, tz: ZoneInfo) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")
