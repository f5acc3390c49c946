"""Text the TUI reads from the runs database, a query or a typed field is shown as it is: brackets
are never markup (a run named ``[/b]`` stopped the screen showing it; ``[@click=app.quit]`` would
act when clicked) and control characters are shown as escapes (real app, real database, pilot)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from app.screens.query import QueryScreen
from app.views.runs_view import NAME_WIDTH
from app.widgets.runs_table import RunsTable
from engine.store import open_store
from tests.app.conftest import compare_runs, make, notified, open_run, showing, wait_for

#: a run's name as an event file or `--name` could carry it
HOSTILE = "[/b] [@click=app.quit]x\x1b[2J"
SHOWN = "[/b] [@click=app.quit]x\\x1b[2J"
NOTE = "red \x1b[31mESC [[ end\\"


def hostile(workspace: Path) -> None:
    """The first run renamed, its reason and a data problem of its own holding markup."""
    db = workspace / "runs.db"
    with sqlite3.connect(db) as conn:
        # a bracket that opens no tag (an escape sequence's `[31m`) swallowed the reason's `[red]` after it
        conn.execute("UPDATE runs SET name = ?, reason = '[/red] lost [bold', note = ? WHERE name = 'aam-m0.2'",
                     (HOSTILE, NOTE))
        run_id = conn.execute("SELECT id FROM runs WHERE name = ?", (HOSTILE,)).fetchone()[0]
    with open_store(db) as store:
        store.add_problem(run_id, path=workspace / "[/x].wav", problem="audio file [/x].wav is [/odd]", fatal=False)


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_names_reasons_and_problems_holding_markup_are_shown_as_they_are(workspace: Path) -> None:
    hostile(workspace)
    app = make(workspace)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        # the table shows a long name's beginning (name_cell), as it is: the detail below shows it whole
        assert SHOWN[:NAME_WIDTH - 1] + "…" in {str(table.get_row_at(i)[1]) for i in range(5)}
        await open_run(pilot, SHOWN)
        await wait_for(pilot, lambda: SHOWN in text(app, "#summary"))
        assert "reason: [/red] lost [bold" in text(app, "#summary")
        assert "note: red \\x1b[31mESC [[ end\\" in text(app, "#summary")
        assert "[red]" not in text(app, "#summary")  # read as markup, not shown as its raw text
        await wait_for(pilot, lambda: "[/x].wav: audio file [/x].wav is [/odd]" in text(app, "#problems"))
        assert app.is_running
        app.notify(f"stopped {HOSTILE}")
        await pilot.pause()
        assert notified(app, f"stopped {SHOWN}") and app.is_running


@pytest.mark.slow
async def test_a_compared_run_and_a_query_holding_markup_are_shown_as_they_are(workspace: Path) -> None:
    hostile(workspace)
    app = make(workspace)
    async with app.run_test(size=(160, 40)) as pilot:
        await compare_runs(pilot, (SHOWN, "aam-m0.1"))
        pivot = app.screen.query_one("#pivot", DataTable)
        await wait_for(pilot, lambda: any(SHOWN in str(c) for i in range(pivot.row_count)
                                          for c in pivot.get_row_at(i)))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen.query(RunsTable))
        await pilot.press("s")
        await wait_for(pilot, lambda: showing(app, QueryScreen))
        app.screen.query_one("#sql").text = "SELECT '[/bold]' AS \"[/x]\", name FROM runs WHERE name LIKE '[/b]%'"
        await pilot.press("ctrl+r")
        result = app.screen.query_one("#result", DataTable)
        await wait_for(pilot, lambda: result.row_count == 1)
        assert [str(c) for c in result.get_row_at(0)] == ["[/bold]", SHOWN]
        assert str(result.ordered_columns[0].label) == "[/x]"
        await pilot.pause(0.2)  # the table drawn
        assert app.is_running


@pytest.mark.slow
async def test_a_config_that_is_not_utf8_or_loops_is_named_by_the_config_form(workspace: Path) -> None:
    from app.screens.configs import ConfigsScreen

    for name, text in (("latin1", b"task:\n  name: caf\xe9\n"), ("loop", b"a: &x [*x]\n")):
        (workspace / "experiments" / name).mkdir(parents=True)
        (workspace / "experiments" / name / "config.yml").write_bytes(text)
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: showing(app, ConfigsScreen))
        source = app.screen.query_one("#source")
        for name, says in (("latin1", "config.yml:2: not UTF-8 text"), ("loop", "config.yml:1:")):
            value = f"exp:{(workspace / 'experiments' / name).resolve()}"
            await wait_for(pilot, lambda v=value: any(v == option[1] for option in source._options))
            source.value = value
            await wait_for(pilot, lambda n=name, s=says: notified(app, f"experiments/{n}/{s}", "error"))
        assert app.is_running
