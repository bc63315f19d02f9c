"""The README's CLI reference, generated from the click commands themselves.

``python -m failover.cli.reference README.md`` rewrites the part between the markers; a test
fails when the README and the commands disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def markdown() -> str:
    from failover.cli import main

    out: list[str] = []
    # A fixed width, so the text does not depend on the terminal it was generated in.
    settings = {**main.context_settings, "terminal_width": 100, "max_content_width": 100}
    ctx = click.Context(main, info_name="portalguard", **settings)
    _command(main, ["portalguard"], ctx, out)
    return "\n".join(out).strip() + "\n"


def _command(cmd: click.Command, path: list[str], ctx: click.Context, out: list[str]) -> None:
    out.append(f"#### `{' '.join(path)}`\n")
    out.append("```text")
    out.append(cmd.get_help(ctx).replace(ctx.command_path, " ".join(path)))
    out.append("```\n")
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):  # the lazy top-level group imports each one here
            sub = cmd.get_command(ctx, name)
            assert sub is not None, name
            _command(sub, [*path, name], click.Context(sub, info_name=name, parent=ctx), out)


def splice(readme: str, reference: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference}{END}{tail}"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    target.write_text(splice(target.read_text(encoding="utf-8"), markdown()), encoding="utf-8")
