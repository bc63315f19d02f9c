"""Local stand-ins for the services portalguard talks to, for tests and the demo.

``JsonReceiver`` is an HTTP server that records every request (a webhook receiver, or Apprise's
``json://`` target) and can be told to answer the next requests with an error or not at all.
``SmtpReceiver`` is an SMTP server (aiosmtpd) that records every message (Apprise's ``mailto://``).

Both listen on 127.0.0.1 port 0 (a free port) inside the running asyncio loop, so a test awaits
``wait_for(n)`` instead of sleeping. Use them as async context managers::

    async with JsonReceiver() as hook, SmtpReceiver() as smtp:
        url = hook.url("/hook")           # http://127.0.0.1:PORT/hook
        mail = smtp.mailto(to="staff@clinic.test")
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Generic, Self, TypeVar
from urllib.parse import urlsplit

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

_MAX_BODY = 1_000_000
_HEAD_TIMEOUT = 10.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    text: str  # the decoded plain-text (or HTML) body
    raw: bytes


class _Recorder(Generic[T]):
    """A list of received things that a coroutine can wait on (no polling, no sleeps)."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = asyncio.Condition()

    async def add(self, item: T) -> None:
        async with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    async def wait_for(self, count: int, within: float) -> list[T]:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.items) >= count)
        return list(self.items)


class JsonReceiver:
    """An HTTP/1.1 server on 127.0.0.1 that answers 200 ``{"ok": true}`` and records requests."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._recorder: _Recorder[ReceivedRequest] = _Recorder()
        self._plan: deque[int | None] = deque()  # next answers: a status, or None = hang
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()  # set on stop: hanging requests end without an answer
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def requests(self) -> list[ReceivedRequest]:
        return self._recorder.items

    def url(self, path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def answer_next(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` requests with HTTP ``status`` (e.g. 500, 400)."""
        self._plan.extend([status] * count)

    def hang_next(self, count: int = 1) -> None:
        """Read but never answer the next ``count`` requests (the client times out)."""
        self._plan.extend([None] * count)

    async def wait_for(self, count: int, within: float = 5.0) -> list[ReceivedRequest]:
        """All requests so far, once at least ``count`` arrived; TimeoutError otherwise."""
        return await self._recorder.wait_for(count, within)

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        # Python 3.11's wait_closed() does not wait for open connections: let them finish here.
        if self._connections:
            await asyncio.wait(self._connections, timeout=2.0)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        try:
            request = await asyncio.wait_for(_read_request(reader), _HEAD_TIMEOUT)
            if request is None:
                return
            await self._recorder.add(request)
            status = self._plan.popleft() if self._plan else 200
            if status is None:
                await self._release.wait()
                return
            writer.write(_response(status))
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass  # a broken client is not the test's subject
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # a connect-only reachability check
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = min(int(headers.get("content-length", "0")), _MAX_BODY)
    try:
        body = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError:
        return None  # the sender died mid-body (the kill -9 tests do that): no request arrived
    parts = urlsplit(target)
    return ReceivedRequest(method, parts.path, parts.query, headers, body)


def _response(status: int) -> bytes:
    body = json.dumps({"ok": 200 <= status < 300, "status": status}).encode()
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class _MailHandler:
    """aiosmtpd handler: records each message, or refuses it when told to."""

    recorder: _Recorder[ReceivedMail]
    refusals: deque[str] = field(default_factory=deque)
    deliver: Callable[[bytes], object] | None = None  # hands each accepted message on (into a Maildir)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refusals:
            return self.refusals.popleft()
        raw = envelope.original_content or b""
        if self.deliver is not None:
            self.deliver(raw)
        await self.recorder.add(_parse_mail(envelope, raw))
        return "250 Message accepted for delivery"


def _parse_mail(envelope: Envelope, raw: bytes) -> ReceivedMail:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    part = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
    text = part.get_content() if part is not None else ""
    return ReceivedMail(
        mail_from=envelope.mail_from or "",
        rcpt_tos=list(envelope.rcpt_tos),
        subject=str(msg.get("subject", "")),
        text=text,
        raw=raw,
    )


class SmtpReceiver:
    """A plain SMTP server on 127.0.0.1 (no TLS, any login accepted) that records messages, and hands
    each one to ``deliver`` when given (e.g. ``Dovecot.deliver``: the mail then lands in a mailbox)."""

    def __init__(self, host: str = "127.0.0.1", deliver: Callable[[bytes], object] | None = None) -> None:
        self.host = host
        self.port = 0
        self._recorder: _Recorder[ReceivedMail] = _Recorder()
        self._handler = _MailHandler(self._recorder, deliver=deliver)
        self._server: asyncio.Server | None = None

    @property
    def messages(self) -> list[ReceivedMail]:
        return self._recorder.items

    def mailto(
        self,
        to: str = "staff@clinic.test",
        sender: str = "portalguard@clinic.test",
        user: str = "portalguard",
        password: str = "secret",
    ) -> str:
        """An Apprise URL for this server: plain SMTP (``mode`` unset on ``mailto://`` = no TLS)."""
        return f"mailto://{user}:{password}@{self.host}:{self.port}?from={sender}&to={to}"

    def refuse_next(self, count: int = 1, reply: str = "451 4.3.0 Try again later") -> None:
        """Refuse the next ``count`` messages at DATA with ``reply`` (a 4xx/5xx SMTP reply)."""
        self._handler.refusals.extend([reply] * count)

    async def wait_for(self, count: int, within: float = 5.0) -> list[ReceivedMail]:
        return await self._recorder.wait_for(count, within)

    async def start(self) -> Self:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _protocol(self) -> SMTP:
        # hostname given: aiosmtpd would otherwise ask DNS for our FQDN on every connection.
        return SMTP(
            self._handler,
            hostname="localhost",
            auth_require_tls=False,
            authenticator=_accept_any,
            loop=asyncio.get_running_loop(),
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _accept_any(*_args: object) -> AuthResult:
    return AuthResult(success=True)
