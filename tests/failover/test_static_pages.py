"""``portalguard page export`` and ``failover.web.static_export``: each portal's fallback page as a
self-contained static file (clinic name, phone as a ``tel:`` link, hours, address, a link to the
portal; no form), an index for a group, atomic rewrites of what changed only, and the files of a
portal removed from the config removed with it — nothing else in the directory touched."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from failover.cli import main as cli
from failover.settings import Settings
from failover.web.static_export import INDEX, MANIFEST, export, render_pages
from tests.failover.test_group import SHIBUYA, SHINJUKU, group, portal

ONE = {
    "clinic": {
        "name": "さくら歯科",
        "phone": "03-1234-5678",
        "hours": "月〜金 9:30–19:00",
        "address": "東京都渋谷区1-2-3",
    },
    "portals": {"epark": portal(1, None)},
}


def page(html: str) -> HTMLParser:
    return HTMLParser(html)


def calls(doc: HTMLParser) -> list[str]:
    return [a.attributes["href"] or "" for a in doc.css("a.tel")]


def test_a_portal_page_gives_the_phone_hours_address_and_no_form() -> None:
    pages = render_pages(Settings.model_validate(ONE))
    assert set(pages) == {"epark.html", INDEX} and pages[INDEX] == pages["epark.html"]
    doc = page(pages["epark.html"])
    assert calls(doc) == ["tel:03-1234-5678"]
    assert doc.css_first("a.tel .tel-number").text() == "03-1234-5678"
    assert doc.css_first("header .clinic-name").text() == "さくら歯科"
    info = doc.css_first("dl.info").text()
    assert "月〜金 9:30–19:00" in info and "東京都渋谷区1-2-3" in info
    assert doc.css("form") == [] and doc.css("input") == []
    assert doc.css_first(".portal-link a").attributes["href"] == "https://portal.example.jp/clinic/1/book"
    assert doc.css_first("html").attributes["lang"] == "ja"


def test_a_page_needs_no_other_request() -> None:
    """The proxy serves one file while portalguard is down: no stylesheet, icon or script to fetch."""
    doc = page(render_pages(Settings.model_validate(ONE))["epark.html"])
    assert doc.css("link") == [] and doc.css("script") == [] and doc.css("img") == []
    css = doc.css_first("style").text()
    assert ".tel" in css and "&gt;" not in css  # the real stylesheet, not escaped into nonsense


def test_a_group_gets_each_clinics_page_and_an_index_with_every_phone() -> None:
    pages = render_pages(Settings.model_validate(group()))
    assert set(pages) == {"epark-shibuya.html", "epark-shinjuku.html", INDEX}
    assert calls(page(pages["epark-shinjuku.html"])) == ["tel:03-2345-6789"]
    assert "東京都新宿区西新宿1-1-1" in pages["epark-shinjuku.html"]
    index = page(pages[INDEX])
    assert calls(index) == ["tel:03-1234-5678", "tel:03-2345-6789"]
    names = [n.text() for n in index.css("ul.clinics .clinic-name")]
    assert names == [SHIBUYA["name"], SHINJUKU["name"]]
    assert index.css_first("header .clinic-name").text() == "さくら歯科 渋谷院・さくら歯科 新宿院"


def test_a_clinic_with_two_portals_is_listed_once() -> None:
    raw = group()
    raw["portals"]["hotpepper-shibuya"] = portal(3, "shibuya")
    index = page(render_pages(Settings.model_validate(raw))[INDEX])
    assert calls(index) == ["tel:03-1234-5678", "tel:03-2345-6789"]


def test_export_writes_only_what_changed(tmp_path: Path) -> None:
    out = tmp_path / "static"
    assert sorted(export(Settings.model_validate(ONE), out)) == ["epark.html", INDEX]
    assert (out / MANIFEST).read_text() == "epark.html\nindex.html\n"
    assert oct((out / "epark.html").stat().st_mode & 0o777) == "0o644"
    before = (out / "epark.html").stat().st_mtime_ns
    assert export(Settings.model_validate(ONE), out) == []
    assert (out / "epark.html").stat().st_mtime_ns == before
    changed = ONE | {"clinic": ONE["clinic"] | {"phone": "03-9999-0000"}}
    assert sorted(export(Settings.model_validate(changed), out)) == ["epark.html", INDEX]
    assert "tel:03-9999-0000" in (out / "epark.html").read_text()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_removed_portal_loses_its_file_and_nothing_else_is_touched(tmp_path: Path) -> None:
    out = tmp_path / "static"
    out.mkdir()
    (out / "robots.txt").write_text("User-agent: *\n")
    export(Settings.model_validate(group()), out)
    raw = group()
    del raw["portals"]["epark-shinjuku"]
    del raw["clinics"]["shinjuku"]
    assert "epark-shinjuku.html" in export(Settings.model_validate(raw), out)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "epark-shibuya.html", INDEX, "robots.txt"]


def test_a_hand_edited_manifest_never_deletes_other_files(tmp_path: Path) -> None:
    out = tmp_path / "static"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    (out / MANIFEST).write_text("keep.txt\n../outside.html\n")
    export(Settings.model_validate(ONE), out)
    assert (out / "keep.txt").exists()


# -- the command ------------------------------------------------------------------------------------


def write_config(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "portalguard.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_page_export_into_a_directory(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ONE | {"store": str(tmp_path / "pg.db")})
    out = tmp_path / "static"
    result = CliRunner().invoke(cli, ["-c", str(cfg), "page", "export", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{out}: 2 page(s) (index.html, epark.html)",
        "changed: epark.html, index.html",
    ]
    again = CliRunner().invoke(cli, ["-c", str(cfg), "page", "export", str(out)])
    assert again.output.splitlines()[1] == "unchanged: every page was up to date"


def test_page_export_defaults_to_the_configured_directory(tmp_path: Path) -> None:
    out = tmp_path / "configured"
    cfg = write_config(tmp_path, ONE | {"store": str(tmp_path / "pg.db"), "server": {"static_fallback_dir": str(out)}})
    result = CliRunner().invoke(cli, ["-c", str(cfg), "page", "export"])
    assert result.exit_code == 0, result.output
    assert (out / "epark.html").is_file()


def test_page_export_without_a_directory_says_what_to_do(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ONE | {"store": str(tmp_path / "pg.db")})
    result = CliRunner().invoke(cli, ["-c", str(cfg), "page", "export"])
    assert result.exit_code == 2
    assert "give one (portalguard page export /var/lib/portalguard/static) or set server.static_fallback_dir" in (
        result.output
    )


def test_page_export_into_an_unwritable_place_exits_1(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ONE | {"store": str(tmp_path / "pg.db")})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["-c", str(cfg), "page", "export", str(blocker / "static")])
    assert result.exit_code == 1
    assert f"cannot write the static pages into {blocker / 'static'}" in result.output


def test_page_export_needs_no_secrets(tmp_path: Path) -> None:
    raw = ONE | {
        "store": str(tmp_path / "pg.db"),
        "actions": {"staff": {"type": "notify", "urls": ["${STAFF_URL_NOT_SET}"]}},
        "portals": {"epark": portal(1, None, actions=["staff"])},
    }
    cfg = write_config(tmp_path, raw)
    env = {k: v for k, v in os.environ.items() if k != "STAFF_URL_NOT_SET"}
    result = CliRunner(env=env).invoke(cli, ["-c", str(cfg), "page", "export", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
