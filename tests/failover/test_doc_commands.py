"""Every `portalguard …` command the docs give (README's "Operating it" block, dashboards/README.md)
is run as written against a temporary config and store: a command that fails to parse (a missing
--reason, an option that does not exist) fails here, not for the operator in the middle of an outage.

Placeholders are filled in (PORTAL/P: the portal, ID: 1, FILE: a file, DATE: today, COPY.yaml: the
config); `[optional]` parts are run both left out and put in (the first of `a|b`); `x | y` after a
command group are its other subcommands.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main
from failover.crypto import DataKey

ROOT = Path(__file__).resolve().parents[2]
PORTAL = "epark"
CONFIG: dict[str, Any] = {
    "clinic": {"name": "さくら歯科", "phone": "03-1234-5678"},
    "portals": {
        PORTAL: {
            "endpoints": {"public": {"url": "http://127.0.0.1:9/booking"}},
            "book_url": "http://127.0.0.1:9/booking",
            "actions": ["page"],
        }
    },
    "actions": {"page": {"type": "fallback_page"}},
}
# A mirror, so the `appointments` commands run (its feed on a closed port: a sync fails, exit 1).
CONFIG["portals"][PORTAL]["mirror"] = {"source": {"type": "ics", "url": "http://127.0.0.1:9/feed.ics"}}
CONFIG["data_key"] = DataKey.generate()[0]
# Commands that run until stopped: only that they exist is checked (with --help).
NOT_RUN = {"run"}
USAGE_ERROR = re.compile(r"^Error: ", re.M)  # click's: a missing option, a bad value, no such command


def operating_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Operating it", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.startswith("portalguard ")]


def dashboards_commands() -> list[str]:
    text = (ROOT / "dashboards/README.md").read_text(encoding="utf-8")
    return sorted({m for m in re.findall(r"`(portalguard [^`]+)`", text)})


def _alternatives(line: str) -> list[str]:
    """``portalguard maintenance list | remove ID`` -> both; ``|`` inside brackets is an option's choice."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(line):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "|" and depth == 0 and line[i - 1] == " ":
            parts.append(line[start:i].strip())
            start = i + 1
    parts.append(line[start:].strip())
    group = " ".join(parts[0].split()[:2])
    return [parts[0], *(f"{group} {p}" for p in parts[1:])]


def _optional(command: str) -> list[str]:
    bare = re.sub(r"\s*\[[^\]]*\]", "", command)
    full = re.sub(r"\[([^\]|]*)(\|[^\]]*)?\]", r"\1", command)
    return [bare] if bare == full else [bare, full]


def expand(line: str) -> list[str]:
    line = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
    return [c for alt in _alternatives(line) for c in _optional(alt)]


def commands() -> list[str]:
    seen: list[str] = []
    for line in operating_block() + dashboards_commands():
        seen += [c for c in expand(line) if c not in seen]
    return seen


def test_the_docs_have_the_commands_we_expect() -> None:
    got = commands()
    assert 'portalguard failover off PORTAL --reason "…" --for 2h' in got
    assert "portalguard maintenance remove ID" in got and "portalguard requests purge --older-than 30d" in got
    assert any(c.startswith("portalguard drill") for c in got) and len(got) > 20


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "store": str(tmp_path / "pg.db")}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORTALGUARD_CONFIG", raising=False)
    return path


def concrete(command: str, cfg: Path) -> list[str]:
    today = dt.date.today().isoformat()
    words = shlex.split(command)[1:]
    fill = {"PORTAL": PORTAL, "P": PORTAL, "ID": "1", "FILE": str(cfg.parent / "out.csv"), "DATE": today}
    words = [fill.get(w, w) for w in words]
    if words[:2] == ["-c", "COPY.yaml"]:
        words = words[2:]
    return ["-c", str(cfg), *words]


def test_every_documented_command_runs_as_written(cfg: Path) -> None:
    ran = 0
    for command in commands():  # in the docs' order: `maintenance add` makes the window `remove ID` removes
        args = concrete(command, cfg)
        if args[2] in NOT_RUN:
            args = [*args, "--help"]
        result = CliRunner().invoke(main, args, input="y\n")
        parse_error = USAGE_ERROR.search(result.output) or (result.exit_code == 2 and "Usage:" in result.output)
        assert not parse_error, f"{command!r} as documented does not parse:\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), (command, result.exception)
        assert result.exit_code in (0, 1), f"{command!r} exited {result.exit_code}:\n{result.output}"
        ran += 1
    assert ran == len(commands())
