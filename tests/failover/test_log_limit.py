"""The log rate limit: one message template at most ``burst`` times a window, then a count."""

from __future__ import annotations

import io
import logging

from failover.log_limit import RateLimitFilter


def _logger(clock: list[float]) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RateLimitFilter(window=60, burst=3, clock=lambda: clock[0]))
    logger = logging.getLogger(f"test.log_limit.{id(out)}")
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
