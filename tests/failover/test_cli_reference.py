"""The README's CLI reference is the commands' own help, regenerated."""

from __future__ import annotations

from pathlib import Path

from failover.cli.reference import END, START, markdown, splice

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_cli_reference_is_up_to_date() -> None:
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text
    assert splice(text, markdown()) == text, "run: .venv/bin/python -m failover.cli.reference README.md"


def test_reference_names_every_command() -> None:
    ref = markdown()
    for path in (
        "run",
        "status",
        "failover on",
        "failover off",
        "failover auto",
        "maintenance add",
        "events",
        "incident report",
        "requests list",
        "doctor",
        "drill",
        "probe",
        "config check",
        "config schema",
    ):
        assert f"#### `portalguard {path}`" in ref
