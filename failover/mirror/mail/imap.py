"""The clinic's mailbox, read-only, over the stdlib ``imaplib`` (blocking: ``watch`` runs it in a thread
of its own).

Why ``imaplib``: it is the standard library's, kept with Python, and does IMAP4rev1 with TLS and
STARTTLS; ``aioimaplib`` (asyncio) has IDLE but no STARTTLS, which ``imap://`` needs. IDLE (RFC 2177,
in ``imaplib`` only from Python 3.14) is the few lines of ``idle`` below, on imaplib's own socket.

Read-only by construction: the folder is opened with ``EXAMINE`` (``select(readonly=True)``), mails
are fetched with ``BODY.PEEK[]`` (no ``\\Seen``), and nothing is ever stored, copied, moved or expunged.
Errors come out as ``MailFailure`` naming the host (``ImapUrl.where``), never the user or password; a
certificate that does not verify is ``tls``, permanent.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator

from failover.mirror.mail.config import ImapUrl
from failover.mirror.model import MailFailure

TIMEOUT = 30.0  # connect and every command
IDLE_POLL = 1.0  # how often a waiting IDLE looks at its stop flag
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UID = re.compile(rb"UID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')


class Mailbox:
    """One logged-in connection to one folder. Use as a context manager (logs out at the end)."""

    def __init__(self, url: ImapUrl, *, ca_file: str | None = None, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.ca_file = ca_file
        self.timeout = timeout
        self.conn: imaplib.IMAP4 | None = None
        self.uidvalidity: int | None = None
        self.can_idle = False

    # -- connecting ----------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        return context

    def open(self) -> int:
        """Connect, log in, EXAMINE the folder; returns its UIDVALIDITY."""
        where = self.url.where
        with self._errors("connect"):
            if self.url.tls:
                self.conn = imaplib.IMAP4_SSL(
                    self.url.host, self.url.port, ssl_context=self._context(), timeout=self.timeout
                )
            else:
                self.conn = imaplib.IMAP4(self.url.host, self.url.port, timeout=self.timeout)
                if "STARTTLS" in self.conn.capabilities:
                    self.conn.starttls(ssl_context=self._context())
        conn = self.conn
        with self._errors("login"):
            try:
                conn.login(self.url.user, self.url.password)
            except imaplib.IMAP4.error:
                raise MailFailure("login", f"{where}: the mail server refused the user and password") from None
        self.can_idle = "IDLE" in conn.capabilities or self._capable("IDLE")
        with self._errors("folder"):
            status, _ = conn.select(_quote(self.url.folder), readonly=True)
            if status != "OK":
                raise MailFailure("folder", f"{where}: the folder cannot be opened")
        response = conn.response("UIDVALIDITY")[1]
        value = response[0] if response and response[0] is not None else None
        if value is None:
            raise MailFailure("protocol", f"{where}: the server gave no UIDVALIDITY")
        self.uidvalidity = int(value)
        return self.uidvalidity

    def _capable(self, name: str) -> bool:
        assert self.conn is not None
        status, data = self.conn.capability()
        return status == "OK" and bool(data) and name.encode() in (data[0] or b"").upper().split()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error, ssl.SSLError):
            with contextlib.suppress(OSError):
                conn.shutdown()

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _errors(self, kind: str) -> Iterator[None]:
        """imaplib's and the socket's errors as ``MailFailure`` naming the host (never the password)."""
        where = self.url.where
        try:
            yield
        except MailFailure:
            raise
        except ssl.SSLCertVerificationError as err:
            reason = err.verify_message or "it does not verify"
            raise MailFailure(
                "tls",
                f"{where}: the mail server's TLS certificate is not trusted ({reason}) for host {self.url.host}; "
                "fix the certificate, or give mirror.mail.ca_file",
            ) from None
        except ssl.SSLError as err:
            raise MailFailure(
                "tls", f"{where}: TLS failed with host {self.url.host} ({err.reason or 'handshake'})"
            ) from None
        except TimeoutError:
            raise MailFailure("timeout", f"{where}: no answer within {self.timeout:g}s") from None
        except OSError as err:
            raise MailFailure("connect", f"{where}: {err.strerror or type(err).__name__}") from None
        except imaplib.IMAP4.abort:
            raise MailFailure("connect", f"{where}: the connection was closed") from None
        except imaplib.IMAP4.error:
            raise MailFailure(
                kind if kind != "connect" else "protocol", f"{where}: the server refused a command"
            ) from None

    # -- reading -------------------------------------------------------------------------------------

    def uids_after(self, last_uid: int) -> list[int]:
        """The UIDs of the folder's mails after ``last_uid``, ascending."""
        assert self.conn is not None
        with self._errors("protocol"):
            status, data = self.conn.uid("SEARCH", None, f"UID {last_uid + 1}:*")
        if status != "OK":
            raise MailFailure("protocol", f"{self.url.where}: UID SEARCH refused")
        uids = sorted(int(x) for x in b" ".join(d for d in data if d).split())
        return [u for u in uids if u > last_uid]  # "N:*" always includes the last mail, even below N

    def fetch(self, uid: int) -> tuple[bytes, float | None] | None:
        """One mail's bytes and its arrival time (INTERNALDATE), without setting \\Seen; None if gone."""
        assert self.conn is not None
        with self._errors("protocol"):
            status, data = self.conn.uid("FETCH", str(uid), "(INTERNALDATE BODY.PEEK[])")
        if status != "OK":
            raise MailFailure("protocol", f"{self.url.where}: UID FETCH refused")
        for item in data:
            if isinstance(item, tuple) and _UID.search(item[0]) and int(_UID.search(item[0])[1]) == uid:  # type: ignore[index]
                arrived = None
                if found := _INTERNALDATE.search(item[0]):
                    parsed = imaplib.Internaldate2tuple(b'INTERNALDATE "' + found[1] + b'"')
                    arrived = time.mktime(parsed) if parsed else None
                return item[1], arrived
        return None

    def idle(self, wait: float, stop: threading.Event) -> bool:
        """IDLE (RFC 2177) up to ``wait`` seconds: True when the server announced new mail (EXISTS),
        False on timeout or ``stop``. Ends the IDLE with DONE in every case.

        While idling the socket is read directly, a second at a time (so ``stop`` is seen): imaplib's
        buffered file must not see a timeout, and holds nothing then (the server says nothing between a
        command's tagged answer and the next command)."""
        conn = self.conn
        assert conn is not None
        where = self.url.where
        with self._errors("protocol"):
            tag: bytes = conn._new_tag()  # type: ignore[attr-defined]
            conn.send(tag + b" IDLE\r\n")
            lines = _Lines(conn.sock)
            if not lines.next(self.timeout).startswith(b"+"):
                raise MailFailure("protocol", f"{where}: IDLE refused")
            arrived = False
            deadline = time.monotonic() + wait
            while not stop.is_set() and not arrived and time.monotonic() < deadline:
                line = lines.next(IDLE_POLL, or_none=True)
                arrived = line is not None and line.startswith(b"*") and b"EXISTS" in line
            conn.send(b"DONE\r\n")
            while not (line := lines.next(self.timeout)).startswith(tag):
                arrived = arrived or (line.startswith(b"*") and b"EXISTS" in line)
            if lines.buffer:
                raise MailFailure("protocol", f"{where}: unexpected data after IDLE")
        return arrived


class _Lines:
    """CRLF lines read straight from a socket with a timeout per wait."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self, timeout: float, or_none: bool = False) -> bytes:
        deadline = time.monotonic() + timeout
        previous = self.sock.gettimeout()
        try:
            while b"\n" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    if or_none:
                        return None  # type: ignore[return-value]
                    raise TimeoutError
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(4096)
                except TimeoutError:
                    if or_none:
                        return None  # type: ignore[return-value]
                    raise
                if not chunk:
                    raise imaplib.IMAP4.abort("closed")
                self.buffer += chunk
        finally:
            self.sock.settimeout(previous)
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
