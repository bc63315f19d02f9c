"""portalguard's watchdog: probes booking portals, judges sustained failure, exports metrics.

A library: it knows probes, verdicts and metrics, and never imports ``failover``.
"""

# ``failover`` checks this marker at import: the PyPI package also called ``watchdog`` lacks it.
PORTALGUARD_WATCHDOG = True
