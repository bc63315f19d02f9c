"""Render terminal output (with ANSI colours) to a PNG that looks like a terminal window.

Used for the README's picture of the demo::

    .venv/bin/python docs/render_terminal.py                       # runs `portalguard demo` itself
    .venv/bin/python docs/render_terminal.py --input demo.txt      # or renders a saved capture

The text goes into an HTML page (dark background, monospace, CJK fonts for the Japanese staff
messages) and Debian's headless chromium screenshots it. Only SGR codes are understood (colours,
bold, dim, underline): that is all ``click.style`` emits.
"""

from __future__ import annotations

import argparse
import html
import re
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "screenshots" / "demo-timeline.png"
CHROMIUM = "/usr/bin/chromium"
FONT_PX = 14
LINE_PX = 20
PADDING_PX = 24
TITLE_BAR_PX = 34
CUT_BEFORE = "Incident report"  # the picture shows the timeline; the report is plain text anyway

# A dark palette (xterm-like, softened) for the 8 + 8 ANSI colours.
PALETTE = {
    30: "#3b4048",
    31: "#ff6b6b",
    32: "#7bd88f",
    33: "#f5c26b",
    34: "#6cb6ff",
    35: "#d68dff",
    36: "#5fd7d7",
    37: "#d8dee9",
    90: "#7f848e",
    91: "#ff8c8c",
    92: "#a2e6b0",
    93: "#ffd98a",
    94: "#99ccff",
    95: "#e6b3ff",
    96: "#8ae6e6",
    97: "#ffffff",
}
_SGR = re.compile(r"\x1b\[([0-9;]*)m")


class Style:
    """The SGR state while walking a line."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.fg: int | None = None
        self.bold = self.dim = self.underline = False

    def apply(self, codes: list[int]) -> None:
        for code in codes or [0]:
            if code == 0:
                self.reset()
            elif code in (1, 2, 4):
                setattr(self, {1: "bold", 2: "dim", 4: "underline"}[code], True)
            elif code == 22:
                self.bold = self.dim = False
            elif code == 24:
                self.underline = False
            elif code == 39:
                self.fg = None
            elif code in PALETTE:
                self.fg = code

    def css(self) -> str:
        rules = [f"color:{PALETTE[self.fg]}"] if self.fg else []
        rules += ["font-weight:700"] * self.bold + ["opacity:.62"] * self.dim
        rules += ["text-decoration:underline"] * self.underline
        return ";".join(rules)


def line_html(line: str, style: Style) -> str:
    out, pos = [], 0
    for match in _SGR.finditer(line):
        out.append(_span(line[pos : match.start()], style))
        style.apply([int(c) for c in match.group(1).split(";") if c])
        pos = match.end()
    out.append(_span(line[pos:], style))
    return "".join(out)


def _span(text: str, style: Style) -> str:
    if not text:
        return ""
    css = style.css()
    return f'<span style="{css}">{html.escape(text)}</span>' if css else html.escape(text)


def columns(line: str) -> int:
    """Display width: East Asian wide characters take two columns."""
    plain = _SGR.sub("", line)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in plain)


def page(lines: list[str], title: str) -> str:
    style = Style()
    body = "\n".join(line_html(line, style) for line in lines)
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
  html, body {{ margin: 0; background: #0f1115; }}
  .window {{ margin: 0; background: #1b1e24; }}
  .bar {{ height: {TITLE_BAR_PX}px; background: #2a2e36; display: flex; align-items: center;
          padding: 0 14px; gap: 8px; font: 13px "Noto Sans CJK JP", sans-serif; color: #aab1bd; }}
  .dot {{ width: 12px; height: 12px; border-radius: 50%; display: inline-block; }}
  .title {{ margin-left: 12px; }}
  pre {{ margin: 0; padding: {PADDING_PX}px; color: #d8dee9;
         font: {FONT_PX}px/{LINE_PX}px "DejaVu Sans Mono", "Noto Sans Mono CJK JP", monospace; }}
</style></head><body><div class="window">
<div class="bar"><span class="dot" style="background:#ff5f56"></span><span class="dot" style="background:#ffbd2e">
</span><span class="dot" style="background:#27c93f"></span><span class="title">{html.escape(title)}</span></div>
<pre>{body}</pre></div></body></html>"""


def capture(outage_seconds: float) -> str:
    """Run the demo with colours forced (its stdout is a pipe here) and return what it printed."""
    portalguard = Path(sys.executable).with_name("portalguard")
    cmd = [str(portalguard), "demo", "--color", "--outage-seconds", f"{outage_seconds:g}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    return proc.stdout


def screenshot(html_text: str, output: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="render-terminal-") as tmp:
        source = Path(tmp, "terminal.html")
        source.write_text(html_text, encoding="utf-8")
        output.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={tmp}/profile",
                f"--screenshot={output}",
                f"--window-size={width},{height}",
                source.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, help="A saved capture (default: run `portalguard demo` now).")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--outage-seconds", type=float, default=60.0, help="Passed to the demo.")
    parser.add_argument("--title", default="$ make demo")
    parser.add_argument("--all", action="store_true", help=f"Keep the lines from {CUT_BEFORE!r} on.")
    args = parser.parse_args(argv)
    text = args.input.read_text(encoding="utf-8") if args.input else capture(args.outage_seconds)
    lines = text.rstrip("\n").splitlines()
    if not args.all:
        cut = next((i for i, line in enumerate(lines) if CUT_BEFORE in _SGR.sub("", line)), len(lines))
        lines = lines[:cut]
        while lines and not lines[-1].strip():
            lines.pop()
    # 0.6 em is DejaVu Sans Mono's advance; CJK glyphs take two columns.
    width = round(max(map(columns, lines)) * FONT_PX * 0.6) + 2 * PADDING_PX + 8
    height = len(lines) * LINE_PX + 2 * PADDING_PX + TITLE_BAR_PX
    screenshot(page(lines, args.title), args.output, max(width, 640), height)
    print(f"wrote {args.output} ({len(lines)} lines)")


if __name__ == "__main__":
    main()
