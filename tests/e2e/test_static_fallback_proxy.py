"""The static fallback behind real reverse proxies: Debian's nginx and Caddy, each running the
shipped file (``deploy/nginx/portalguard.conf``, ``deploy/caddy/Caddyfile``, with only addresses and
paths replaced) in front of a real ``portalguard run``. The service is killed with kill -9 during a
failover: patients still get the clinic's phone number, with the number the config changed to while
the service ran. Stopped with SIGTERM during a failover, it tells staff at once what stays on."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import PortalSimulator
from failover.fakes.receivers import JsonReceiver
from tests.e2e.test_run_process import PORTAL, Rig, free_port, until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
OLD_PHONE, NEW_PHONE = "03-1234-5678", "03-9999-0000"


def replaced(text: str, changes: dict[str, str]) -> str:
    """``text`` with each change made; a change that finds nothing fails (the shipped file drifted)."""
    for old, new in changes.items():
        assert old in text, f"the shipped proxy config no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def nginx_config(tmp: Path, listen: str, upstream: str, static: Path) -> Path:
    site = (ROOT / "deploy/nginx/portalguard.conf").read_text(encoding="utf-8")
    site = site[: site.index("server {\n    listen 80;")]  # the TLS redirect: no port 80 here
    site = replaced(
        site,
        {
            "listen 443 ssl http2;": f"listen {listen};",
            "    ssl_certificate     /etc/letsencrypt/live/book.example.jp/fullchain.pem;\n": "",
            "    ssl_certificate_key /etc/letsencrypt/live/book.example.jp/privkey.pem;\n": "",
            "proxy_pass http://127.0.0.1:8080;": f"proxy_pass http://{upstream};",
            "root /var/lib/portalguard/static;": f"root {static};",
        },
    )
    (tmp / "site.conf").write_text(site, encoding="utf-8")
    temp = {name: tmp / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    main = (
        ("user root;\n" if os.geteuid() == 0 else "")  # workers must read the test's private tmp dir
        + f"daemon off;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'nginx-error.log'} warn;\n"
        + "events { worker_connections 64; }\nhttp {\n  access_log off;\n"
        + "".join(f"  {name}_temp_path {path};\n" for name, path in temp.items()).replace(
            "body_temp", "client_body_temp"
        )
        + f"  include {tmp / 'site.conf'};\n}}\n"
    )
    (tmp / "nginx.conf").write_text(main, encoding="utf-8")
    return tmp / "nginx.conf"


def caddy_config(tmp: Path, listen: str, upstream: str, static: Path) -> Path:
    site = (ROOT / "deploy/caddy/Caddyfile").read_text(encoding="utf-8")
    site = replaced(
        site,
        {
            "book.example.jp {": f"http://{listen} {{",
            "reverse_proxy 127.0.0.1:8080 {": f"reverse_proxy {upstream} {{",
            "root * /var/lib/portalguard/static": f"root * {static}",
        },
    )
    glob = "{\n\tadmin off\n\tauto_https off\n}\n"
    (tmp / "Caddyfile").write_text(glob + site, encoding="utf-8")
    return tmp / "Caddyfile"


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator[tuple[Path, Path, str, str]]:
    """(static dir, proxies' dir, nginx address, caddy address), the rig's web address filled in later."""
    static, conf = tmp_path / "static", tmp_path / "proxies"
    conf.mkdir()
    yield static, conf, f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"


async def start_proxies(conf: Path, static: Path, nginx_at: str, caddy_at: str, upstream: str) -> list:  # type: ignore[type-arg]
    ncfg = nginx_config(conf, nginx_at, upstream, static)
    ccfg = caddy_config(conf, caddy_at, upstream, static)
    env = os.environ | {"XDG_DATA_HOME": str(conf / "caddy-data"), "XDG_CONFIG_HOME": str(conf / "caddy-config")}
    log = (conf / "proxies.log").open("ab")
    procs = [
        await asyncio.create_subprocess_exec(NGINX, "-c", str(ncfg), stdout=log, stderr=log),
        await asyncio.create_subprocess_exec(
            CADDY, "run", "--config", str(ccfg), "--adapter", "caddyfile", stdout=log, stderr=log, env=env
        ),
    ]
    try:
        for at, proc in zip((nginx_at, caddy_at), procs, strict=True):
            await until(lambda at=at, proc=proc: _answers(at, proc), 15, f"the proxy on {at} answers")
    except BaseException:
        await stop_proxies(procs)
        raise
    return procs


async def stop_proxies(procs: list) -> None:  # type: ignore[type-arg]
    for p in procs:
        if p.returncode is None:
            p.send_signal(signal.SIGTERM)
            await asyncio.wait_for(p.wait(), 10)


async def _answers(at: str, proc: asyncio.subprocess.Process) -> bool:
    assert proc.returncode is None, "the proxy exited: see proxies/proxies.log"
    try:
        async with httpx.AsyncClient() as c:
            await c.get(f"http://{at}/book", timeout=1)
        return True
    except httpx.HTTPError:
        return False


@pytest.fixture
async def rig(tmp_path: Path, proxies: tuple[Path, Path, str, str]) -> AsyncIterator[Rig]:
    static = proxies[0]
    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000)}) as ads:
        async with PortalSimulator() as sim, JsonReceiver() as staff, JsonReceiver() as hook:
            r = Rig(tmp_path, sim, ads, staff, hook)
            edit_config(r, lambda doc: doc["server"].update(static_fallback_dir=str(static)))
            try:
                yield r
            finally:
                if r.proc and r.proc.returncode is None:
                    await r.kill9()


def edit_config(rig: Rig, change) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(rig.config.read_text(encoding="utf-8"))
    change(doc)
    rig.config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


async def test_patients_get_the_phone_from_nginx_and_caddy_when_run_is_killed(
    rig: Rig, proxies: tuple[Path, Path, str, str]
) -> None:
    static, conf, nginx_at, caddy_at = proxies
    await rig.start()
    procs = await start_proxies(conf, static, nginx_at, caddy_at, rig.web)
    try:
        assert (static / f"{PORTAL}.html").is_file() and (static / "index.html").is_file(), "written at start"
        async with httpx.AsyncClient(timeout=10) as web:
            for at in (nginx_at, caddy_at):  # portal up: the proxies pass portalguard's redirect through
                book = await web.get(f"http://{at}/book/{PORTAL}")
                assert book.status_code == 302 and book.headers["location"] == rig.sim.url("public")

            rig.sim.set_mode("error500", endpoints=("public",))
            await until(lambda: rig.converged(True), 30, "failover on")
            for at in (nginx_at, caddy_at):
                live = await web.get(f"http://{at}/book/{PORTAL}")
                assert live.status_code == 200 and "<form" in live.text, "the live page, form and all"

            # The phone number changes in the config while run runs: the static copy follows.
            edit_config(rig, lambda doc: doc["clinic"].update(phone=NEW_PHONE))
            page = static / f"{PORTAL}.html"
            await until(lambda: NEW_PHONE in page.read_text(encoding="utf-8"), 10, "static page rewritten")

            await rig.kill9()
            for at in (nginx_at, caddy_at):
                for path in (f"/book/{PORTAL}", "/book", f"/book/{PORTAL}/done/3"):
                    got = await web.get(f"http://{at}{path}")
                    assert got.status_code in (502, 503, 504), (at, path, got.status_code)
                    assert f'href="tel:{NEW_PHONE}"' in got.text and "さくら歯科" in got.text, (at, path)
                    assert "<form" not in got.text and OLD_PHONE not in got.text
                    assert got.headers["cache-control"] == "no-store"
                sent = await web.post(f"http://{at}/book/{PORTAL}/request", data={"name": "x"})
                where = urlsplit(sent.headers["location"]).path  # nginx makes it absolute, Caddy does not
                assert sent.status_code == 303 and where == "/book", at
                followed = await web.get(f"http://{at}{where}")
                assert f'href="tel:{NEW_PHONE}"' in followed.text
        assert rig.ads.status("111") == "ENABLED", "killed: the ads stay on (the static page is why it matters)"
    finally:
        await stop_proxies(procs)


async def test_sigterm_during_failover_tells_staff_what_stays_on_and_what_goes(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    rig.sim.set_mode("error500", endpoints=("public",))
    await until(lambda: rig.converged(True), 30, "failover on")
    await rig.staff.wait_for(1, 10)  # the outage message
    assert rig.proc is not None
    rig.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(rig.proc.wait(), 30) == 0
    got = await rig.staff.wait_for(2, 1)  # sent before the process exited
    stop = got[1].json()
    assert stop["title"].startswith("【注意】portalguard が停止しました"), stop["title"]
    body = stop["message"]
    assert "そのまま続くもの：Google 広告 (ads)、Webhook (ivr)" in body
    assert "止まるもの：代替予約ページ" in body and "予備の静的ページ" in body
    assert rig.ads.status("111") == "ENABLED"


async def test_sigterm_while_healthy_sends_nothing(rig: Rig) -> None:
    await rig.start()
    await until(lambda: rig.converged(False), 30, "healthy portal converged OFF")
    assert rig.proc is not None
    rig.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(rig.proc.wait(), 30) == 0
    assert rig.staff.requests == []
