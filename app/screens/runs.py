"""Home screen: every run of the workspace, refreshed live, sortable and filterable."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Header, Input, Select, Static
from textual.worker import Worker

from app.data import reader
from app.data.event_import import ingest_events
from app.data.experiments import find_experiments
from app.data.lost_runs import mark_lost
from app.data.messages import RunsLoaded
from app.data.reader import RunSummary
from app.launching.children import last_log_line
from app.screens.host import SpkembScreen, reading
from app.views.runs_view import COLUMNS, LIVE, STATUSES, matches
from app.widgets.keys_footer import KeysFooter
from app.widgets.runs_table import RunsTable

#: refreshes between two lost-run checks (each is a short write transaction)
LOST_CHECK_EVERY = 5
#: runs read before the others at start-up (more than a tall terminal shows)
FIRST_PAGE = 100


def empty_help(db_path: Path, database_yml: Path | None) -> str:
    text = (f"No runs yet in {db_path}.\n\n"
            "What to do next:\n"
            "  n   create an experiment config from a template (Configs)\n"
            "  l   launch a training run on a protocol of your database.yml (Launch)")
    if database_yml is None:
        # nothing to train on yet: say where data comes from
        text += ("\nNo database.yml found (--database, $PYANNOTE_DATABASE_CONFIG, ./database.yml); "
                 "for a self-contained demo:  spkemb-engine demo-workspace DIR && spkemb-tui --workspace DIR")
    return text


def runs_count(rows: list[RunSummary], shown: list[RunSummary], where: str) -> str:
    """``10 runs, 1 running`` — or, under a filter, what of it is shown: ``2 of 10 runs shown (0 running)``."""
    running = sum(1 for r in shown if r.status in LIVE)
    plural = "run" if len(rows) == 1 else "runs"
    if len(shown) == len(rows):
        return f"{len(rows)} {plural}, {running} running — {where}"
    return f"{len(shown)} of {len(rows)} {plural} shown by the filter ({running} running) — {where}"


class RunsScreen(SpkembScreen):
    BINDINGS = [
        ("enter", "open", "Open"),
        ("n", "app.go_configs", "Configs"),
        ("l", "app.go_launch", "Launch"),
        ("space", "mark", "Mark"),
        ("c", "compare", "Compare"),
        ("w", "app.go_sweeps", "Sweeps"),
        ("s", "app.go_query", "SQL"),
        ("x", "stop", "Stop run"),
        ("o", "sort", "Sort"),
        ("slash", "filter", "Filter"),
        Binding("escape", "leave_filter", "Back to the runs", show=False),
        ("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunSummary] = []
        self.loaded = False
        #: refreshes shown so far (the bench and the tests wait on it)
        self.shown = 0
        self._refreshes = 0
        self._reported: str | None = None
        self._feed: reader.RunsFeed | None = None
        #: the dead runs of a database we may only read (id -> reason), shown lost
        self._lost: dict[int, str] = {}
        #: the read in flight, if any (refreshes wait for it: ``reading``)
        self._reading: Worker | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="toolbar"):
            yield Input(placeholder="filter: words matched against name, kind, protocol, group, #tag, device, dir…",
                        id="filter")
            yield Select([(s, s) for s in STATUSES], prompt="any status", id="status", allow_blank=True)
        yield Static("", id="message", classes="hint")
        yield RunsTable(id="runs")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()
        self.refresh_runs()
        self.set_interval(self.spkemb.refresh_interval, self.refresh_runs)

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    def refresh_runs(self) -> None:
        """Read the runs again, unless the read before is still running (it shows them soon)."""
        if reading(self._reading):
            return
        self._refreshes += 1
        self._reading = self._load(self._refreshes % LOST_CHECK_EVERY == 1)

    @work(thread=True, exclusive=True, group="runs")
    def _load(self, check_lost: bool) -> None:
        path = self.spkemb.db_path
        start = time.perf_counter()
        if not path.exists():
            self.post_message(RunsLoaded([], missing=True))
            return
        try:
            self.spkemb.launcher.reap()
            if check_lost and self.loaded:
                ingest_events(path, find_experiments(self.spkemb.workspace.root, path))
            # the runs shown lost over a database we may only read are looked at again too (one may beat again)
            if check_lost and (not self.loaded or any(r.status in LIVE or r.id in self._lost for r in self.runs)):
                self._lost = mark_lost(path)
            if self._feed is None or self._feed.path != path:
                if not self.loaded:
                    # a screenful of the newest runs first: a lab's ten thousand take a while to read
                    self.post_message(RunsLoaded(self._shown_lost(reader.read_runs(path, newest=FIRST_PAGE)),
                                                 first_page=True))
                self._feed = reader.RunsFeed(path)
            rows = self._shown_lost(self._feed.read())
        except Exception as e:  # noqa: BLE001 - any failure to read is shown, never raised
            self.post_message(RunsLoaded([], error=str(e)))
            return
        self.post_message(RunsLoaded(rows, seconds=time.perf_counter() - start))

    def _shown_lost(self, rows: list[RunSummary]) -> list[RunSummary]:
        """A database we may only read: its dead runs shown lost, not running for ever."""
        if not self._lost:
            return rows
        return [replace(r, status="lost", reason=self._lost[r.id]) if r.id in self._lost and r.status in LIVE
                else r for r in rows]

    def _pending_rows(self, rows: list[RunSummary]) -> list[RunSummary]:
        """Launches whose process has not recorded its run yet, shown as ``starting`` (negative ids)."""
        pids = {r.pid for r in rows}
        still = []
        for p in self.spkemb.pending:
            dropped = self.spkemb.launcher.start_deferred(p, pids)
            if dropped:
                self.spkemb.error(dropped)
                continue
            if p.pid is not None and p.pid in pids:
                continue
            if p.pid is not None and self.spkemb.launcher.exited(p.pid):
                said = last_log_line(p.log, p.log_from)  # an engine's refusal, or the last line
                self.spkemb.error(f"{p.what} exited before recording its run: {said or 'no output'} (log: {p.log})")
                continue
            still.append(p)
        self.spkemb.pending = still
        return [RunSummary(id=-i - 1, name=p.what, kind=p.kind, protocol=p.protocol, subset=p.subset,
                           status="starting", out_dir=None, started_at=p.started_at, device=p.device)
                for i, p in enumerate(still)]

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        note = self.query_one("#message", Static)
        if message.error:
            text = f"Cannot read the runs database {self.spkemb.db_path}: {message.error}"
            note.update(text)
            note.set_class(True, "error-text")
            if self._reported != message.error:
                self._reported = message.error
                self.spkemb.blocking_error("Runs database unreadable", text + "\n\nNothing was changed in the file.")
            return
        self._reported = None
        note.set_class(False, "error-text")
        if message.first_page:
            if not self.loaded:
                self.query_one(RunsTable).set_runs(message.rows, self.spkemb.now())
            return
        self.runs = message.rows
        rows = message.rows + self._pending_rows(message.rows)
        self.loaded = True
        if message.missing or not rows:
            note.update(empty_help(self.spkemb.db_path, self.spkemb.workspace.database_yml))
        self._show(rows, count=not (message.missing or not rows))
        self.shown += 1

    def _show(self, rows: list[RunSummary] | None = None, *, count: bool = True) -> None:
        if rows is None:
            rows = self.runs + self._pending_rows(self.runs)
        text = self.query_one("#filter", Input).value.strip()
        status = self.query_one("#status", Select).value
        status = None if status is Select.NULL else str(status)
        shown = [r for r in rows if matches(r, text, status)]
        self.query_one(RunsTable).set_runs(shown, self.spkemb.now())
        if count and rows:
            where = self.spkemb.workspace.show(self.spkemb.db_path)
            self.query_one("#message", Static).update(runs_count(rows, shown, where))

    @on(Input.Changed, "#filter")
    @on(Select.Changed, "#status")
    def _filter_changed(self) -> None:
        self._show()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(RunsTable).focus()

    def on_runs_table_header_selected(self, event: RunsTable.HeaderSelected) -> None:
        self.query_one(RunsTable).sort_by(event.column)

    def on_runs_table_row_selected(self, event: RunsTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        run_id = self.query_one(RunsTable).current_run_id
        if run_id is not None and run_id > 0:
            self.spkemb.action_open_run(run_id)

    def action_mark(self) -> None:
        self.query_one(RunsTable).toggle_mark()

    def action_sort(self) -> None:
        table = self.query_one(RunsTable)
        table.sort_by(COLUMNS[table.cursor_column][0])

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_leave_filter(self) -> None:
        """Escape in the filter box: back to the table, the filter kept (q typed next quits, not filters)."""
        self.query_one(RunsTable).focus()

    def action_compare(self) -> None:
        from app.screens.compare import CompareScreen

        marked = sorted(self.query_one(RunsTable).marked)
        if len(marked) < 2:
            self.app.notify("Mark two or more runs with space, then press c.", severity="warning")
            return
        self.app.push_screen(CompareScreen(marked))

    def action_stop(self) -> None:
        run_id = self.query_one(RunsTable).current_run_id
        run = next((r for r in self.runs if r.id == run_id), None)
        if run is not None and run.status == "queued":
            self._cancel(run.id)
            return
        if run is None or run.status not in LIVE:
            self.app.notify("Only a running run can be stopped.", severity="warning")
            return
        self.ask_to_stop(run)

    def _cancel(self, run_id: int) -> None:
        from app.data.lost_runs import cancel_queued
        from app.dialogs import ConfirmDialog

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            if cancel_queued(self.spkemb.db_path, run_id):
                self.app.notify(f"run #{run_id} taken off the queue (recorded stopped).")
            else:
                self.spkemb.error(f"run #{run_id} is no longer waiting: the queue is starting it; stop it once it runs")

        self.app.push_screen(ConfirmDialog(f"Take queued run #{run_id} off the queue? It will not be started."),
                             answer)
