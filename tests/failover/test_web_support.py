"""What the web tests share: a config, the app with its store and metrics, an in-process client, and
readers for what the pages show. (No tests here; the ``test_web_*`` modules import it.)"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from failover.crypto import DataKey
from failover.metrics import FailoverMetrics
from failover.settings import Settings
from failover.store import AsyncStore
from failover.web import create_app

PORTAL = "epark"
BOOK_URL = "https://portal.example.jp/clinic/12345/booking"
STAFF_USER, STAFF_PASSWORD, STAFF_TOKEN = "staff", "correct horse battery", "t0ken-0123456789abcdef"
PATIENT_IP = "203.0.113.7"
SCRIPT = '<script>alert("x")</script>'
DATA_KEY = DataKey.generate()[0]  # booking requests are sealed in the web tests: pages show them as before

BASE_CONFIG: dict[str, Any] = {
    "clinic": {
        "name": "さくら歯科 渋谷院",
        "name_en": "Sakura Dental Shibuya",
        "phone": "03-1234-5678",
        "address": "東京都渋谷区道玄坂1-2-3 4F",
        "hours": "月〜金 9:30–13:00 / 14:30–19:00、土 9:30–13:00（日・祝休診）",
        "address_en": "4F, 1-2-3 Dogenzaka, Shibuya-ku, Tokyo",
        "hours_en": "Mon–Fri 9:30–13:00 / 14:30–19:00, Sat 9:30–13:00 (closed Sun and holidays)",
    },
    "staff": {"username": STAFF_USER, "password": STAFF_PASSWORD, "token": STAFF_TOKEN},
    "data_key": DATA_KEY,
    "portals": {
        PORTAL: {
            "endpoints": {"public": {"url": "https://portal.example.jp/clinic/12345"}},
            "book_url": BOOK_URL,
        }
    },
}


def two_portals() -> dict[str, Any]:
    other = {"endpoints": {"public": {"url": "https://other.example.jp/c/9"}}, "book_url": "https://other.example.jp/b"}
    return copy.deepcopy(BASE_CONFIG["portals"]) | {"other": other}


def make_settings(directory: Path, **overrides: Any) -> Settings:
    """The test config; ``overrides`` replace whole top-level sections (``staff={}``)."""
    raw = copy.deepcopy(BASE_CONFIG) | {"store": str(directory / "portalguard.db")} | overrides
    return Settings.model_validate(raw)


@dataclass
class Web:
    settings: Settings
    store: AsyncStore  # tests set up and assert through .sync
    registry: CollectorRegistry
    metrics: FailoverMetrics
    app: Starlette
    notified: list[tuple[str, int]] = field(default_factory=list)

    def client(self, ip: str = PATIENT_IP) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", follow_redirects=False)

    def counter(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def make_web(
    directory: Path,
    clock: Callable[[], float],
    notify: Callable[[str, int], Awaitable[None]] | None = None,
    **overrides: Any,
) -> Web:
    settings = make_settings(directory, **overrides)
    store = AsyncStore(settings.store, clock, data_key=settings.sealing_key())
    registry = CollectorRegistry()
    metrics = FailoverMetrics(registry)
    web = Web(settings, store, registry, metrics, None)  # type: ignore[arg-type]

    async def record(portal: str, number: int) -> None:
        web.notified.append((portal, number))

    web.app = create_app(settings, store, metrics, registry, notify or record, clock)
    return web


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def field_errors(html: str) -> dict[str, str]:
    """Field name -> the message shown next to it."""
    return dict(re.findall(r'<p class="error" id="e-([a-z0-9]+)">([^<]*)</p>', html))


def valid_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "山田 花子",
        "phone": "090-1234-5678",
        "email": "hanako@example.jp",
        "date1": "2027-01-20",
        "time1": "morning",
        "visit": "new",
        "reason": "左下の奥歯が痛みます",
        "consent": "yes",
        "lang": "ja",
    }
    return {k: v for k, v in (form | changes).items() if v is not None}


async def open_form(client: httpx.AsyncClient, path: str = f"/book/{PORTAL}") -> str:
    """GET the page (sets the CSRF cookie in the client) and return its CSRF token."""
    page = await client.get(path)
    assert page.status_code == 200, page.status_code
    return csrf_of(page.text)


async def submit(client: httpx.AsyncClient, form: dict[str, str], portal: str = PORTAL) -> httpx.Response:
    """Open the form and send it; a stored request is a 303 to its confirmation, followed here."""
    token = await open_form(client, f"/book/{portal}")
    return await client.post(f"/book/{portal}/request", data={"csrf": token, **form}, follow_redirects=True)
