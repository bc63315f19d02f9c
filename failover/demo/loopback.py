"""The demo's promise: it talks to this machine only. Every address it configures is checked here.

The check walks the whole Settings (not a list of known fields), so an address added to the config
model later is covered without anyone remembering to add it here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from failover.settings import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# Config keys whose value is a bare ``host:port`` rather than a URL.
_HOST_PORT_KEYS = frozenset({"listen", "metrics_listen", "endpoint"})


class NotLoopback(ValueError):
    """The demo was about to use an address off this machine; it refuses to start."""


def host_of(address: str) -> str:
    """The host of a URL (any scheme, with user info or not) or of a ``host:port`` pair."""
    if "://" in address:
        host = urlsplit(address).hostname
        if host is None:
            raise NotLoopback(f"{address!r} names no host")
        return host
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise NotLoopback(f"{address!r} is neither a URL nor host:port")
    return host.removeprefix("[").removesuffix("]").lower()


def ensure_loopback(where: str, address: str) -> str:
    """``address`` unchanged if it points at this machine (127.0.0.1, ::1, localhost); else raise."""
    host = host_of(address)
    if host not in LOOPBACK_HOSTS:
        raise NotLoopback(f"demo refuses {where}: {host!r} is not a loopback address (127.0.0.1, ::1, localhost)")
    return address


def addresses(settings: Settings) -> Iterator[tuple[str, str]]:
    """Every (config key, address) in ``settings``: URLs anywhere, and the ``host:port`` keys."""
    yield from _walk("", settings.model_dump())


def _walk(key: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, SecretStr):  # notify and webhook URLs are secrets: still addresses
        value = value.get_secret_value()
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _walk(f"{key}.{name}" if key else str(name), item)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(f"{key}[{i}]", item)
    elif isinstance(value, str) and ("://" in value or key.rsplit(".", 1)[-1] in _HOST_PORT_KEYS):
        yield key, value


def ensure_settings_loopback(settings: Settings) -> None:
    """Raise NotLoopback naming the first config key whose address is not on this machine."""
    for key, address in addresses(settings):
        ensure_loopback(key, address)
