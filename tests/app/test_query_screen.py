"""The Query screen's queries end: at the time limit, on Escape, and when the app quits."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey

from app.screens.query import QueryScreen
from app.widgets.plain_table import FILL_CHUNK, PlainTable
from tests import children
from tests.app.conftest import make, open_launch, open_query, showing, wait_for

#: a query that never ends on its own
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
#: a query that ends on its own, but seconds later (so that the tests end even where it is not stopped)
SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) SELECT count(*) FROM c"


async def _start(pilot, sql: str) -> QueryScreen:
    screen = await open_query(pilot)
    screen.query_one("#sql").text = sql
    await pilot.press("ctrl+r")
    return screen


def _status(screen: QueryScreen) -> str:
    return str(screen.query_one("#query-status").render())


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_long_query_stops_at_the_time_limit(workspace: Path) -> None:
    app = make(workspace, query_time_limit=0.5)
    async with app.run_test(size=(140, 36)) as pilot:
        screen = await _start(pilot, SLOW)
        await wait_for(pilot, lambda: "query stopped" in _status(screen), timeout=60)
        assert _status(screen).startswith("query stopped after 0.5 s (time limit; ")
        assert "--query-time-limit" in _status(screen)
        screen.query_one("#examples").value = "best EER per run"  # the screen still queries
        await wait_for(pilot, lambda: screen.query_one("#result").row_count == 2)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_escape_stops_a_running_query_and_stays(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 36)) as pilot:
        screen = await _start(pilot, SLOW)
        await wait_for(pilot, lambda: "running" in _status(screen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: "(interrupted)" in _status(screen), timeout=30)
        assert app.screen is screen and _status(screen).startswith("query stopped after ")
        await pilot.press("escape")  # nothing runs: Escape goes back
        await wait_for(pilot, lambda: not isinstance(app.screen, QueryScreen))


@pytest.mark.slow
async def test_the_result_says_when_rows_were_left_out(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 36)) as pilot:
        screen = await _start(pilot, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                     "WHERE x < 10001) SELECT x FROM c")
        await wait_for(pilot, lambda: screen.query_one("#result").row_count > 0, timeout=30)
        assert _status(screen).startswith("first 10,000 rows (")
        await wait_for(pilot, lambda: screen.query_one("#result").row_count == 10_000, timeout=60)


async def test_rows_come_a_chunk_per_refresh_and_a_new_fill_drops_the_rest(workspace: Path) -> None:
    """10,000 rows added at once froze the screen about 7 s on a 10,000-run database."""
    app = make(workspace)
    async with app.run_test(size=(140, 36)) as pilot:
        screen = await open_query(pilot)
        table = screen.query_one("#result", PlainTable)
        rows = [[str(i)] for i in range(3 * FILL_CHUNK + 7)]
        table.fill(["x"], rows)
        assert table.row_count == FILL_CHUNK  # the rest after the next refreshes: keys are answered meanwhile
        await wait_for(pilot, lambda: table.row_count == len(rows), timeout=30)
        assert [table.get_row_at(i)[0].plain for i in (0, len(rows) - 1)] == ["0", str(len(rows) - 1)]
        table.fill(["x"], rows)
        table.fill(["one"], [["only"]])  # a newer result: the first one's remaining chunks are dropped
        for _ in range(10):
            await pilot.pause()
        assert table.row_count == 1


async def test_home_and_end_go_to_the_first_and_last_row_as_in_the_runs_table(workspace: Path) -> None:
    """In a result, `end` went to the last column and left the cursor on row 1 (ctrl+end alone went down)."""
    app = make(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_query(pilot)
        table = screen.query_one("#result", PlainTable)
        table.fill(["x", "y", "z"], [[str(i), "a" * 30, "b" * 30] for i in range(40)])
        table.focus()
        await pilot.press("end")
        assert (table.cursor_row, table.cursor_column) == (39, 0)
        await pilot.press("right", "home")
        assert (table.cursor_row, table.cursor_column) == (0, 1)


def test_a_cell_shows_a_blob_by_its_size_and_a_long_text_cut() -> None:
    """A 300 MB blob was drawn as a 1.2 GB string: two minutes of a frozen screen."""
    from app.screens.query import CELL_CHARS, cell_text

    assert cell_text(bytes(300)) == "<blob 300 bytes>"
    long = "x" * 10_000
    assert cell_text(long) == "x" * CELL_CHARS + "… (10,000 characters)"
    assert (cell_text(0.1 + 0.2), cell_text(None), cell_text("short")) == ("0.3", "", "short")

#: the child: open the Query screen, start the endless query, quit with ctrl+q, print "quit"
_CHILD = f"""
import asyncio, sys
from pathlib import Path
from tests.app.conftest import make, open_launch, open_query, showing, wait_for
from app.screens.query import QueryScreen
from app.widgets.plain_table import FILL_CHUNK, PlainTable

async def main() -> None:
    app = make(Path(sys.argv[1]), query_time_limit=None)  # a query that never ends but for the quit
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: showing(app, QueryScreen))
        app.screen.query_one("#sql").text = {ENDLESS!r}
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "running" in str(app.screen.query_one("#query-status").render()))
        await pilot.pause(0.3)
        await pilot.press("ctrl+q")
    print("quit", flush=True)

asyncio.run(main())
"""


@pytest.mark.slow
def test_quitting_while_a_query_runs_ends_the_app(workspace: Path) -> None:
    # in a child process: an app whose exit waits for the query's thread would hang this one
    env = dict(os.environ, TZ="UTC", TEXTUAL_ANIMATIONS="none")
    # the timeout guards against a hang (the test then fails, the app killed); it measures no speed
    done = children.run([sys.executable, "-c", _CHILD, str(workspace)], env=env, timeout=120,
                        cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.strip() == "quit", done.stderr


def test_the_time_limit_is_an_option_of_spkemb_tui(capsys: pytest.CaptureFixture[str]) -> None:
    from app.__main__ import build_parser, query_time_limit

    parser = build_parser()
    assert query_time_limit(parser.parse_args([])) == 5.0
    assert query_time_limit(parser.parse_args(["--query-time-limit", "30"])) == 30.0
    assert query_time_limit(parser.parse_args(["--query-time-limit", "0"])) is None
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(["--query-time-limit", bad])
        assert exited.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.startswith("spkemb-tui: error: argument --query-time-limit: ") and "pass 0" in error


@pytest.mark.slow
async def test_f1_opens_help_where_question_mark_is_sql_text(workspace: Path) -> None:
    """On the Query screen `?` is typed into the SQL (a parameter mark): Help had no key there."""
    from app.dialogs import HelpScreen

    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        query = await open_query(pilot)
        await pilot.pause()
        # the footer says so, first (it showed only "esc Back ^r Run query")
        keys = [(k.key, k.description) for k in query.query(FooterKey)]
        assert keys[0] == ("f1", "Help") and ("question_mark", "Help") not in keys, keys
        await pilot.press("question_mark")
        assert query.query_one("#sql").text.startswith("?")
        await pilot.press("f1")
        await wait_for(pilot, lambda: showing(app, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is query)
        await pilot.press("escape")
        # in a form's field too
        launch = await open_launch(pilot, workspace)
        launch.query_one("#val-subset").focus()
        await pilot.press("question_mark", "f1")
        await wait_for(pilot, lambda: showing(app, HelpScreen))
        assert launch.query_one("#val-subset").value.endswith("?")
