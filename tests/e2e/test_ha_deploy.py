"""The HA deploy files (``deploy/ha/``): the compose file that tries two sites and PostgreSQL on one
machine, the config both sites share, and the reverse proxies in front of both. The compose file is
parsed (no Docker engine in CI); the proxy files are checked by the real binaries (``nginx -t``,
``caddy validate``) and then run, with only addresses and paths replaced, in front of two small local
backends standing in for the two sites: one stops, patients keep getting answers from the other; both
stop, patients get the static page with the clinic's phone."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from failover.crypto import DataKey
from failover.fakes.selfsigned import self_signed
from tests.e2e.test_run_process import free_port, until
from tests.e2e.test_static_fallback_proxy import replaced

ROOT = Path(__file__).resolve().parents[2]
HA = ROOT / "deploy/ha"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
PHONE = "03-1234-5678"
STORE = "postgresql://portalguard:secret@db.example.jp:5432/portalguard"


def compose() -> dict[str, Any]:
    return yaml.safe_load((HA / "compose.yaml").read_text(encoding="utf-8"))


def sites() -> dict[str, dict[str, Any]]:
    """The compose services that run portalguard (built from the portalguard Dockerfile)."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/container/Dockerfile"
    }


def ha_config() -> dict[str, Any]:
    return yaml.safe_load((HA / "portalguard.yaml").read_text(encoding="utf-8"))


def need(binary: str, package: str) -> None:
    if not Path(binary).is_file():
        # make test installs it; in CI a missing tool is a failure, not a quiet skip.
        assert not os.environ.get("CI"), f"{binary} missing: `make deps-debian` installs {package}"
        pytest.skip(f"{binary} missing (Debian {package})")


# ------------------------------------------------------------------------------------------ compose


def test_compose_runs_two_sites_on_one_postgresql() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "site-a", "site-b"}
    assert set(sites()) == {"site-a", "site-b"}
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    (data,) = postgres["volumes"]
    assert data.split(":")[0] in compose()["volumes"], "the database lives in a named volume"
    assert "ports" not in postgres, "only the sites reach the database"


def test_the_sites_differ_by_name_and_port_only() -> None:
    a, b = sites()["site-a"], sites()["site-b"]
    assert a["environment"]["PORTALGUARD_SITE"] != b["environment"]["PORTALGUARD_SITE"]
    assert a["environment"]["PORTALGUARD_STORE"] == b["environment"]["PORTALGUARD_STORE"]
    assert a["ports"] != b["ports"]
    same = {k: v for k, v in a.items() if k not in ("environment", "ports")}
    assert same == {k: v for k, v in b.items() if k not in ("environment", "ports")}
    assert set(a["environment"]) == {"PORTALGUARD_SITE", "PORTALGUARD_STORE"}


def interpolated(value: str, environ: dict[str, str]) -> str:
    """``value`` with compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` filled in."""

    def one(m: re.Match[str]) -> str:
        name, op, word = m[1], m[2], m[3]
        if environ.get(name):
            return environ[name]
        assert op == ":-", f"{name} is not set: {word}"
        return word

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def test_the_store_is_the_postgres_service() -> None:
    environ = {"POSTGRES_PASSWORD": "s3cret"}
    postgres = {k: interpolated(v, environ) for k, v in compose()["services"]["postgres"]["environment"].items()}
    for name, site in sites().items():
        url = urlsplit(interpolated(site["environment"]["PORTALGUARD_STORE"], environ))
        assert url.scheme == "postgresql" and url.hostname == "postgres" and url.port == 5432, name
        assert url.username == postgres["POSTGRES_USER"] and url.path == f"/{postgres['POSTGRES_DB']}", name
        assert url.password == "s3cret", name
        assert site["depends_on"] == {"postgres": {"condition": "service_healthy"}}, name
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD is not set"):  # no default password
        interpolated(compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"], {})


def test_every_port_is_published_on_loopback_only() -> None:
    published = []
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
            published.append(port.split(":")[1])
    assert len(published) == len(set(published)) == 2


def test_every_file_compose_mounts_exists() -> None:
    spec = compose()
    named = set(spec.get("volumes", {}))
    for name, service in spec["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in named:
                continue
            assert (HA / source).exists(), f"{name} mounts missing {source}"
        build = service.get("build")
        if build:
            assert (HA / build["context"] / build["dockerfile"]).is_file()
        for env in service.get("env_file", []):
            assert (HA / f"{env['path']}.example").is_file(), f"{name} reads {env['path']}: ship its example"


def test_compose_starts_portalguard_run_with_the_config() -> None:
    from click.testing import CliRunner

    from failover.cli import main

    for name, site in sites().items():
        args = site["command"]
        config = args[args.index("-c") + 1]
        assert args[-1] == "run", name
        assert f"./portalguard.yaml:{config}:ro" in site["volumes"], name
        result = CliRunner().invoke(main, [*args, "--help"])  # parses the options without starting
        assert result.exit_code == 0, result.output


def test_both_sites_share_the_web_secret() -> None:
    # A form made by one site must pass the CSRF check on the other: the same server.secret_file.
    secret = Path(ha_config()["server"]["secret_file"])
    holders = set()
    for name, site in sites().items():
        (holder,) = [v for v in site["volumes"] if secret.is_relative_to(v.split(":")[1])]
        assert holder.split(":")[0] in compose()["volumes"], name
        holders.add(holder)
    assert len(holders) == 1


def test_the_sites_trust_x_forwarded_for_from_the_compose_gateway_only() -> None:
    (ipam,) = compose()["networks"]["default"]["ipam"]["config"]
    main = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text(encoding="utf-8"))
    (main_ipam,) = main["networks"]["default"]["ipam"]["config"]
    assert ipam["subnet"] != main_ipam["subnet"], "both stacks can run side by side"
    trusted = ha_config()["server"]["trusted_proxies"]
    assert ipam["gateway"] in trusted and all("/" not in p for p in trusted)


# ------------------------------------------------------------------------------------------- config


def test_the_ha_config_has_the_contract_keys() -> None:
    doc = ha_config()
    assert doc["store"] == "${PORTALGUARD_STORE}"
    assert "site" not in doc, "the same file on every site: the name comes from PORTALGUARD_SITE"
    assert set(doc["ha"]) == {"lease", "quorum", "site_stale_after"}
    assert doc["ha"]["quorum"] == "majority"
    seconds = {k: int(re.fullmatch(r"(\d+)s", doc["ha"][k])[1]) for k in ("lease", "site_stale_after")}  # type: ignore[index]
    assert seconds["site_stale_after"] > seconds["lease"]


def test_the_ha_config_loads(tmp_path: Path) -> None:
    from failover.settings.loader import load

    doc = ha_config()
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    environ = {"PORTALGUARD_STORE": STORE, "PORTALGUARD_DATA_KEY": DataKey.generate()[0], "PORTALGUARD_SITE": "site-a"}
    settings = load(path, environ=environ)
    assert settings.store == STORE and settings.site == "site-a"
    assert (settings.ha.lease, settings.ha.quorum) == (10.0, "majority")
    assert settings.server.secret_file is not None and settings.data_key is not None
    assert settings.server.listen.startswith("0.0.0.0:")


# ------------------------------------------------------------------------------------ proxies, -t


def upstreams_in_compose() -> set[str]:
    return {port.rsplit(":", 1)[0] for site in sites().values() for port in site["ports"]}


def test_the_proxies_name_the_sites_compose_publishes() -> None:
    nginx = (HA / "nginx.conf").read_text(encoding="utf-8")
    upstream = nginx[nginx.index("upstream portalguard {") : nginx.index("}", nginx.index("upstream portalguard {"))]
    assert (
        set(re.findall(r"^\s*server (\S+) max_fails=1 fail_timeout=\d+s;$", upstream, re.M)) == upstreams_in_compose()
    )
    assert "proxy_pass http://portalguard;" in nginx
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in nginx
    caddy = (HA / "Caddyfile").read_text(encoding="utf-8")
    (line,) = re.findall(r"reverse_proxy (.+) \{", caddy)
    assert set(line.split()) == upstreams_in_compose()
    assert "health_uri /healthz" in caddy and "fail_duration" in caddy


def test_nginx_accepts_the_shipped_file(tmp_path: Path) -> None:
    need(NGINX, "nginx-light")
    cert = self_signed("book.example.jp")
    (tmp_path / "cert.pem").write_bytes(cert.cert_pem)
    (tmp_path / "key.pem").write_bytes(cert.key_pem)
    site = replaced(
        (HA / "nginx.conf").read_text(encoding="utf-8"),
        {
            "/etc/letsencrypt/live/book.example.jp/fullchain.pem": str(tmp_path / "cert.pem"),
            "/etc/letsencrypt/live/book.example.jp/privkey.pem": str(tmp_path / "key.pem"),
        },
    )
    main = nginx_main(tmp_path, site)
    done = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


def test_caddy_accepts_the_shipped_file(tmp_path: Path) -> None:
    need(CADDY, "caddy")
    env = os.environ | {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    shipped = str(HA / "Caddyfile")
    adapted = subprocess.run(
        [CADDY, "adapt", "--config", shipped, "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert adapted.returncode == 0, adapted.stderr
    assert "warn" not in adapted.stderr.lower(), adapted.stderr  # e.g. not formatted as `caddy fmt` would
    # validate provisions every module (health checks, lb policy) beyond what adapt checks; the site
    # address as in the test below, so that it asks no certificate authority for anything.
    local = tmp_path / "Caddyfile"
    local.write_text(
        "{\n\tadmin off\n\tauto_https off\n}\n"
        + replaced(Path(shipped).read_text(encoding="utf-8"), {"book.example.jp {": "http://127.0.0.1:1 {"}),
        encoding="utf-8",
    )
    validated = subprocess.run(
        [CADDY, "validate", "--config", str(local), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert validated.returncode == 0, validated.stderr
    assert "Valid configuration" in validated.stdout + validated.stderr


def nginx_main(tmp: Path, site: str) -> Path:
    """An nginx.conf of the test's own (pid, logs, temp dirs in ``tmp``) that includes ``site``."""
    (tmp / "site.conf").write_text(site, encoding="utf-8")
    temp = {name: tmp / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    main = (
        ("user root;\n" if os.geteuid() == 0 else "")  # workers must read the test's private tmp dir
        + f"daemon off;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'nginx-error.log'} warn;\n"
        + "events { worker_connections 64; }\nhttp {\n  access_log off;\n"
        + "".join(f"  {name}_temp_path {path};\n" for name, path in temp.items())
        + f"  include {tmp / 'site.conf'};\n}}\n"
    )
    (tmp / "nginx.conf").write_text(main, encoding="utf-8")
    return tmp / "nginx.conf"


# ---------------------------------------------------------------------------- proxies with traffic


class Site:
    """A stand-in for one portalguard site: /healthz, /book pages that say which site answered, a
    booking POST it counts; ``status`` makes its /book pages answer e.g. 503 (starting)."""

    def __init__(self, name: str) -> None:
        self.name, self.status, self.posts = name, 200, 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = 200 if self.path == "/healthz" else site.status
                self._answer(status, f"{site.name} {self.path}")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                site.posts += 1
                self._answer(site.status, f"{site.name} stored")

            def _answer(self, status: int, text: str) -> None:
                if status == 503:  # as portalguard's own "please call" page
                    text += f' <a href="tel:{PHONE}">{PHONE}</a>'
                body = text.encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.at = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Gone as a dead machine's site is to the proxy: connections are refused."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)


@pytest.fixture
def two_sites() -> Iterator[tuple[Site, Site]]:
    a, b = Site("site-a"), Site("site-b")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def proxy_config(kind: str, tmp: Path, listen: str, a: Site, b: Site, static: Path) -> list[str]:
    """The command line that runs the shipped ``kind`` file on ``listen`` in front of ``a`` and ``b``."""
    if kind == "nginx":
        site = (HA / "nginx.conf").read_text(encoding="utf-8")
        site = site[: site.index("server {\n    listen 80;")]  # the TLS redirect: no port 80 here
        site = replaced(
            site,
            {
                "listen 443 ssl http2;": f"listen {listen};",
                "    ssl_certificate     /etc/letsencrypt/live/book.example.jp/fullchain.pem;\n": "",
                "    ssl_certificate_key /etc/letsencrypt/live/book.example.jp/privkey.pem;\n": "",
                "server 127.0.0.1:8081 ": f"server {a.at} ",
                "server 127.0.0.1:8082 ": f"server {b.at} ",
                "root /var/lib/portalguard/static;": f"root {static};",
            },
        )
        return [NGINX, "-c", str(nginx_main(tmp, site))]
    site = replaced(
        (HA / "Caddyfile").read_text(encoding="utf-8"),
        {
            "book.example.jp {": f"http://{listen} {{",
            "reverse_proxy 127.0.0.1:8081 127.0.0.1:8082 {": f"reverse_proxy {a.at} {b.at} {{",
            "root * /var/lib/portalguard/static": f"root * {static}",
        },
    )
    (tmp / "Caddyfile").write_text("{\n\tadmin off\n\tauto_https off\n}\n" + site, encoding="utf-8")
    return [CADDY, "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"]


async def run_proxy(
    kind: str, tmp: Path, a: Site, b: Site
) -> tuple[asyncio.subprocess.Process, str]:  # (the process, its address)
    need(NGINX if kind == "nginx" else CADDY, "nginx-light" if kind == "nginx" else "caddy")
    static = tmp / "static"
    static.mkdir()
    for page in ("index.html", "sakura.html"):
        (static / page).write_text(f'<p>お電話で <a href="tel:{PHONE}">{PHONE}</a></p>', encoding="utf-8")
    listen = f"127.0.0.1:{free_port()}"
    env = os.environ | {"XDG_DATA_HOME": str(tmp / "caddy-data"), "XDG_CONFIG_HOME": str(tmp / "caddy-config")}
    log = (tmp / "proxy.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        *proxy_config(kind, tmp, listen, a, b, static), stdout=log, stderr=log, env=env
    )

    async def answers() -> bool:
        assert proc.returncode is None, f"{kind} exited: see {tmp / 'proxy.log'}"
        try:
            async with httpx.AsyncClient() as c:
                await c.get(f"http://{listen}/", timeout=1)  # the proxy's own 404: no site touched
            return True
        except httpx.HTTPError:
            return False

    try:
        await until(answers, 15, f"{kind} on {listen} answers")
    except BaseException:
        await stop_proxy(proc)
        raise
    return proc, listen


async def stop_proxy(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)


@pytest.mark.anyio
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["nginx", "caddy"])
async def test_patients_keep_getting_answers_when_one_site_stops(
    kind: str, tmp_path: Path, two_sites: tuple[Site, Site]
) -> None:
    a, b = two_sites
    proc, at = await run_proxy(kind, tmp_path, a, b)
    try:
        async with httpx.AsyncClient(timeout=15) as web:
            both = [await web.get(f"http://{at}/book/sakura") for _ in range(6)]
            assert {r.status_code for r in both} == {200}
            assert {r.text.split()[0] for r in both} == {"site-a", "site-b"}, "either site serves patients"

            a.stop()  # site-a's machine dies
            for _ in range(10):
                got = await web.get(f"http://{at}/book/sakura")
                assert got.status_code == 200 and got.text == "site-b /book/sakura", got.text
            sent = await web.post(f"http://{at}/book/sakura/request", data={"name": "x"})
            assert sent.status_code == 200 and sent.text == "site-b stored"
            assert b.posts == 1, "the booking request reached the live site, once"

            b.stop()  # and site-b's: the static page, with the phone
            got = await web.get(f"http://{at}/book/sakura")
            assert got.status_code in (502, 503, 504) and f'href="tel:{PHONE}"' in got.text, got.text
            assert got.headers["cache-control"] == "no-store"
            sent = await web.post(f"http://{at}/book/sakura/request", data={"name": "x"})
            assert sent.status_code == 303 and urlsplit(sent.headers["location"]).path == "/book"
    finally:
        await stop_proxy(proc)


@pytest.mark.anyio
@pytest.mark.slow
async def test_nginx_passes_a_503_on_to_the_other_site(tmp_path: Path, two_sites: tuple[Site, Site]) -> None:
    a, b = two_sites
    a.status = 503  # e.g. starting, or cut off from the store while the other site is not
    proc, at = await run_proxy("nginx", tmp_path, a, b)
    try:
        async with httpx.AsyncClient(timeout=15) as web:
            for _ in range(6):
                got = await web.get(f"http://{at}/book/sakura")
                assert got.status_code == 200 and got.text == "site-b /book/sakura", got.text
            # Both: the last site's own "please call" page, or, with both marked failed (site-a is,
            # from the requests above), the static one. Either way a 503 with the phone.
            b.status = 503
            for _ in range(3):
                got = await web.get(f"http://{at}/book/sakura")
                assert got.status_code == 503 and f'href="tel:{PHONE}"' in got.text, got.text
    finally:
        await stop_proxy(proc)
