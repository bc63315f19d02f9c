"""portalguard's failover application: composes the watchdog, owns the store, web app and CLI."""

import watchdog as _watchdog

if not getattr(_watchdog, "PORTALGUARD_WATCHDOG", False):  # pragma: no cover - environment check
    raise ImportError(
        f"the 'watchdog' package at {getattr(_watchdog, '__file__', '?')} is not portalguard's "
        "(it is probably the PyPI package of the same name). Install portalguard in its own "
        "virtual environment (pipx install . or python -m venv .venv && .venv/bin/pip install .)."
    )
