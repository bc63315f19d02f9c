"""Load on the fallback booking page over loopback: page GETs/s, form POSTs/s, p99 latency, lost requests.

    .venv/bin/python bench/fallback_load.py [--seconds 10] [--connections 32]

The server is a separate process running uvicorn with the real app on a temporary store (one worker,
as in ``portalguard run``). The load generator is a small asyncio HTTP/1.1 keep-alive client: on a
2-core machine a full HTTP client library would spend more CPU than the server under test and
measure itself. Every POST acknowledged with 200 and a request number must be in the store at the
end (zero lost requests). Prints a Markdown table; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

PORTAL = "bench"
TARGET_GET_RPS, TARGET_POST_RPS, TARGET_P99_MS = 1000.0, 200.0, 100.0
CONFIG: dict = {
    "clinic": {
        "name": "さくら歯科 渋谷院",
        "phone": "03-1234-5678",
        "address": "東京都渋谷区道玄坂1-2-3 4F",
        "hours": "月〜金 9:30–13:00 / 14:30–19:00",
    },
    "portals": {
        PORTAL: {
            "endpoints": {"public": {"url": "https://portal.example.jp/c/1"}},
            "book_url": "https://portal.example.jp/b",
        }
    },
    "booking": {"rate_limit_per_minute": 1_000_000_000},  # one client IP sends everything here
}


# -- the server process ---------------------------------------------------------------------------


def serve(config_path: str, port_file: str) -> None:
    import uvicorn
    from prometheus_client import CollectorRegistry

    from failover.metrics import FailoverMetrics
    from failover.resilient import ResilientStore
    from failover.settings import Settings
    from failover.web import create_app

    settings = Settings.model_validate(json.loads(Path(config_path).read_text()))
    store = ResilientStore(settings.store)  # as `portalguard run` has it: /book answers from memory
    store.sync.set_page(PORTAL, True)
    asyncio.run(store.load(settings.portals))
    registry = CollectorRegistry()
    app = create_app(settings, store, FailoverMetrics(registry), registry)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    sock = listening_socket()
    Path(port_file).write_text(str(sock.getsockname()[1]))  # connections wait in the backlog meanwhile
    uvicorn.Server(config).run(sockets=[sock])


def listening_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say so;
    # without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


# -- the load generator ---------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    acknowledged: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if code < 400)

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 400)

    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return 0.0
        return statistics.quantiles(self.latencies, n=1000)[int(q * 1000) - 1] * 1000


class Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read status, headers and the body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, raw: bytes) -> tuple[int, bytes, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        body = await self.reader.readexactly(int(length.group(1))) if length else b""
        return int(head[9:12]), head, body

    def close(self) -> None:
        self.writer.close()


def get(path: str, cookie: str = "") -> bytes:
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


def post(path: str, body: bytes, cookie: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def form_body(csrf: str, n: int) -> bytes:
    day = (datetime.now(ZoneInfo("Asia/Tokyo")).date() + timedelta(days=3)).isoformat()
    fields = {
        "csrf": csrf,
        "name": f"ベンチ 太郎{n}",
        "phone": "090-1234-5678",
        "email": "bench@example.jp",
        "date1": day,
        "time1": "morning",
        "visit": "new",
        "reason": "定期検診を希望します。" * 5,
        "consent": "yes",
        "lang": "ja",
    }
    return urlencode(fields).encode()


async def session(port: int) -> tuple[Connection, str, str]:
    """A connection that has loaded the page: its CSRF cookie and token."""
    conn = await Connection.open(port)
    status, head, body = await conn.request(get(f"/book/{PORTAL}"))
    assert status == 200, f"GET /book/{PORTAL} answered {status}: is the page switched on?"
    cookie = re.search(rb"(?i)set-cookie: *([^;\r\n]+)", head).group(1).decode()
    token = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()
    return conn, cookie, token


async def drive(
    phase: Phase, port: int, connections: int, seconds: float, warmup: float, make: Callable[[int], bytes] | None
) -> None:
    """``connections`` closed loops for ``warmup + seconds``; only the last ``seconds`` are recorded."""
    start = time.perf_counter()
    measure_from, stop = start + warmup, start + warmup + seconds

    async def loop(worker: int) -> None:
        conn, cookie, token = await session(port)
        n = 0
        while (now := time.perf_counter()) < stop:
            n += 1
            if make is not None and n > 1:  # each rendered form sends once: a patient loads the form first
                _, _, page = await conn.request(get(f"/book/{PORTAL}", cookie))
                token = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
                now = time.perf_counter()
            raw = (
                get(f"/book/{PORTAL}")
                if make is None
                else post(f"/book/{PORTAL}/request", form_body(token, worker * 1_000_000 + n), cookie)
            )
            status, head, _ = await conn.request(raw)
            done = time.perf_counter()
            if make is not None and status == 303:
                # Acknowledged even during the warm-up: every stored request is counted against it.
                phase.acknowledged.append(int(re.search(rb"(?i)\r\nlocation: *[^\r]*/done/(\d+)", head).group(1)))
            if now >= measure_from:
                phase.latencies.append(done - now)
                phase.statuses[status] = phase.statuses.get(status, 0) + 1
        conn.close()

    await asyncio.gather(*(loop(i) for i in range(connections)))
    phase.seconds = seconds


def count_stored(store_path: str) -> tuple[int, set[int]]:
    from failover.store import Store

    store = Store(store_path)
    try:
        return store.count_requests(), {r.id for r in store.requests(limit=10_000_000)}
    finally:
        store.close()


# -- main -----------------------------------------------------------------------------------------


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    store = str(workdir / "bench.db")
    config = workdir / "config.json"
    config.write_text(json.dumps({**CONFIG, "store": store}, ensure_ascii=False))
    port_file = workdir / "port"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(config), str(port_file)], stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text()), store


def table(get_phase: Phase, post_phase: Phase, stored: int, lost: int, acknowledged: int) -> str:
    def row(p: Phase, target_rps: float) -> str:
        ok = p.rate() >= target_rps and p.percentile(0.99) < TARGET_P99_MS and p.errors == 0
        return (
            f"| {p.name} | {len(p.latencies):,} | {p.errors} | {p.rate():,.0f} | {p.percentile(0.50):.1f} | "
            f"{p.percentile(0.99):.1f} | ≥ {target_rps:,.0f}/s, p99 < {TARGET_P99_MS:.0f} ms | "
            f"{'yes' if ok else '**no**'} |"
        )

    lines = [
        "| phase | requests | errors | per second | p50 ms | p99 ms | target | met |",
        "|---|---:|---:|---:|---:|---:|---|---|",
        row(get_phase, TARGET_GET_RPS),
        row(post_phase, TARGET_POST_RPS),
        "",
        f"Booking requests acknowledged (303 + number): {acknowledged:,}; in the store: {stored:,}; lost: **{lost}**.",
    ]
    return "\n".join(lines)


async def bench(port: int, args: argparse.Namespace) -> tuple[Phase, Phase]:
    get_phase, post_phase = Phase("fallback page GET"), Phase("booking form POST")
    await drive(get_phase, port, args.connections, args.seconds, args.warmup, None)
    await drive(post_phase, port, args.post_connections, args.seconds, args.warmup, form_body)
    return get_phase, post_phase


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=16, help="concurrent GET connections")
    parser.add_argument("--post-connections", type=int, default=8, help="concurrent POST connections")
    parser.add_argument("--serve", nargs=2, metavar=("CONFIG", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    with tempfile.TemporaryDirectory(prefix="portalguard-bench-") as tmp:
        proc, port, store = start_server(Path(tmp))
        try:
            get_phase, post_phase = asyncio.run(bench(port, args))
        finally:
            proc.terminate()
            proc.wait(10)
        stored, ids = count_stored(store)
    acknowledged = set(post_phase.acknowledged)
    lost = len(acknowledged - ids)
    print(
        f"\nfallback_load: {os.cpu_count()} CPUs, {args.seconds:g} s per phase, "
        f"{args.connections} GET / {args.post_connections} POST connections\n"
    )
    print(table(get_phase, post_phase, stored, lost, len(post_phase.acknowledged)))
    met = all(
        p.rate() >= target and p.percentile(0.99) < TARGET_P99_MS and p.errors == 0
        for p, target in ((get_phase, TARGET_GET_RPS), (post_phase, TARGET_POST_RPS))
    )
    return 0 if met and lost == 0 and stored == len(post_phase.acknowledged) else 1


if __name__ == "__main__":
    sys.exit(main())
