"""Query: read-only SQL over the runs database, with the example queries of docs/database.md.

A query runs in a thread worker, with the app's time limit (``spkemb-tui
--query-time-limit``). Escape stops it; leaving the screen or quitting the app stops it
too, since a thread cannot be cancelled and the app's exit waits for its workers.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Select, Static, TextArea

from app.data import reader
from app.data.messages import QueryDone
from app.screens.host import SpkembScreen
from app.views.plain import plain
from app.widgets.keys_footer import KeysFooter
from app.widgets.plain_table import PlainTable
from engine.errors import QueryStopped
from engine.store import DEFAULT_ROW_LIMIT, EXAMPLE_QUERIES, QueryStop

#: rows shown at most (the store stops fetching there and says that there were more)
MAX_ROWS = DEFAULT_ROW_LIMIT


def stopped_message(error: QueryStopped) -> str:
    """The one line under the box when a query did not finish."""
    if error.interrupted:
        return f"query stopped after {error.seconds:.1f} s (interrupted)"
    return (f"query stopped after {error.seconds:g} s (time limit; narrow it with WHERE or LIMIT, "
            "or start spkemb-tui with --query-time-limit SECONDS)")


class QueryScreen(SpkembScreen):
    DEFAULT_CSS = """
    QueryScreen #sql { height: 9; }
    QueryScreen #result { height: 1fr; }
    QueryScreen #query-status { height: auto; padding: 0 1; }
    """
    # `?` is SQL text here (the app's `?` is not in the footer): F1 is shown instead
    BINDINGS = [Binding("f1", "app.help", "Help"), ("escape", "stop_or_back", "Back"), ("ctrl+r", "run", "Run query")]

    def __init__(self) -> None:
        super().__init__()
        #: the running query's stop switch (None: no query running)
        self._stop: QueryStop | None = None
        #: how many queries this screen started: a result answers the latest one or is dropped
        self._number = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Select([(title, title) for title in EXAMPLE_QUERIES], prompt="example queries", id="examples")
        yield TextArea(next(iter(EXAMPLE_QUERIES.values()), "SELECT * FROM runs"), id="sql")
        yield Static("ctrl+r runs the query (read-only: the database is never changed from here)",
                     id="query-status", classes="hint")
        yield PlainTable(id="result", zebra_stripes=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#sql").focus()

    def on_unmount(self) -> None:
        self.stop_query()

    @property
    def running(self) -> bool:
        """A query of this screen is running."""
        return self._stop is not None

    def stop_query(self) -> None:
        if self._stop is not None:
            self._stop.stop()

    @on(Select.Changed, "#examples")
    def _example(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self.query_one("#sql", TextArea).text = EXAMPLE_QUERIES[str(event.value)]
            self.action_run()

    def action_run(self) -> None:
        self.stop_query()  # its thread would run on after a new query replaced it
        self._number += 1
        self._stop = QueryStop()
        self.query_one("#query-status", Static).update("running… (escape stops it)")
        self._run(self.query_one("#sql", TextArea).text, self._stop, self._number)

    def action_stop_or_back(self) -> None:
        """Escape: stop the running query, or go back when none runs."""
        if self.running:
            self.stop_query()
        else:
            self.app.pop_screen()

    @work(thread=True, exclusive=True)
    def _run(self, sql: str, stop: QueryStop, number: int) -> None:
        if not self.spkemb.db_path.exists():
            self.post_message(QueryDone([], [], error=f"no runs database at {self.spkemb.db_path} yet", number=number))
            return
        try:
            result = reader.run_query(self.spkemb.db_path, sql, limit=MAX_ROWS, time_limit=self.spkemb.query_time_limit,
                                      stop=stop)
        except QueryStopped as e:
            self.post_message(QueryDone([], [], error=stopped_message(e), number=number))
            return
        except Exception as e:  # noqa: BLE001 - shown under the box
            self.post_message(QueryDone([], [], error=str(e), number=number))
            return
        self.post_message(QueryDone(result.columns, result.rows, truncated=result.truncated, number=number))

    def on_query_done(self, message: QueryDone) -> None:
        if message.number != self._number:
            return  # a query replaced by a newer one
        self._stop = None
        status = self.query_one("#query-status", Static)
        table = self.query_one("#result", PlainTable)
        if message.error:
            table.clear(columns=True)
            status.update(plain(message.error, "red"))
            return
        table.fill(message.columns, [[cell_text(v) for v in row] for row in message.rows])
        if message.truncated:
            status.update(f"first {len(message.rows):,} rows (the query has more: narrow it with WHERE or LIMIT)")
        else:
            status.update(f"{len(message.rows)} row{'' if len(message.rows) == 1 else 's'}")


#: characters of a text value a cell shows (a table draws every character of its cells)
CELL_CHARS = 200


def cell_text(value: object) -> str:
    """A result cell as sqlite3's shell shows it: a float to 15 significant digits (0.23, not the
    0.22999999999999998 that a mean or a sum gives), NULL as nothing; a blob as its size and a long
    text cut (a 300 MB blob drawn as text held the screen two minutes)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return f"<blob {len(value):,} bytes>"
    if isinstance(value, str) and len(value) > CELL_CHARS:
        return f"{value[:CELL_CHARS]}… ({len(value):,} characters)"
    return f"{value:.15g}" if isinstance(value, float) else str(value)
