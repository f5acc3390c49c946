"""Query: read-only SQL over the runs database, with the README's example queries."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Select, Static, TextArea

from app import reader
from app.messages import QueryDone
from engine.store import EXAMPLE_QUERIES

#: rows shown at most (the query itself is not limited, only what is fetched)
MAX_ROWS = 1000


class QueryScreen(Screen):
    DEFAULT_CSS = """
    QueryScreen #sql { height: 9; }
    QueryScreen #result { height: 1fr; }
    QueryScreen #query-status { height: auto; padding: 0 1; }
    """
    BINDINGS = [("escape", "app.pop_screen", "Back"), ("ctrl+r", "run", "Run query")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Select([(title, title) for title in EXAMPLE_QUERIES], prompt="example queries", id="examples")
        yield TextArea(next(iter(EXAMPLE_QUERIES.values()), "SELECT * FROM runs"), id="sql")
        yield Static("ctrl+r runs the query (read-only: the database is never changed from here)",
                     id="query-status", classes="hint")
        yield DataTable(id="result", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sql").focus()

    @on(Select.Changed, "#examples")
    def _example(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self.query_one("#sql", TextArea).text = EXAMPLE_QUERIES[str(event.value)]
            self.action_run()

    def action_run(self) -> None:
        self.query_one("#query-status", Static).update("running…")
        self._run(self.query_one("#sql", TextArea).text)

    @work(thread=True, exclusive=True)
    def _run(self, sql: str) -> None:
        if not self.app.db_path.exists():
            self.post_message(QueryDone([], [], error=f"no runs database at {self.app.db_path} yet"))
            return
        try:
            columns, rows = reader.run_query(self.app.db_path, sql, limit=MAX_ROWS)
        except Exception as e:  # noqa: BLE001 - shown under the box
            self.post_message(QueryDone([], [], error=str(e)))
            return
        self.post_message(QueryDone(columns, rows))

    def on_query_done(self, message: QueryDone) -> None:
        status = self.query_one("#query-status", Static)
        table = self.query_one("#result", DataTable)
        table.clear(columns=True)
        if message.error:
            status.update(f"[red]{message.error}[/red]")
            return
        table.add_columns(*message.columns)
        table.add_rows([["" if v is None else str(v) for v in row] for row in message.rows])
        more = " (first rows only)" if len(message.rows) >= MAX_ROWS else ""
        status.update(f"{len(message.rows)} rows{more}")
