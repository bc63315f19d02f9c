"""The demo's world on 127.0.0.1: a simulated booking portal, a fake Google Ads API, a staff inbox
(Apprise ``json://``), a mail server (Apprise ``mailto://``), and the Settings that point
portalguard at all of them, with timings short enough to watch a whole outage in about 90 s.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failover.crypto import DataKey
from failover.demo.loopback import ensure_settings_loopback
from failover.fakes.dovecot import Dovecot
from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import CANARY_PATH, PortalSimulator
from failover.fakes.receivers import JsonReceiver, ReceivedRequest, SmtpReceiver
from failover.settings import Settings

log = logging.getLogger("portalguard.demo")
HOST = "127.0.0.1"
PORTAL = "sakura"
CAMPAIGN = "111"
CAMPAIGN_BUDGET = 3000.0
BUDGET_CAP = 5000.0
STAFF_PATH = "/staff-inbox"
WEBHOOK_PATH = "/ivr-hook"
STAFF_USER = "staff"
CLINIC_NAME = "さくら歯科"  # the simulator's page shows this name: the probe's `contains`
MIRROR_PER_DAY = 12


@dataclass(frozen=True, slots=True)
class Timings:
    """The verdict's hysteresis and damping, shortened for the demo (production: 15 s, 30 s, 5 m…)."""

    interval: str = "2s"
    timeout: str = "1s"
    down_failures: int = 3
    down_seconds: float = 5
    up_successes: int = 3
    up_seconds: float = 6
    min_failover: str = "10s"


@dataclass
class Stage:
    """Everything the demo started, with the Settings that point portalguard at it."""

    directory: Path
    simulator: PortalSimulator
    ads: FakeGoogleAds
    inbox: JsonReceiver  # staff notifications (json://) and the webhook
    mail: SmtpReceiver  # staff notifications (mailto://)
    config: dict[str, Any]  # as parsed YAML: what `--keep-running` writes out for the CLI
    settings: Settings
    staff_password: str
    mailbox: Dovecot | None = None  # the clinic's mailbox (Debian's dovecot-imapd), when it can run here

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.server.listen}"

    @property
    def book_url(self) -> str:
        """What patients open: the fallback page while failover is on, else a redirect to the portal."""
        return f"{self.base_url}/book/{PORTAL}"

    @property
    def staff_url(self) -> str:
        return f"{self.base_url}/staff"

    @property
    def appointments_url(self) -> str:
        return f"{self.base_url}/staff/appointments"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.settings.server.metrics_listen}/metrics"

    def staff_messages(self) -> list[dict[str, Any]]:
        """The Apprise JSON bodies the staff inbox received (``title``, ``message``, ``type``)."""
        return [json_body(r) for r in self.inbox.requests if r.path == STAFF_PATH]

    def webhook_posts(self) -> list[dict[str, Any]]:
        return [json_body(r) for r in self.inbox.requests if r.path == WEBHOOK_PATH]


def json_body(request: ReceivedRequest) -> dict[str, Any]:
    """A received JSON object, or {} (with --keep-running, anyone on this machine may post anything)."""
    try:
        body = request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@contextlib.contextmanager
def _mailbox() -> Iterator[Dovecot | None]:
    """The clinic's mailbox for the booking e-mails: a real Dovecot on 127.0.0.1 when it is installed
    and may run here (its mail user must be another user than ours: root can do that), else None and
    the demo goes on without booking e-mails."""
    try:
        box = Dovecot().start()
    except (RuntimeError, OSError, KeyError) as err:
        log.info("demo without booking e-mails: %s", err)
        yield None
        return
    try:
        yield box
    finally:
        box.remove()


def free_port() -> int:
    """A port free on 127.0.0.1 right now (uvicorn needs a number up front, unlike the fakes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def stage(timings: Timings | None = None, language: str = "ja") -> AsyncIterator[Stage]:
    """Start the fakes in a temporary directory, yield the Stage, stop and delete everything after."""
    timings = timings or Timings()
    with tempfile.TemporaryDirectory(prefix="portalguard-demo-") as tmp:
        async with (
            PortalSimulator(HOST, clinic_name=CLINIC_NAME) as simulator,
            JsonReceiver(HOST) as inbox,
            SmtpReceiver(HOST) as mail,
        ):
            ads = FakeGoogleAds({CAMPAIGN: ("PAUSED", CAMPAIGN_BUDGET)})
            with ads:
                password = secrets.token_urlsafe(12)  # 16 characters: the minimum for staff.password
                # Today's and tomorrow's book on the portal's admin screen, for the mirror to copy
                # (fictional names, 090-0000-xxxx numbers).
                simulator.book.seed(days=2, per_day=MIRROR_PER_DAY, seed=7)
                with _mailbox() as mailbox:
                    if mailbox is not None:  # from now on the portal mails the clinic each booking
                        simulator.send_mails(str(mailbox.maildir))
                    config = demo_config(Path(tmp), simulator, ads, inbox, mail, timings, language, password)
                    if mailbox is not None:
                        config["portals"][PORTAL]["mirror"]["mail"] = simulator.mail_config(mailbox.url())
                    settings = Settings.model_validate(config)
                    ensure_settings_loopback(settings)
                    yield Stage(Path(tmp), simulator, ads, inbox, mail, config, settings, password, mailbox)


def demo_config(
    directory: Path,
    simulator: PortalSimulator,
    ads: FakeGoogleAds,
    inbox: JsonReceiver,
    mail: SmtpReceiver,
    timings: Timings,
    language: str,
    staff_password: str,
) -> dict[str, Any]:
    """The config a clinic would write, as parsed YAML, pointing at the local fakes."""
    listen = f"{HOST}:{free_port()}"
    t = timings
    endpoints = simulator.endpoints_config()
    # The admin screen's maintenance page is a failed sync, never an empty day.
    endpoints["admin"] = {**endpoints["admin"], "expect": {"not_contains": ["メンテナンス中"]}}  # type: ignore[dict-item]
    return {
        "clinic": {
            "name": f"{CLINIC_NAME}（デモ）",
            "name_en": "Sakura Dental (demo)",
            "phone": "03-1234-5678",
            "hours": "月〜金 9:30–13:00 / 14:30–19:00",
            "hours_en": "Mon–Fri 9:30–13:00 / 14:30–19:00",
        },
        "canaries": [simulator.control_url + CANARY_PATH],  # the control port never fails
        "canary_interval": t.interval,
        "portals": {
            PORTAL: {
                "endpoints": endpoints,
                "interval": t.interval,
                "timeout": t.timeout,
                "down_after": {"failures": t.down_failures, "seconds": t.down_seconds},
                "up_after": {"successes": t.up_successes, "seconds": t.up_seconds},
                "trigger": "public",
                "book_url": simulator.url("public"),
                "actions": ["page", "ads", "staff", "ivr"],
                "min_failover": t.min_failover,
                "mirror": simulator.mirror_config("admin_html", every="1m", days_ahead=2),
            }
        },
        # A key made for this demo only: the mirror's copy and the booking requests are sealed with it.
        "data_key": DataKey.generate()[0],
        "store": str(directory / "portalguard.db"),
        "server": {
            "listen": listen,
            "public_url": f"http://{listen}",
            "metrics_listen": f"{HOST}:{free_port()}",
        },
        "staff": {"username": STAFF_USER, "password": staff_password},
        "actions": {
            "page": {"type": "fallback_page"},
            "ads": ads.action_config(campaign_ids=[CAMPAIGN], max_daily_budget=BUDGET_CAP),
            "staff": {
                "type": "notify",
                "urls": [inbox.url(STAFF_PATH, scheme="json"), mail.mailto(to="staff@clinic.test")],
                "language": language,
                "timeout": "5s",
            },
            "ivr": {"type": "webhook", "url": inbox.url(WEBHOOK_PATH), "secret": secrets.token_hex(16)},
        },
    }
