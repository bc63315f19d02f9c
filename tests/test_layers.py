"""The rank of layers (docs/ARCHITECTURE.md § Layers), enforced.

Every module of ``watchdog/`` and ``failover/`` has a rank; a module may import only modules of its
own rank or below, wherever the import stands: at the top, under ``TYPE_CHECKING``, or inside a
function (a lazy import is for start-up time, never a way around the rule). ``watchdog/`` never
imports ``failover/``; the fakes (``failover/fakes/``) import nothing of the application; and no two
modules import each other, even at the same rank.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Longest prefix wins. Lower ranks never know the higher ones.
RANKS: dict[str, int] = {
    # 0: config building blocks and small helpers
    "watchdog.duration": 0,
    "watchdog.config_types": 0,
    "watchdog.clock": 0,
    "failover.clinic": 0,
    "failover.threads": 0,
    "failover.redact": 0,
    "failover.links": 0,
    "failover.logs": 0,
    "failover.secrets_policy": 0,
    "failover.store_url": 0,  # a SQLite file or a PostgreSQL URL, told without SQLAlchemy
    "failover.crypto": 0,  # patient fields sealed at rest (AES-GCM)
    "failover.staff_accounts": 0,  # staff passwords: scrypt hash, check, policy, login delay
    "failover.mirror.model": 0,  # the mirror's plain data, spoken by the store and everything above
    "failover.mirror.dates": 0,
    "failover.mirror.reconcile": 0,
    "failover.mirror.mail.decode": 0,  # a raw mail into text: the stdlib email package and codecs
    "failover.report.availability": 0,  # the availability report's pure computation
    "failover.report.period": 0,
    "failover.report.render": 0,
    "failover.report.config": 0,
    # 1: the watchdog library
    "watchdog": 1,
    # 2: the store
    "failover.store": 2,
    # 3: what actions are made of, the failover metrics, reports read from the store
    "failover.actions": 3,
    "failover.actions.base": 3,
    "failover.metrics": 3,
    "failover.incident": 3,
    "failover.report": 3,  # the availability report's history, read from the store
    "failover.resilient": 3,  # the store as the service runs it: memory when the disk cannot write
    # 4: staff messages and their delivery
    "failover.staff": 4,
    # 5: the action kinds and their table
    "failover.actions.table": 5,
    "failover.actions.fallback_page": 5,
    "failover.actions.google_ads": 5,
    "failover.actions.notify": 5,
    "failover.actions.webhook": 5,
    # 5: the mirror's sources (config model + fetch, like an action kind) and its config section
    "failover.mirror.session": 5,
    "failover.mirror.sources": 5,
    "failover.mirror.config": 5,
    "failover.mirror.mail": 5,  # the mail source: its config, templates and the IMAP mailbox
    # 6: the whole config
    "failover.settings": 6,
    # 7: deciding, acting, serving
    "failover.decision": 7,
    "failover.orchestrator": 7,
    "failover.leadership": 7,  # several instances: the leader lease's loop
    "failover.sites": 7,  # several instances: heartbeats, per-site verdicts, the combined verdict
    "failover.doctor": 7,
    "failover.drill": 7,
    "failover.retention": 7,
    "failover.report.build": 7,  # the report of the configured portals (CLI and staff page)
    "failover.web": 7,
    "failover.mirror": 7,
    "failover.mirror.mail.watch": 7,  # the mail source's loop, like failover.mirror.sync
    # 8: the composition root
    "failover.service": 8,
    # 9: entry points
    "failover.cli": 9,
    "failover.demo": 9,
    # apart: test doubles of the outside world
    "failover.fakes": -1,
}


# Package modules themselves, matched exactly: ``failover/__init__.py`` checks that the ``watchdog``
# package is ours (its ``__init__`` is a docstring and a marker), before anything else loads.
EXACT: dict[str, int] = {"watchdog": 0, "failover": 0}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def rank(module: str) -> int | None:
    """The rank of ``module`` by its longest listed prefix; None for modules outside the project."""
    if module in EXACT:
        return EXACT[module]
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in RANKS:
            return RANKS[prefix]
    return None


def project_imports(source: str, importer: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a project module in ``source``, wherever it stands."""
    found: list[tuple[int, str]] = []
    package = importer if source_is_package(importer) else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` names a module when pkg.mod is one: rank the finer of the two.
            found += [(node.lineno, _finest(base, a.name)) for a in node.names]
    return [(line, m) for line, m in found if m.split(".")[0] in ("watchdog", "failover")]


def source_is_package(module: str) -> bool:
    return (ROOT / Path(*module.split(".")) / "__init__.py").exists()


def _finest(base: str, name: str) -> str:
    candidate = f"{base}.{name}"
    path = ROOT / Path(*candidate.split("."))
    return candidate if path.with_suffix(".py").exists() or (path / "__init__.py").exists() else base


def violations(importer: str, source: str) -> list[str]:
    own = rank(importer)
    assert own is not None, f"{importer} has no rank: add it to RANKS in tests/test_layers.py"
    bad = []
    for line, target in project_imports(source, importer):
        theirs = rank(target)
        assert theirs is not None, f"{importer}:{line} imports {target}, which has no rank"
        if importer.startswith("watchdog") and target.startswith("failover"):
            bad.append(f"{importer}:{line}: the watchdog library imports {target}")
        elif own == -1 and not target.startswith("failover.fakes"):
            bad.append(f"{importer}:{line}: a fake imports the application ({target})")
        elif theirs == -1 and own != -1 and not importer.startswith(("failover.demo", "failover.cli")):
            bad.append(f"{importer}:{line}: {target} is a test double; only the demo and the CLI use fakes")
        elif theirs > own:
            bad.append(f"{importer}:{line}: rank {own} imports {target} of rank {theirs}")
    return bad


MODULES = sorted(p for d in ("watchdog", "failover") for p in (ROOT / d).rglob("*.py"))


def test_every_module_is_checked() -> None:
    assert len(MODULES) > 60
    assert all(rank(module_name(p)) is not None for p in MODULES)


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_go_down_the_ranks(path: Path) -> None:
    assert violations(module_name(path), path.read_text(encoding="utf-8")) == []


def test_no_two_modules_import_each_other() -> None:
    graph = {
        module_name(p): {m for _, m in project_imports(p.read_text(encoding="utf-8"), module_name(p))} for p in MODULES
    }
    cycles = sorted(f"{a} <-> {b}" for a, deps in graph.items() for b in deps if a < b and a in graph.get(b, ()))
    assert cycles == []


@pytest.mark.parametrize(
    ("importer", "source", "expected"),
    [
        ("failover.store", "from failover.settings import Settings\n", "rank 2 imports failover.settings of rank 6"),
        (
            "failover.actions.base",
            "def f():\n    from failover.web.app import create_app\n",
            "rank 3 imports failover.web.app of rank 7",
        ),
        (
            "failover.staff",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from failover.settings import Settings\n",
            "rank 4 imports failover.settings of rank 6",
        ),
        ("watchdog.monitor", "import failover.clinic\n", "the watchdog library imports failover.clinic"),
        ("failover.fakes.receivers", "from failover.store import Store\n", "a fake imports the application"),
    ],
    ids=["top-level", "hidden-in-a-function", "type-checking", "watchdog-to-failover", "fake-to-app"],
)
def test_a_planted_wrong_way_import_is_caught(importer: str, source: str, expected: str) -> None:
    found = violations(importer, source)
    assert len(found) == 1 and expected in found[0]


def test_imports_downward_and_lazy_downward_are_fine() -> None:
    source = "from failover.store import Store\ndef run():\n    from failover.service import Service\n"
    assert violations("failover.cli.run_cmd", source) == []
