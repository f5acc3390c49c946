"""The docs site: its generated references cover the code, the README's links land, and the site
builds with ``mkdocs build --strict``."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests import children

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(parser: argparse.ArgumentParser, prog: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """(``prog sub …``, parser) of the parser and each of its subcommands, recursively."""
    found = [(prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{prog} {name}")
    return found


def _argument_names(parser: argparse.ArgumentParser) -> list[str]:
    names = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        names += action.option_strings or [action.metavar or action.dest]
    return names


def test_cli_reference_names_every_command_and_option() -> None:
    from app.__main__ import build_parser as tui_parser
    from engine.arguments import build_parser

    text = _hooks().cli_reference()
    commands = _commands(build_parser(), "spkemb-engine") + _commands(tui_parser(), "spkemb-tui")
    assert len(commands) > 15
    for prog, parser in commands:
        heading = f"# `{prog}`\n"
        assert heading in text, f"{prog} has no section in the CLI reference"
        section = text.split(heading, 1)[1]
        # the section's own table: up to the next command's heading
        section = re.split(r"\n#+ `", section, maxsplit=1)[0]
        for name in _argument_names(parser):
            assert f"`{name}" in section, f"{prog}: {name} missing from its section of the CLI reference"
        for action in parser._actions:
            if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
                assert f"`{action.default}`" in section, f"{prog} {action.option_strings[0]}: default not shown"


def test_config_reference_names_every_key() -> None:
    from engine.config import FIELD_SPECS
    from engine.config.specs import COMPONENTS

    text = _hooks().config_reference()
    for field in FIELD_SPECS:
        assert f"`{field.key}`" in text, f"{field.key} missing from the config reference"
    for comp in COMPONENTS:
        assert f"`{comp.section}.name: {comp.name}`" in text
        for param in comp.params:
            assert f"`{comp.section}.params.{param.name}`" in text
    # a range and a default read from the spec rows, not typed by hand
    assert "| `task.params.margin` | a number | `0.1` | in [0.0, pi/2) |" in text
    assert "| `task.params.per_fold` | an integer | `32` | >= 2, <= 10,000 |" in text


def test_schema_reference_lists_every_table_and_column() -> None:
    hooks = _hooks()
    db = hooks.migrated_database()
    text = hooks.schema_reference()
    for table in db.table_names():
        assert f"### `{table}`" in text
        for column in db[table].columns:
            assert f"| `{column.name}` | {column.type}" in text, f"{table}.{column.name} not in the schema page"
    assert "### `stale_extractions` (view)" in text
    from engine.store.migrations import known_migrations

    for name in known_migrations():
        assert f"`{name}`" in text


def test_queries_reference_holds_every_example_query() -> None:
    from engine.store import EXAMPLE_QUERIES

    text = _hooks().queries_reference()
    for sql in EXAMPLE_QUERIES.values():
        assert sql.strip() in text


def test_each_screenshot_is_its_snapshot_test_and_its_text_is_generated_from_it() -> None:
    """The TUI page's pictures are the snapshot tests' (which pin them to the code), and each
    "same screen as text" is read from its picture: neither can drift from the app."""
    snapshots = ROOT / "tests" / "app" / "__snapshots__" / "test_snapshots"
    pictures = sorted((ROOT / "docs" / "screens").glob("*.svg"))
    assert len(pictures) == 6
    page = (ROOT / "docs" / "tui.md").read_text()
    hooks = _hooks()
    for picture in pictures:
        snapshot = snapshots / f"test_{picture.stem.replace('-', '_')}_screen.svg"
        mend = f"cp {snapshot.relative_to(ROOT)} {picture.relative_to(ROOT)}"
        assert picture.read_bytes() == snapshot.read_bytes(), mend
        marker = f"<!-- generated: screen-{picture.stem} -->"
        assert 0 <= page.find(f"(screens/{picture.name})") < page.find(f"The same screen as text:\n\n{marker}")
        rows = hooks.screen_text(picture.stem).splitlines()
        assert rows[0] == rows[-1] == "```" and rows[-2].startswith((" ? Help  ", " f1 Help  ")), rows[-2]


def test_generation_imports_no_torch() -> None:
    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('h', {str(ROOT / 'docs' / 'hooks.py')!r}); "
            "h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h); "
            "[f() for f in h.GENERATORS.values()]; print('torch' in sys.modules)")
    done = children.run([sys.executable, "-c", code], timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_readme_is_short_and_its_docs_links_exist() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move the detail into a docs/ page"
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", "\n".join(lines))
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).is_file(), f"README.md links to {link}, which does not exist"


def test_every_docs_page_is_in_the_nav() -> None:
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [p for item in nav for p in pages(item)]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        return []

    in_nav = set(pages(config["nav"]))
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk == in_nav


def test_no_file_cites_a_document_outside_the_repository() -> None:
    files = children.run(["git", "ls-files"], cwd=ROOT, timeout=60).stdout.split()
    me = Path(__file__).resolve()
    citing = []
    for name in files:
        path = ROOT / name
        if path.resolve() == me or not path.is_file() or path.suffix in (".svg", ".json"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "DESIGN.md" in text or "STYLE.md" in text:
            citing.append(name)
    assert citing == []


@pytest.mark.slow
def test_site_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    done = children.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                        timeout=300, cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--init-classifier" in cli and "generated: cli" not in cli
    assert "cpu*2, cuda:0,cuda:1, cuda:0*2" in cli  # as --help says it: no `*` read as emphasis
    assert (tmp_path / "site" / "screens" / "runs.svg").is_file()
