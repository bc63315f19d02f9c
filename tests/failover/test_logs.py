"""The service log: one kind of line at most ``burst`` times a window, then a count; clinic-zone times."""

from __future__ import annotations

import io
import logging

from failover.logs import ClinicTimeFormatter, RateLimitFilter


def _logger(clock: list[float]) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RateLimitFilter(window=60, burst=3, clock=lambda: clock[0]))
    logger = logging.getLogger(f"uvicorn.test.{id(out)}")  # a library's: counted by template
    logger.propagate = False
    logger.addHandler(handler)
    return logger, out


def test_a_flood_of_one_message_is_cut_to_the_burst_then_counted() -> None:
    clock = [1000.0]
    logger, out = _logger(clock)
    for port in range(10_000):  # the same template with a different value each time: still one message
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logger.exception("accept failed for port %d", port)
    assert out.getvalue().count("accept failed") == 3
    size = len(out.getvalue())
    clock[0] += 60
    logger.error("accept failed for port %d", 1)
    last = out.getvalue()[size:]
    assert "accept failed for port 1 [9997 more like this in the last 60s not logged]" in last


def test_other_messages_are_not_held_back_by_a_flood() -> None:
    clock = [0.0]
    logger, out = _logger(clock)
    for _ in range(100):
        logger.warning("flood")
    logger.warning("portal %s: failover ON", "sakura")
    assert "portal sakura: failover ON" in out.getvalue() and out.getvalue().count("flood") == 3


def test_our_own_identical_lines_are_cut_but_other_portals_lines_pass() -> None:
    clock = [0.0]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RateLimitFilter(window=60, clock=lambda: clock[0]))
    logger = logging.getLogger("portalguard.test_logs")
    logger.propagate = False
    logger.addHandler(handler)
    for _ in range(120):  # a tick a second for two minutes: the store cannot write
        clock[0] += 1
        logger.error("store: %s not written: %s", "heartbeat", "disk full")
    for portal in ("a", "b", "c", "d"):
        logger.warning("portal %s: failover ON", portal)
    lines = out.getvalue().splitlines()
    assert sum("disk full" in line for line in lines) == 2  # once a minute
    assert any("more like this in the last 60s not logged" in line for line in lines)
    assert [line for line in lines if "failover ON" in line] == [f"portal {p}: failover ON" for p in "abcd"]


def test_times_carry_the_clinics_offset() -> None:
    from zoneinfo import ZoneInfo

    record = logging.LogRecord("portalguard", logging.INFO, __file__, 1, "started", None, None)
    record.created = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    text = ClinicTimeFormatter(ZoneInfo("Asia/Tokyo")).format(record)
    assert text == "2027-01-15T17:00:00.000+09:00 INFO portalguard: started"
