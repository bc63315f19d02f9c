"""What ``portalguard status`` shows of the config (``StatusConfig``, derived from the validated
``Settings``), kept in a cache so that a ``status`` after the first starts without pydantic.

Validating the config builds the pydantic models of every section and action kind: 0.2 s, most of
``status``'s budget, for the few facts it shows (the portals, their names, clinics, actions and
mirror, the time zone, where the store is). ``cached`` gives those from the cache when nothing they
were derived from has changed, else loads the config exactly as before (the same validation, the
same errors and exit) and writes the cache anew.

The cache: one JSON file per config file in ``$XDG_CACHE_HOME/portalguard/status`` (default
``~/.cache/…``; a directory only its owner may enter, files mode 0600), holding the view and the key
it is valid for: an HMAC-SHA256, with a random key kept in the same directory, of the config file's
path and bytes, every variable its ``${VAR}`` references name (set or not, and its value), and the
code (size and mtime of every module of portalguard, pydantic and PyYAML). So no secret reaches the
disk — the view holds none, and the key is keyed — while a change to the file, to any variable it
names, or an upgrade invalidates the entry. Any trouble with the cache (no home, a read-only disk, a
directory others could write) only means the config is loaded. What validation reads beyond the file
and the environment (that a probe's ``ca_bundle`` file is readable) is checked again on a miss only:
``status`` shows the store and uses no bundle (``run``, ``doctor`` and ``config check`` always validate).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import importlib.util
import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from failover.settings.source import referenced
from failover.store_url import is_database_url

if TYPE_CHECKING:
    from failover.settings import Settings

FORMAT = 2  # of the cache entries: a change of StatusConfig's shape bumps it
_CODE = ("failover", "watchdog", "pydantic", "pydantic_core", "yaml")  # the packages validating a config


@dataclass(frozen=True, slots=True)
class PortalView:
    name: str  # what people read: its name, else its id
    clinic: str | None  # the clinic's id in a dental group; None with one clinic
    clinic_name: str
    actions: list[str]  # its actions' names, the group's staff alerts included
    mirror: bool  # has an appointment mirror
    mirror_admin: bool  # … read from the admin screen (else from booking mails only)
    mirror_mail: bool  # … and from booking mails


@dataclass(frozen=True, slots=True)
class StatusConfig:
    store: str
    timezone: str
    portals: dict[str, PortalView]  # in config order
    site: str = ""  # this instance's site name (what a single instance leads as)

    @classmethod
    def of(cls, settings: Settings) -> StatusConfig:
        portals = {}
        for pid, portal in settings.portals.items():
            mirror = portal.mirror
            portals[pid] = PortalView(
                name=settings.portal_name(pid),
                clinic=settings.clinic_id(pid) if settings.clinic is None else None,
                clinic_name=settings.clinic_of(pid).name,
                actions=list(settings.portal_actions(pid)),
                mirror=mirror is not None,
                mirror_admin=mirror is not None and mirror.source is not None,
                mirror_mail=mirror is not None and mirror.mail is not None,
            )
        return cls(str(settings.store), settings.timezone, portals, settings.site)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StatusConfig:
        portals = {pid: PortalView(**p) for pid, p in data["portals"].items()}
        return cls(str(data["store"]), str(data["timezone"]), portals, str(data.get("site", "")))


def cached(path: Path, settings: Callable[[], Settings], *, secrets_required: bool) -> StatusConfig:
    """The view of the config at ``path``: from the cache if it is valid, else ``StatusConfig.of(settings())``
    (``settings`` loads and validates the config, and exits on an error as every command does)."""
    entry, key = _entry(path, secrets_required)
    if entry is not None and key is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(entry.read_text(encoding="utf-8"))
            if data["format"] == FORMAT and hmac.compare_digest(str(data["key"]), key):
                return StatusConfig.from_json(data["config"])
    view = StatusConfig.of(settings())
    # A PostgreSQL store's URL holds its password: never written to the cache (status then loads the
    # config each time; it connects with the driver anyway).
    if entry is not None and key is not None and not is_database_url(view.store):
        with contextlib.suppress(OSError):
            _write(entry, {"format": FORMAT, "key": key, "config": view.to_json()})
    return view


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "portalguard" / "status"


def _entry(path: Path, secrets_required: bool) -> tuple[Path | None, str | None]:
    """The cache file for ``path`` and the key its entry must have; (None, None) without a cache."""
    try:
        config = path.read_bytes()
        text = config.decode("utf-8")
        directory = _private_dir(cache_dir())
        secret = _secret(directory)
    except (OSError, RuntimeError, UnicodeDecodeError):  # RuntimeError: no home directory
        return None, None
    where = str(path.absolute())
    # The site's variable too: it overrides the file's `site:` without being named in it.
    variables = [(name, os.environ.get(name)) for name in [*referenced(text), "PORTALGUARD_SITE"]]
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    mac.update(json.dumps([FORMAT, where, secrets_required, variables, list(_code())]).encode())
    mac.update(config)
    return directory / f"{hashlib.sha256(where.encode()).hexdigest()[:32]}.json", mac.hexdigest()


def _private_dir(directory: Path) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{directory} is not private to its owner")
    return directory


def _secret(directory: Path) -> bytes:
    """The HMAC key of this cache: made once, random, readable by its owner only."""
    file = directory / "key"
    with contextlib.suppress(FileExistsError):
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    key = file.read_bytes()
    if len(key) != 32:
        raise OSError(f"{file} is not a cache key")
    return key


def _code() -> Iterator[tuple[str, int, int]]:
    """Every module of the packages that validate a config: its path, size and mtime."""
    yield sys.version, 0, 0
    for package in _CODE:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for folder, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in sorted(files):
                    if name.endswith((".py", ".so")):
                        st = os.stat(os.path.join(folder, name))
                        yield os.path.join(folder, name), st.st_size, st.st_mtime_ns


def _write(entry: Path, data: dict[str, Any]) -> None:
    """Replace the entry at once (another status may be reading it), mode 0600."""
    partial = entry.with_name(f".{entry.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        os.replace(partial, entry)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
