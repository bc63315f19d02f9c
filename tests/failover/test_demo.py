"""``portalguard demo``: the loopback guard, the scenario player, and the whole demo end to end."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from failover.demo.loopback import NotLoopback, addresses, ensure_loopback, ensure_settings_loopback
from failover.demo.player import Player, ScenarioFailed
from failover.demo.script import Phase, Step, event
from failover.demo.stage import Timings, demo_config
from failover.demo.timeline import Entry, Timeline
from failover.fakes.google_ads_server import FakeGoogleAds
from failover.fakes.portal_simulator import PortalSimulator
from failover.fakes.receivers import JsonReceiver, SmtpReceiver
from failover.settings import Settings

# -- the loopback guard -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "http://127.0.0.1:8080/book",
        "https://localhost/x",
        "http://[::1]:8080/",
        "127.0.0.1:9464",
        "[::1]:9464",
        "localhost:50051",
        "json://127.0.0.1:4000/staff-inbox",
        "mailto://user:pw@127.0.0.1:2525?from=a@b.test&to=c@d.test",
        "HTTP://LOCALHOST:1/",
    ],
)
def test_loopback_addresses_pass(address: str) -> None:
    assert ensure_loopback("x", address) == address


@pytest.mark.parametrize(
    "address",
    [
        "http://0.0.0.0:8080/",
        "0.0.0.0:8080",
        "[::]:8080",
        "http://10.0.0.5/",
        "https://portal.example.jp/clinic/1",
        "http://127.0.0.1.example.com/",  # a name that merely starts like loopback
        "http://127.0.0.1@evil.example/",  # user info that looks like a host
        "slack://T000/B000/XXXX",
        "mailto://user:pw@smtp.example.jp?to=a@b.test",
        "192.168.1.10:9464",
        "not an address",
    ],
)
def test_other_addresses_are_refused(address: str) -> None:
    with pytest.raises(NotLoopback):
        ensure_loopback("x", address)


def _demo_settings_data(tmp_path: Path) -> dict[str, Any]:
    """The demo's config as the demo builds it, from fakes that are not started (no I/O needed)."""
    ads = FakeGoogleAds()
    ads.endpoint, ads.token_uri, ads.ca_file = "127.0.0.1:50051", "https://127.0.0.1:50052/token", "/x/ca.pem"
    return demo_config(
        tmp_path, PortalSimulator(), ads, JsonReceiver(), SmtpReceiver(), Timings(), "ja", "staff-password-0123456"
    )


ADDRESS_KEYS = [
    "canaries[0]",
    "portals.sakura.endpoints.public.url",
    "portals.sakura.endpoints.admin.url",
    "portals.sakura.book_url",
    "server.listen",
    "server.public_url",
    "server.metrics_listen",
    "actions.ads.endpoint",
    "actions.ads.credentials.token_uri",
    "actions.staff.urls[0]",
    "actions.staff.urls[1]",
    "actions.ivr.url",
    "portals.sakura.mirror.source.url",
]
# The mirror's source must be on the admin endpoint's host (a config rule: the staff session's cookies
# go nowhere else), so the two move together: replacing the admin host replaces the mirror's too.
TIED = {"portals.sakura.endpoints.admin.url": "portals.sakura.mirror.source.url"}


def test_the_guard_sees_every_address_of_the_demo_config(tmp_path: Path) -> None:
    settings = Settings.model_validate(_demo_settings_data(tmp_path))
    assert sorted(key for key, _ in addresses(settings)) == sorted(ADDRESS_KEYS)
    ensure_settings_loopback(settings)  # the demo's own config passes


@pytest.mark.parametrize("key", [k for k in ADDRESS_KEYS if k not in TIED.values()])
def test_one_outside_address_anywhere_stops_the_demo(tmp_path: Path, key: str) -> None:
    data = _demo_settings_data(tmp_path)
    _replace_host(data, key)
    if key in TIED:
        _replace_host(data, TIED[key])
    with pytest.raises(NotLoopback, match=key.replace("[", r"\[").replace("]", r"\]")):
        ensure_settings_loopback(Settings.model_validate(data))


def _replace_host(data: dict[str, Any], key: str) -> None:
    parts = key.replace("]", "").replace("[", ".").split(".")
    *path, last = [int(p) if p.isdigit() else p for p in parts]
    node: Any = data
    for part in path:
        node = node[part]
    node[last] = node[last].replace("127.0.0.1", "192.0.2.7")


# -- the player -----------------------------------------------------------------------------------


class _ScriptedWatcher:
    """Gives the player prepared entries, one batch per poll."""

    def __init__(self, batches: list[list[Entry]]) -> None:
        self.started = 0.0
        self.batches = batches

    async def poll(self) -> list[Entry]:
        return self.batches.pop(0) if self.batches else []


def _verdict(t: float, to: str) -> Entry:
    return Entry(t, "store", f"verdict → {to}", data={"kind": "verdict", "to": to})


def _steps(bound: float = 5.0) -> list[Step]:
    return [
        Step("degraded", "verdict DEGRADED", event("verdict", to="degraded"), bound),
        Step("down", "verdict DOWN", event("verdict", to="down"), bound),
    ]


async def _play(batches: list[list[Entry]], steps: list[Step]) -> Timeline:
    lines: list[str] = []
    timeline = Timeline(color=False, echo=lambda text="", **_: lines.append(text))
    service = asyncio.create_task(asyncio.Event().wait())
    try:
        player = Player(timeline, _ScriptedWatcher(batches), service, asyncio.Event())  # type: ignore[arg-type]
        await player.play([Phase("outage", steps)])
    finally:
        service.cancel()
    return timeline


@pytest.mark.anyio
async def test_steps_complete_in_order_and_are_marked() -> None:
    timeline = await _play([[_verdict(1, "degraded")], [_verdict(2, "down")]], _steps())
    assert [s["step"] for s in timeline.steps] == ["degraded", "down"]
    assert [e.milestone for e in timeline.entries] == ["degraded", "down"]


@pytest.mark.anyio
async def test_a_step_seen_before_the_one_it_follows_does_not_count() -> None:
    # DOWN first, then DEGRADED: the early DOWN must not complete the "down" step.
    batches = [[_verdict(1, "down")], [_verdict(2, "degraded")], [_verdict(3, "down")]]
    timeline = await _play(batches, _steps())
    assert [e.milestone for e in timeline.entries] == [None, "degraded", "down"]


@pytest.mark.anyio
async def test_a_missing_step_fails_naming_it() -> None:
    with pytest.raises(ScenarioFailed, match=r'step "verdict DOWN" \(down\): not seen within'):
        await _play([[_verdict(1, "degraded")]], _steps(bound=0.6))


# -- the whole demo -------------------------------------------------------------------------------

PHASES = ["[1/4] Start", "[2/4] Outage", "[3/4] Patients book", "[4/4] The portal is back"]
# Each group happens after every step of the group before it; within a group the order is free
# (a failover's actions run concurrently).
ORDER = [
    {"service_started", "portal_up"},
    {"degraded"},
    {"down"},
    {"failover_on"},
    {"page_on", "ads_on", "campaign_enabled", "webhook_on", "staff_notified", "staff_inbox"},
    {"request_stored", "request_announced"},
    {"recovering"},
    {"up"},
    {"failover_off"},
    {"page_off", "ads_off", "campaign_paused", "webhook_off", "staff_off", "recovered_message"},
]


@pytest.mark.slow
def test_the_demo_plays_a_whole_outage_and_recovery_then_keeps_running_until_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "timeline.json"
    portalguard = Path(sys.executable).with_name("portalguard")
    proc = subprocess.Popen(
        [str(portalguard), "demo", "--outage-seconds", "2", "--json-timeline", str(out), "--keep-running"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    killer = threading.Timer(150, proc.kill)  # bounds the whole run, however it hangs
    killer.start()
    try:
        assert proc.stdout is not None
        shown = "".join(_lines_until(proc.stdout, "the CLI on this demo"))
        # --keep-running: the scenario is over, everything is still up, and the CLI works on it.
        assert "Everything keeps running until Ctrl-C:" in shown, shown[-3000:]
        config = shown.rsplit("portalguard -c ", 1)[1].split()[0]
        status = subprocess.run(
            [str(portalguard), "-c", config, "status", "--json"], capture_output=True, text=True, timeout=30
        )
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["portals"]["sakura"]["failover"] is False
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
    stdout = shown + rest
    assert proc.returncode == 0, stdout[-3000:] + err[-3000:]
    assert err == ""
    assert "\x1b[" not in stdout  # not a terminal: no colours
    positions = [stdout.index(p) for p in PHASES]
    assert positions == sorted(positions)
    assert "The fallback booking page is ON: open http://127.0.0.1:" in stdout
    # The appointment mirror: copied at start, counted in the outage message, its page shown.
    assert re.search(r"the appointment mirror copied the portal's book: \d+ today, \d+ tomorrow", stdout)
    assert re.search(r"the outage message says: 予約の控え：本日\d+件・明日\d+件（最終同期 ", stdout), stdout[-3000:]
    assert "Staff see who is coming, though the portal is down: http://127.0.0.1:" in stdout
    assert "/staff/appointments" in stdout
    # Booking e-mails (make test installs dovecot-imapd): the last booking before the outage is known.
    assert "the booking e-mail's appointment is in the copy too: 18:30 (booked after the last admin sync)" in stdout

    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["ok"] is True and result["error"] is None
    _check_order(result["entries"])
    _check_report(result["report"])
    _check_summary(result["summary"])


def _lines_until(stream: Any, marker: str) -> list[str]:
    """The lines read up to and including the first that contains ``marker`` (all of them at EOF)."""
    lines = []
    for line in stream:
        lines.append(line)
        if marker in line:
            break
    return lines


def _check_order(entries: list[dict[str, Any]]) -> None:
    at = {e["step"]: i for i, e in enumerate(entries) if e["step"]}
    assert set(at) == set().union(*ORDER)
    for before, after in itertools.pairwise(ORDER):
        assert max(at[s] for s in before) < min(at[s] for s in after), (before, after)


def _check_report(report: str) -> None:
    assert report.startswith("# Incident report: sakura (incident #1)")
    for text in [
        "- First failed probe: ",
        "- Failover on: ",
        "public: http_status (HTTP 500)",
        "- Outage duration: ",
        "- Detection to failover: ",
        "- Notifications sent: 3",  # outage, booking request, recovered
        "verdict up → DEGRADED",
        "verdict degraded → DOWN",
        "failover ON — portal down",
        "action page on: ok",
        "action ads on: ok",
        "action ivr on: ok",
        "staff notified: outage",
        "verdict down → RECOVERING",
        "verdict recovering → UP",
        "failover OFF — portal up",
        "action ads off: ok",
        "staff notified: recovered",
    ]:
        assert text in report, text
    assert "still in failover" not in report
    assert "FAILED" not in report


def _check_summary(summary: dict[str, Any]) -> None:
    outage, request, recovered = summary["staff_inbox"]
    assert outage.startswith("【予約サイト障害】sakura")
    assert request.startswith("【予約依頼】新しい予約リクエストが1件あります（sakura）")
    assert recovered.startswith("【復旧】sakura")
    assert len(summary["staff_mail"]) == 3
    assert summary["webhook"] == ["failover", "recovered"]
    assert [h["status"] for h in summary["campaign"]["history"]] == ["ENABLED", "PAUSED"]
    assert summary["campaign"]["now"] == "PAUSED"
    assert summary["booking_requests"] == 1


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_simulator_only_takes_ports_and_prints_a_config_that_config_check_accepts(tmp_path: Path) -> None:
    """`demo --simulator-only --port …` listens where told and prints a whole config for trying
    portalguard against it; `config check` accepts it as printed, and `probe` finds it all up."""
    from failover.cli.demo_cmd import SNIPPET_END, SNIPPET_START

    public, admin, control = _free_ports(3)
    portalguard = Path(sys.executable).parent / "portalguard"
    args = ["demo", "--simulator-only", "--port", str(public), "--admin-port", str(admin)]
    proc = subprocess.Popen(
        [str(portalguard), *args, "--control-port", str(control)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("running until Ctrl-C"):
                break
        snippet = "\n".join(lines[lines.index(SNIPPET_START) + 1 : lines.index(SNIPPET_END)]) + "\n"
        assert f"http://127.0.0.1:{public}/" in snippet and f"http://127.0.0.1:{admin}/" in snippet
        assert f"http://127.0.0.1:{control}/generate_204" in snippet and "book_url:" in snippet
        config = tmp_path / "portalguard.yaml"
        config.write_text(snippet, encoding="utf-8")
        check = subprocess.run(
            [str(portalguard), "-c", str(config), "config", "check"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        probe = subprocess.run(
            [str(portalguard), "-c", str(config), "probe"], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
