"""CLI start-up: wall time of ``portalguard --help``, ``status`` and ``events``, each a fresh process.

``status`` and ``events`` run against a config this script writes to a temporary directory (one
portal with all four action kinds, secrets given in the environment as in production) and the
store they create there; no service runs. Each command is run once to warm the page cache (and
create the store), then ``--runs`` times; the table gives the median, min and max.

The code measured is whatever ``failover`` the child processes import: this script imports none of
it, so ``PYTHONPATH=/path/to/other/checkout python bench/cli_startup.py`` measures another tree.
Bytecode is cached as in an ordinary install (even if PYTHONDONTWRITEBYTECODE is set here), but in
a temporary PYTHONPYCACHEPREFIX: nothing is written into the tree measured. Likewise ``status``'s cache
of its config view (``failover/cli/status_config.py``) is in a temporary XDG_CACHE_HOME, filled by the
warm-up run as by a user's first ``status``.

Usage: ``python bench/cli_startup.py [--runs 21]``. Prints a Markdown table (for the README).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
clinic: {{name: "さくら歯科 渋谷院", phone: "03-1234-5678"}}
store: {store}
portals:
  epark:
    endpoints:
      public: {{url: "http://127.0.0.1:9/booking"}}
    book_url: "http://127.0.0.1:9/booking"
    actions: [page, ads, staff, ivr]
actions:
  page: {{type: fallback_page}}
  ads:
    type: google_ads
    customer_id: "1234567890"
    campaign_ids: ["111"]
    max_daily_budget: 5000
    credentials: {{developer_token: "${{ADS_DEVELOPER_TOKEN}}"}}
  staff: {{type: notify, urls: ["${{SLACK_URL}}"]}}
  ivr: {{type: webhook, url: "${{IVR_WEBHOOK_URL}}", secret: "${{IVR_WEBHOOK_SECRET}}"}}
"""
SECRETS = {
    "ADS_DEVELOPER_TOKEN": "bench-token",
    "SLACK_URL": "slack://bench/bench/bench",
    "IVR_WEBHOOK_URL": "http://127.0.0.1:9/hook",
    "IVR_WEBHOOK_SECRET": "bench-webhook-secret-of-24",
}
COMMANDS = (["--help"], ["status"], ["events"])


def portalguard() -> list[str]:
    """The installed console script if there is one (what users run), else the same two lines."""
    script = Path(sys.executable).parent / "portalguard"
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "import sys; from failover.cli import main; sys.exit(main())"]


def wall(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:])} exited {done.returncode}:\n{done.stderr}")
    return took


def code_under_test(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import failover; print(failover.__file__)"], env=env, capture_output=True, text=True
    )
    return done.stdout.strip() or done.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="Timed runs per command (after one warm-up).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pg-cli-bench-") as tmp:
        config = Path(tmp) / "portalguard.yaml"
        config.write_text(CONFIG.format(store=Path(tmp) / "pg.db"), encoding="utf-8")
        env = {**os.environ, **SECRETS, "PORTALGUARD_CONFIG": str(config), "PYTHONPYCACHEPREFIX": f"{tmp}/pycache"}
        env["XDG_CACHE_HOME"] = f"{tmp}/cache"
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        print(f"code: {code_under_test(env)}; {args.runs} runs per command, each a new process\n")
        print("| command | median | min | max |")
        print("|---|---|---|---|")
        for command in COMMANDS:
            argv = [*portalguard(), *command]
            wall(argv, env)  # warm-up: page cache, and the store's creation for status/events
            times = [wall(argv, env) for _ in range(args.runs)]
            print(
                f"| `portalguard {' '.join(command)}` | {statistics.median(times):.3f} s "
                f"| {min(times):.3f} s | {max(times):.3f} s |"
            )


if __name__ == "__main__":
    main()
