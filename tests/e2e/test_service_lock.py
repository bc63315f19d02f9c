"""Two ``portalguard run`` on one store: the second exits 2 at once naming the first; the CLI still
works beside the running one. Real processes, on 127.0.0.1 (the rig of test_run_process)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
import yaml

from tests.e2e.test_run_process import BIN, PORTAL, Rig, free_port, rig  # noqa: F401 (rig: the fixture)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_second_run_on_the_same_store_exits_2_naming_the_first(rig: Rig) -> None:  # noqa: F811
    await rig.start()
    assert rig.proc is not None
    # Other ports, same store: only the store can be what stops it.
    doc = yaml.safe_load(rig.config.read_text(encoding="utf-8"))
    doc["server"] = {"listen": f"127.0.0.1:{free_port()}", "metrics_listen": f"127.0.0.1:{free_port()}"}
    second_config = rig.tmp / "second.yaml"
    second_config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    started = time.monotonic()
    second = await asyncio.create_subprocess_exec(
        str(BIN), "-c", str(second_config), "run", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(second.communicate(), 30)
    assert second.returncode == 2
    assert time.monotonic() - started < 5.0
    said = err.decode()
    assert f"another portalguard run (PID {rig.proc.pid} on host {socket.gethostname()}, since " in said, said
    assert f"already uses store {doc['store']}; stop it first, or give this instance its own store" in said
    assert "Traceback" not in said

    status = json.loads(await rig.cli("status", "--json"))  # the CLI does not take the lock
    assert PORTAL in status["portals"]
    assert rig.proc.returncode is None  # the first one runs on
