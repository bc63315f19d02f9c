"""``watchdog/`` is a library: no module in it imports ``failover`` (the application on top)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WATCHDOG = Path(__file__).resolve().parents[2] / "watchdog"
MODULES = sorted(WATCHDOG.rglob("*.py"))


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import, also those inside functions (lazy imports)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_there_are_modules_to_check() -> None:
    assert len(MODULES) > 10 and WATCHDOG / "monitor.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(WATCHDOG)) for p in MODULES])
def test_watchdog_never_imports_failover(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"{path.name}:{line}: {name}" for line, name in imported(tree) if name.split(".")[0] == "failover"]
    assert bad == []
