"""How URLs and secrets are shown in messages, errors and logs: the one place that decides it.

``url_origin`` (scheme, host and port; never user info, path or query, which may carry tokens),
``redact`` (a library's text about a URL, with its secret pieces masked), ``scrub_urls`` (every URL
in a text reduced to its origin) and a log filter that does the same for chatty libraries.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from urllib.parse import urlsplit

_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*)://[^\s'\"<>]+")


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what errors and logs may show. User info, path and query
    may carry tokens, and so may the "host" of many Apprise URLs (``tgram://BOT_TOKEN/…``,
    ``slack://TOKEN/…``): a host is shown only if it looks like one (an IP, a dotted name,
    localhost); otherwise ``scheme://…``."""
    scheme = url.partition(":")[0] or "?"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return f"{scheme}://…"
    if not _is_hostname(host):
        return f"{scheme}://…"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}{f':{port}' if port else ''}"


def _is_hostname(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host == "localhost" or bool(_DOTTED.match(host))


_DOTTED = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9\-]*[a-z0-9]$")


def redact(text: str, url: str) -> str:
    """``text`` (a library's message about ``url``) with every URL reduced to its origin and any
    other piece of ``url`` that could be a secret (user, password, path, query) masked."""
    text = scrub_urls(text)
    shown = url_origin(url)
    pieces = {p for p in re.split(r"[/:@?&=#]+", url) if len(p) >= 6}  # tokens are long
    with contextlib.suppress(ValueError):
        pieces.add(urlsplit(url).password or "")  # a password may be short
    for piece in sorted(pieces - {""}, key=len, reverse=True):
        if piece not in shown:
            text = text.replace(piece, "…")
    return text


def scrub_urls(text: str) -> str:
    """Replace every URL in free text (a library's error, a log line) by its origin."""
    return _URL.sub(lambda m: url_origin(m.group(0)), text)


class RedactUrls(logging.Filter):
    """A logger filter for libraries that log whole URLs (Apprise, httpx, urllib3): drops their DEBUG
    records (payloads, full URLs) and reduces every URL in the rest to its origin."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return False
        message = scrub_urls(record.getMessage())
        record.msg, record.args = message, ()
        return True


# Logger filters do not apply to child loggers' records: name each logger that logs URLs.
_REDACTED_LOGGERS = ("apprise", "httpx", "urllib3.connectionpool")


def install_log_redaction() -> None:
    """Attach ``RedactUrls`` to the libraries that would log our secret URLs (idempotent)."""
    for name in _REDACTED_LOGGERS:
        lg = logging.getLogger(name)
        if not any(isinstance(f, RedactUrls) for f in lg.filters):
            lg.addFilter(RedactUrls())
