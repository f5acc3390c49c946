"""MkDocs hook: the reference pages' tables, generated from the code so that they cannot drift.

A page asks for a generated part with a marker on a line of its own, e.g.
``<!-- generated: cli -->``; :func:`on_page_markdown` replaces it at build time:

- ``cli``: every ``spkemb-engine`` command, its options, defaults and help, from
  ``engine.arguments.build_parser`` (and ``spkemb-tui``'s from ``app.__main__.build_parser``);
- ``config``: every section, name and parameter of ``config.yml``, from the spec table
  (``engine.config.specs.COMPONENTS``, the same rows ``config check`` and the TUI's form read);
- ``schema``: every table, column, index and view of the runs database, built by running the
  migrations (``engine.store.migrations``) on an in-memory database; column descriptions come
  from ``docs/schema-columns.yml`` (a column without one is still listed, with its type);
- ``queries``: ``engine.store.EXAMPLE_QUERIES``, as the TUI's Query screen offers them;
- ``screen-NAME``: the text of ``docs/screens/NAME.svg``, the snapshot test of a TUI screen.

Nothing here imports torch (the modules read are the torch-free ones), and the functions need no
MkDocs: ``tests/test_docs.py`` calls them directly.
"""

from __future__ import annotations

import argparse
import functools
import html
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _this_checkout_first() -> None:
    """The code beside these docs, not whichever checkout is installed: MkDocs restores sys.path once
    it has loaded a hook file, so this runs again when the generators import."""
    if sys.path[:1] != [str(ROOT)]:
        sys.path.insert(0, str(ROOT))


_this_checkout_first()

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
COLUMNS_FILE = Path(__file__).with_name("schema-columns.yml")
SCREENS = Path(__file__).with_name("screens")


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _plain(text: str) -> str:
    """Help text as ``--help`` prints it, safe as Markdown: outside its code spans, ``*``, ``_``, ``<``
    and backslashes are shown as they are (``cpu*2, cuda:0*2`` is no emphasis)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts lie outside code spans
        parts[i] = re.sub(r"([\\*_])", r"\\\1", parts[i]).replace("<", "&lt;")
    return "`".join(parts)


def _code(text: Any) -> str:
    return f"`{text}`" if text not in ("", None) else ""


# --- the command line ------------------------------------------------------------------------

def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser, str]]:
    """(name, parser, help) of each subcommand, in the order they were added."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, sub, helps.get(name) or ""))
    return found


def _default(action: argparse.Action) -> str:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "off"
    if action.required or action.default in (None, argparse.SUPPRESS):
        return ""
    if isinstance(action.default, list):
        return " ".join(map(str, action.default))
    return str(action.default)


def _expand(action: argparse.Action, prog: str) -> str:
    """The help text as ``--help`` prints it (argparse expands ``%(default)s`` and the like)."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    try:
        return action.help % {**vars(action), "prog": prog}
    except (KeyError, TypeError, ValueError):
        return action.help


def _argument_rows(parser: argparse.ArgumentParser) -> list[str]:
    exclusive = {id(a): group for group in parser._mutually_exclusive_groups for a in group._group_actions}
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            metavar = "" if action.nargs == 0 else " " + (action.metavar or action.dest.upper())
            name = ", ".join(f"`{o}{metavar}`" for o in action.option_strings)
        else:
            name = f"`{action.metavar or action.dest}`" + (" ..." if action.nargs in ("+", "*") else "")
        notes = []
        if action.choices is not None:
            notes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
        if action.required and action.option_strings:
            notes.append("required")
        if id(action) in exclusive:
            group = exclusive[id(action)]
            others = [o.option_strings[0] for o in group._group_actions if o is not action]
            notes.append(("required, " if group.required else "") + "not with " + ", ".join(f"`{o}`" for o in others))
        help_ = _expand(action, parser.prog)
        if notes:
            help_ = (help_ + " (" if help_ else "(") + "; ".join(notes) + ")"
        rows.append(f"| {name} | {_code(_cell(_default(action)))} | {_cell(_plain(help_))} |")
    return rows


def _command_section(prog: str, parser: argparse.ArgumentParser, help_: str, level: int) -> list[str]:
    out = [f"{'#' * level} `{prog}`", ""]
    if help_:
        out += [f"*{_plain(help_)}*", ""]
    usage = parser.format_usage().removeprefix("usage: ").strip()
    out += ["```", re.sub(r"\s+", " ", usage), "```", ""]
    if parser.description:
        out += [parser.description, ""]
    rows = _argument_rows(parser)
    if rows:
        out += ["| argument | default | what |", "| --- | --- | --- |", *rows, ""]
    for name, sub, sub_help in _subcommands(parser):
        out += _command_section(f"{prog} {name}", sub, sub_help, level + 1)
    return out


def cli_reference() -> str:
    """Markdown of every command of ``spkemb-engine`` and of ``spkemb-tui``."""
    from app.__main__ import build_parser as tui_parser
    from engine.arguments import build_parser as engine_parser

    engine = engine_parser()
    out = ["## `spkemb-engine`", "", engine.description or "", "",
           "| command | what |", "| --- | --- |"]
    for name, _, help_ in _subcommands(engine):
        out.append(f"| [`{name}`](#spkemb-engine-{name}) | {_cell(help_)} |")
    out += ["", "| option | default | what |", "| --- | --- | --- |", *_argument_rows(engine), ""]
    for name, sub, help_ in _subcommands(engine):
        out += _command_section(f"spkemb-engine {name}", sub, help_, 3)
    tui = tui_parser()
    out += _command_section("spkemb-tui", tui, "", 2)
    return "\n".join(out)


# --- config.yml ------------------------------------------------------------------------------

def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return str(value)


def _range(check: Any) -> str:
    """The rule of a parameter's check function (``engine.config.values``), as text."""
    if check is None:
        return ""
    name = getattr(check, "__qualname__", "")
    if name == "positive":
        return "> 0"
    bound = inspect.getclosurevars(check).nonlocals
    if name.startswith("at_least."):
        return f">= {bound['low']}"
    if name.startswith("within."):
        high = inspect.getclosurevars(bound["top"]).nonlocals["high"]
        return f"{_range(bound['low'])}, <= {high:,}"
    if name.startswith("in_range."):
        return f"in [{bound['low']}, {bound['top']}{')' if bound['high_open'] else ']'}"
    if name.startswith("multiple_of."):
        return f"a positive multiple of {bound['n']}"
    return "checked"


def config_reference() -> str:
    """Markdown of every section, name and parameter of the spec table."""
    from engine.config.specs import REQUIRED_SECTIONS, SECTION_DEFAULTS, SECTIONS, components
    from engine.config.values import TYPE_WORDS

    out = []
    for section in SECTIONS:
        comps = components(section)
        if section in REQUIRED_SECTIONS:
            presence = "required"
        elif SECTION_DEFAULTS[section]:
            presence = f"optional; left out, it is `{SECTION_DEFAULTS[section]}` with its defaults"
        else:
            presence = "optional; left out, there is none"
        out += [f"### `{section}`", "", f"{presence[0].upper()}{presence[1:]}. `{section}.name` is one of "
                + ", ".join(f"`{c.name}`" for c in comps) + ".", ""]
        for comp in comps:
            full = f" (also `{comp.full}`)" if comp.full != comp.name else ""
            out += [f"#### `{section}.name: {comp.name}`", "", f"{comp.help[0].upper()}{comp.help[1:]}{full}.", ""]
            if not comp.params:
                out += ["No parameters.", ""]
                continue
            out += ["| key | value | default | range | what |", "| --- | --- | --- | --- | --- |"]
            for p in comp.params:
                default = "required" if p.required else _code(_cell(_yaml_value(p.default)))
                out.append(f"| `{section}.params.{p.name}` | {_cell(TYPE_WORDS[p.kind])} | {default} "
                           f"| {_cell(_range(p.check))} | {_cell(p.help)} |")
            out.append("")
    return "\n".join(out)


# --- the runs database -----------------------------------------------------------------------

def _column_notes() -> dict[str, dict[str, str]]:
    import yaml

    return yaml.safe_load(COLUMNS_FILE.read_text(encoding="utf-8")) or {}


def migrated_database() -> Any:
    """An in-memory sqlite-utils Database with every migration applied."""
    from sqlite_utils import Database

    from engine.store.migrations import migrations

    db = Database(memory=True)
    migrations.apply(db)
    return db


def schema_reference() -> str:
    """Markdown of every table (columns, types, keys, indexes), view and migration."""
    from engine.store.migrations import migrations

    db = migrated_database()
    notes = _column_notes()
    out = []
    tables = [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
    tables.sort(key=lambda name: name.startswith("_"))  # the migrations' bookkeeping last
    unknown = sorted(set(notes) - set(tables) - {v.name for v in db.views})
    if unknown:
        raise ValueError(f"docs/schema-columns.yml describes tables the migrations do not make: {unknown}")
    for table in tables:
        described = notes.get(table, {})
        info = db.execute(f"PRAGMA table_info([{table}])").fetchall()
        names = {row[1] for row in info}
        stray = sorted(set(described) - names - {"_"})
        if stray:
            raise ValueError(f"docs/schema-columns.yml describes columns {table} does not have: {stray}")
        foreign = {row[3]: f"{row[2]}.{row[4]}" for row in db.execute(f"PRAGMA foreign_key_list([{table}])")}
        out += [f"### `{table}`", ""]
        if described.get("_"):
            out += [f"One row per {described['_']}.", ""]
        out += ["| column | type | what |", "| --- | --- | --- |"]
        for _cid, name, kind, notnull, _default, pk in info:
            flags = [f for f, on in (("primary key", pk), ("not null", notnull and not pk)) if on]
            if name in foreign:
                flags.append(f"→ `{foreign[name]}`")
            what = described.get(name, "")
            if flags:
                what = (what + " " if what else "") + "(" + ", ".join(flags) + ")"
            out.append(f"| `{name}` | {kind} | {_cell(what)} |")
        indexes = [f"`{ix.name}` ({', '.join(ix.columns)})" for ix in db[table].indexes]
        if indexes:
            out += ["", "Indexes: " + "; ".join(indexes) + "."]
        triggers = [t.name for t in db.triggers if t.table == table]
        if triggers:
            out += ["", "Triggers: " + ", ".join(f"`{t}`" for t in triggers) + "."]
        out.append("")
    for view in db.views:
        out += [f"### `{view.name}` (view)", ""]
        if notes.get(view.name, {}).get("_"):
            out += [notes[view.name]["_"], ""]
        out += ["```sql", view.schema.strip(), "```", ""]
    out += ["### Migrations", "", "| # | migration | what |", "| --- | --- | --- |"]
    for number, migration in enumerate(migrations._migrations, 1):
        doc = inspect.getdoc(migration.fn) or ""
        first = doc.split("\n\n")[0].replace("\n", " ").replace("``", "`")
        out.append(f"| {number} | `{migration.name}` | {_cell(first)} |")
    out.append("")
    return "\n".join(out)


def queries_reference() -> str:
    """Markdown of the example queries (``engine.store.EXAMPLE_QUERIES``)."""
    from engine.store.queries import EXAMPLE_QUERIES

    out = []
    for title, sql in EXAMPLE_QUERIES.items():
        out += [f"### {title[0].upper()}{title[1:]}", "", "```sql", sql.strip(), "```", ""]
    return "\n".join(out)


def screen_text(name: str) -> str:
    """The screenshot ``screens/NAME.svg`` as a text block, each text at its column of its row."""
    svg = (SCREENS / f"{name}.svg").read_text(encoding="utf-8")
    texts = [(int(row), float(x), float(width), html.unescape(text).replace("\xa0", " ")) for x, width, row, text in
             re.findall(r'<text[^>]*?x="([\d.]+)"[^>]*?textLength="([\d.]+)"[^>]*?clip-path="url\(#[\w-]*?line-(\d+)\)"'
                        r'[^>]*>([^<]*)</text>', svg)]
    cell = min(width / len(text) for _, _, width, text in texts if text)  # a column's width in the picture
    rows = [""] * (max(row for row, *_ in texts) + 1)
    for row, x, _, text in sorted(texts):
        rows[row] = rows[row].ljust(round(x / cell))[:round(x / cell)] + text
    return "```\n" + "\n".join(row.rstrip() for row in rows) + "\n```"


GENERATORS = {"cli": cli_reference, "config": config_reference, "schema": schema_reference,
              "queries": queries_reference,
              **{f"screen-{svg.stem}": functools.partial(screen_text, svg.stem) for svg in SCREENS.glob("*.svg")}}


def render(markdown: str) -> str:
    """``markdown`` with each ``<!-- generated: NAME -->`` marker replaced by its part."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated part {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()
    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs event: fill in the generated parts of a page."""
    _this_checkout_first()
    return render(markdown)


if __name__ == "__main__":  # print a part, e.g. `python docs/hooks.py cli`
    print(GENERATORS[sys.argv[1]]())
    print(json.dumps({"torch imported": "torch" in sys.modules}), file=sys.stderr)
