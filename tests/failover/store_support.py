"""Helpers the store tests share."""

from __future__ import annotations

import threading
from pathlib import Path

from failover.store import Store


def open_at_once(path: Path, n: int = 3) -> tuple[list[Store], list[BaseException]]:
    """``n`` threads open ``path`` at the same moment (as the service and CLI commands may): the
    stores opened and the errors raised."""
    opened: list[Store] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def open_store() -> None:
        try:
            barrier.wait()
            opened.append(Store(path))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=open_store) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return opened, errors
