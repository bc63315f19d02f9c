"""The config as a file: where it is (``config_path``) and the ``${VAR}`` references its text makes
(``REF``). No pydantic and no YAML: ``status`` finds its cached config view (``failover.cli.status_config``)
with these before, and instead of, loading the config."""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV_VAR = "PORTALGUARD_CONFIG"
DEFAULT_FILE = "portalguard.yaml"
# ``${VAR}`` is the variable's value; ``$$`` a literal ``$`` (so ``$${VAR}`` is no reference).
REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def config_path(option: str | None) -> Path:
    """``-c FILE``, else ``$PORTALGUARD_CONFIG``, else ``./portalguard.yaml``."""
    return Path(option or os.environ.get(ENV_VAR) or DEFAULT_FILE)


def referenced(text: str) -> list[str]:
    """The names of the environment variables ``text`` refers to, sorted, each once."""
    return sorted({m.group(1) for m in REF.finditer(text) if m.group(1)})
