"""What every command shares: the config and store (loaded lazily), time display, JSON output."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar, cast
from zoneinfo import ZoneInfo

import click

from failover.settings.source import config_path
from failover.store.rows import DataKeyError, StoreError
from watchdog.clock import PUBLISHED_KEY, steady_at, wall_at
from watchdog.duration import parse_duration

if TYPE_CHECKING:
    from failover.cli.status_config import StatusConfig
    from failover.settings import Settings
    from failover.store import Store
    from failover.store.reads import StoreReads

EXIT_CONFIG = 2
STALE_AFTER = 10.0  # seconds without a heartbeat before we say the service is not running
F = TypeVar("F", bound=Callable[..., Any])


class App:
    """``ctx.obj``: commands ask for ``.settings`` / ``.store``; errors exit 2 with the reason.

    Every secret's ``${VAR}`` must be set, unless the command is marked ``@read_only``.

    Time is the running service's clock (``now``), not this process's wall clock: the service
    compares overrides and maintenance windows with its steady clock (``watchdog/clock.py``), which
    after a wall-clock step differs from the wall clock until it has slewed back. Durations people
    type (``--for 2h``, ``+30m``) count on the service's clock; wall times (``14:00``, an ISO date)
    are converted to what the service's clock will read at that wall time; times shown are wall times.
    """

    # This process's clock sources (tests step them); the service's clock is read on them.
    wall: Callable[[], float] = staticmethod(time.time)
    monotonic: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, config_option: str | None) -> None:
        self.config_option = config_option
        self.secrets_required = True
        self._published: tuple[Any, Any] = (None, None)  # the service's clock offset and heartbeat

    @cached_property
    def settings(self) -> Settings:
        from failover.settings.loader import ConfigError, load  # pydantic: not for status_config's fast path

        try:
            return load(config_path(self.config_option), secrets_required=self.secrets_required)
        except ConfigError as err:
            fail("\n".join(err.messages), EXIT_CONFIG)

    @cached_property
    def store(self) -> Store:
        """The store; what it records (events, claims) is stamped on the service's clock (``now``)."""
        from failover.store import Store  # SQLAlchemy: not for `reader`'s fast path

        try:
            store = Store(self.settings.store, self.now, data_key=self.settings.sealing_key())
        except StoreError as err:
            fail(str(err), EXIT_CONFIG)
        self._read_published(store)
        return store

    @cached_property
    def reader(self) -> StoreReads:
        """For a command that only makes the reads of ``StoreReads`` (``status``): the store opened
        read-only without SQLAlchemy (``ReadOnlyStore``) when it is at the newest revision, else ``store``
        (which creates or migrates it). Stamped on the service's clock as ``store``."""
        from failover.store.readonly import ReadOnlyStore

        reader = ReadOnlyStore.open(self.status_config.store, self.now)
        if reader is None:
            return self.store
        self._read_published(reader)
        return reader

    def _read_published(self, store: StoreReads) -> None:
        # Read once, at open: the store's clock must not read the store inside a write. (If it cannot be
        # read, the command's own reads say why; time is the wall clock's meanwhile.)
        with contextlib.suppress(StoreError):
            self._published = (store.value(PUBLISHED_KEY), store.value("heartbeat"))

    def service_now(self) -> float | None:
        """The running service's clock now, read on this host's monotonic clock (the service
        publishes its offset with its heartbeat); None if no running service published one."""
        published, heartbeat = self._published
        try:
            now = self.monotonic() + float(published["monotonic_offset"])
            fresh = -1.0 <= now - float(heartbeat) < STALE_AFTER
        except (TypeError, KeyError, ValueError):
            return None
        return now if fresh else None

    def now(self) -> float:
        """The service's clock; with no service running, the wall clock (where its next start begins)."""
        return self._clocks()[1]

    def from_wall(self, ts: float) -> float:
        """A wall time (what a person typed) as the service's clock will read it then."""
        return steady_at(ts, *self._clocks())

    def to_wall(self, ts: float) -> float:
        """A reading of the service's clock as wall time (for display)."""
        return wall_at(ts, *self._clocks())

    def _clocks(self) -> tuple[float, float]:
        """(wall, the service's clock) now: the same reading when no service runs."""
        wall, steady = self.wall(), self.service_now()
        return wall, wall if steady is None else steady

    @cached_property
    def status_config(self) -> StatusConfig:
        """What ``status`` shows of the config: from its cache when the file, the variables it names and
        the code are unchanged (no pydantic), else from ``settings`` (``failover.cli.status_config``)."""
        from failover.cli.status_config import cached

        path = config_path(self.config_option)
        return cached(path, lambda: self.settings, secrets_required=self.secrets_required)

    @cached_property
    def tz(self) -> ZoneInfo:
        view = self.__dict__.get("status_config")  # status's: it may have loaded no settings
        return ZoneInfo(view.timezone if view is not None else self.settings.timezone)

    def portal_ids(self, portal: str | None) -> list[str]:
        """The chosen portal, or every portal; an unknown id exits 2 listing the known ones."""
        known = list(self.settings.portals)
        if portal is None:
            return known
        if portal not in self.settings.portals:
            fail(f"unknown portal {portal!r} (configured: {', '.join(known)})", EXIT_CONFIG)
        return [portal]

    def when(self, ts: float | None) -> str:
        """A reading of the service's clock as local clinic wall time, e.g. ``2026-11-23 10:02:13 JST``."""
        if ts is None:
            return "-"
        try:
            return datetime.fromtimestamp(self.to_wall(ts), self.tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        except (OverflowError, OSError, ValueError):  # a row from a broken clock: show, don't crash
            return f"@{ts:.0f}"

    def parse_time(self, text: str, now: float) -> float:
        """``now``, ``+2h`` (from ``now``, a reading of the service's clock), or an ISO date-time (a
        wall time, clinic time zone unless it names one), as a reading of the service's clock."""
        if text == "now":
            return now
        if text.startswith("+"):
            return now + duration_arg(text[1:])
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise click.BadParameter(f"{text!r} is not a time (use now, +2h, or 2026-11-24T02:00)") from None
        ts = self.from_wall((dt if dt.tzinfo else dt.replace(tzinfo=self.tz)).timestamp())
        if ts - now > MAX_DURATION:
            raise click.BadParameter(f"{text!r} is more than ten years away")
        return ts


def chosen_portals(settings: Settings, portal: str | None, clinic: str | None) -> list[str] | None:
    """The portals ``--portal`` or ``--clinic`` chose (None: every portal); an unknown id exits 2
    naming the known ones."""
    if portal is not None and clinic is not None:
        fail("give --portal or --clinic, not both", EXIT_CONFIG)
    if portal is not None:
        if portal not in settings.portals:
            fail(f"unknown portal {portal!r} (configured: {', '.join(settings.portals)})", EXIT_CONFIG)
        return [portal]
    if clinic is None:
        return None
    group = settings.group()
    if clinic not in group:
        hint = "this config has one clinic: leave --clinic out" if settings.clinic else f"clinics: {', '.join(group)}"
        fail(f"unknown clinic {clinic!r} ({hint})", EXIT_CONFIG)
    return settings.portals_of(clinic)


clinic_option = click.option("--clinic", metavar="CLINIC", help="Only the portals of this clinic (clinics: ids).")


def read_only(command: F) -> F:
    """Mark a command that only shows what the store holds (status, events, ...): it works where the
    secrets' variables are not set, as for the office manager on a server whose secrets live in the
    service's root-only EnvironmentFile. Commands that act (run, doctor, drill) or vouch for the
    config (config check) stay unmarked and need every secret."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        app = click.get_current_context().find_object(App)
        if app is not None:  # before the first look at app.settings, which is cached
            app.secrets_required = False
        return command(*args, **kwargs)

    return cast(F, run)


def accept_config_option(cmd: click.Command) -> None:
    """Let a command (every command of a group) take ``-c FILE`` too: ``portalguard run -c x.yaml`` is
    what people type. Adding it twice is a no-op."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            accept_config_option(sub)
    elif not any("--config" in getattr(p, "opts", ()) for p in cmd.params):
        cmd.params.append(
            click.Option(
                ["-c", "--config"],
                metavar="FILE",
                expose_value=False,
                is_eager=True,
                callback=_remember_config,
                help="The YAML config (also accepted before the command).",
            )
        )


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    app = ctx.find_object(App)
    if value is not None and app is not None:
        app.config_option = value


MAX_DURATION = 10 * 365 * 86400.0  # ten years: longer is a typo, and breaks date arithmetic


def duration_arg(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    if seconds > MAX_DURATION:
        raise click.BadParameter(f'"{text}" is longer than ten years')
    return seconds


@contextmanager
def patient_data() -> Iterator[None]:
    """Around reading patient data: without the data key it was sealed with (``DataKeyError``, which
    names ``data_key``), exit 2 with the reason, as for any other config error."""
    try:
        yield
    except DataKeyError as err:
        fail(str(err), EXIT_CONFIG)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"portalguard: {message}", err=True)
    sys.exit(code)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def printable(text: str) -> str:
    """``text`` with every control, format or line-separator character shown as an escape (``\\n``,
    ``\\u2028``): a row stays one line, and nothing stored can move the terminal's cursor or colours."""
    import unicodedata

    def shown(c: str) -> str:
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp"):
            return repr(c)[1:-1] if c.isascii() else f"\\u{ord(c):04x}"
        return c

    return "".join(shown(c) for c in text)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain text table (cells made printable); widths count East Asian wide characters as two columns."""
    import unicodedata

    rows = [[printable(c) for c in r] for r in rows]

    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)

    cols = [max([width(h), *(width(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c + " " * (w - width(c)) for c, w in zip(cells, cols, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in cols]), *(line(r) for r in rows)])


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(text: str) -> str:
    """A cell a patient (or a portal) wrote must not become a spreadsheet formula (CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


@contextmanager
def owner_only_file(path: str) -> Iterator[IO[str]]:
    """``path`` opened for writing UTF-8 with BOM (Excel reads Japanese then), mode 0600 even if it
    existed; ``-`` is stdout. Patient data goes only to files its owner alone can read."""
    if path == "-":
        yield sys.stdout
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
    except OSError as err:
        raise click.ClickException(f"cannot write {path}: {err.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as f:
        yield f
