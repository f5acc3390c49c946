"""The table of runs: updated in place on each refresh, sortable by any column."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import DataTable

from app.data.reader import RunSummary
from app.views.runs_view import COLUMNS, LIVE, STATUS_STYLE, cells, sort_value

#: rows added before the first paint (more than a tall terminal shows); the others follow a chunk per refresh
FIRST_ROWS = 40
#: rows added per refresh after the first paint (each costs ~0.7 ms: the screen stays responsive)
REST_ROWS = 100
#: the status column's index, its cell coloured by status
STATUS = [k for k, _ in COLUMNS].index("status")


class RunsTable(DataTable):
    DEFAULT_CSS = """
    RunsTable { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.sort_column = "id"
        self.sort_reverse = True
        self.marked: set[int] = set()
        self._order: list[int] = []
        self._cells: dict[int, tuple] = {}
        self._cell_cache: dict[int, tuple[tuple, tuple]] = {}
        self._runs: list[RunSummary] = []
        self._now = 0.0
        self._added: set[int] = set()
        self._generation = 0
        #: perf_counter time of the first refresh that showed rows (bench/tui_start.py reads it)
        self.first_paint_at: float | None = None

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def current_run_id(self) -> int | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    def sort_by(self, column: str) -> None:
        """Sort by a column; sorting by the same column again reverses the order."""
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, column in ("id", "started", "duration")
        self.set_runs(self._runs, self._now, force=True)

    def toggle_mark(self) -> None:
        run_id = self.current_run_id
        if run_id is None:
            return
        self.marked ^= {run_id}
        self.set_runs(self._runs, self._now, force=True)

    def _styled(self, run_id: int, row: tuple) -> list:
        out: list = list(row)
        out[STATUS] = Text(row[STATUS], style=STATUS_STYLE.get(row[STATUS], ""))
        if run_id in self.marked:
            out[0] = Text(f"✓ {row[0]}", style="bold reverse")
        return out

    def set_runs(self, runs: list[RunSummary], now: float, force: bool = False) -> None:
        """Show these runs: cells that changed are updated, rows re-added only when the order changed."""
        self._runs, self._now = runs, now
        ordered = sorted(runs, key=lambda r: sort_value(r, self.sort_column, now), reverse=self.sort_reverse)
        order = [r.id for r in ordered]
        new_cells = {r.id: self._cells_of(r, now) for r in ordered}
        if order == self._order and not force:
            keys = [k for k, _ in COLUMNS]
            for run_id in order:
                old, new = self._cells.get(run_id), new_cells[run_id]
                if old != new and run_id in self._added:
                    styled = self._styled(run_id, new)
                    for i, key in enumerate(keys):
                        if old is None or old[i] != new[i]:
                            self.update_cell(str(run_id), key, styled[i])
        else:
            current = self.current_run_id
            self.clear()
            self._added = set()
            self._generation += 1
            # a first screenful now, the rest after the first paint: measuring every cell
            # of a thousand rows takes longer than the user should wait for the table
            self._add(order[:FIRST_ROWS], new_cells)
            if order and self.first_paint_at is None:
                self.call_after_refresh(self._painted)
            if len(order) > FIRST_ROWS:
                self.call_after_refresh(self._add_rest, self._generation, order[FIRST_ROWS:])
            if current in self._added:
                self.move_cursor(row=order.index(current))
        self._order, self._cells = order, new_cells

    def _cells_of(self, run: RunSummary, now: float) -> tuple:
        """The cells of a run, formatted again only when the run changed (or, running, always:
        its duration grows). Formatting a thousand rows is most of a refresh's main-thread time."""
        if run.status in LIVE or run.changed is None:
            return cells(run, now)
        key = (run.changed, run.last_loss, run.best_eer, run.best_epoch, run.best_checkpoint)
        cached = self._cell_cache.get(run.id)
        if cached is None or cached[0] != key:
            cached = self._cell_cache[run.id] = (key, cells(run, now))
        return cached[1]

    def _add(self, run_ids: list[int], cells_by_id: dict[int, tuple]) -> None:
        for run_id in run_ids:
            self.add_row(*self._styled(run_id, cells_by_id[run_id]), key=str(run_id))
            self._added.add(run_id)

    def _painted(self) -> None:
        self.first_paint_at = time.perf_counter()

    def _add_rest(self, generation: int, run_ids: list[int]) -> None:
        """Add the remaining rows a chunk per refresh, so the screen stays responsive."""
        if generation == self._generation:
            self._add(run_ids[:REST_ROWS], self._cells)
            if len(run_ids) > REST_ROWS:
                self.call_after_refresh(self._add_rest, generation, run_ids[REST_ROWS:])
