"""The table of runs: every run of a lab's database, sortable, with only the visible rows drawn.

A DataTable measures every cell of every row it is given before it paints them, which at
10,000 runs takes seconds; this table keeps the runs as formatted text (column widths are the
longest text's length) and draws only the lines on screen, so that showing, sorting, filtering
and scrolling to the end cost the same at ten runs and at ten thousand.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from app.data.reader import RunSummary
from app.views.runs_view import COLUMNS, LIVE, STATUS_STYLE, cells, sort_key

#: the status column's index, its cell coloured by status
STATUS = [k for k, _ in COLUMNS].index("status")
#: blank columns either side of a cell's text
PAD = 1
#: no column is drawn wider than this (a long protocol or directory name is cut with "…")
MAX_WIDTH = 48


def fit(text: str, width: int) -> str:
    """``text`` padded or cut (with "…") to exactly ``width`` cells."""
    size = cell_len(text)
    if size <= width:
        return text + " " * (width - size)
    # no character is narrower than a cell that is drawn: what is kept lies in the first ``width``
    # characters, and trimming those one at a time re-measures at most ``width`` short strings
    # (trimming the whole text re-measured 100,000 characters as often, for each row on each repaint)
    text = text[:width]
    while cell_len(text) > width - 1:
        text = text[:-1]
    return text + "…" + " " * (width - 1 - cell_len(text))


class RunsTable(ScrollView, can_focus=True):
    """Runs as rows, a header line kept on top; keyboard and mouse as in a DataTable."""

    DEFAULT_CSS = """
    RunsTable { height: 1fr; background: $surface; }
    RunsTable > .runs-table--header { text-style: bold; background: $panel; color: $text; }
    RunsTable > .runs-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground;
                                      text-style: bold; }
    RunsTable:blur > .runs-table--cursor { background: $block-cursor-blurred-background; text-style: none; }
    RunsTable > .runs-table--even { background: $surface-lighten-1 40%; }
    """
    COMPONENT_CLASSES = {"runs-table--header", "runs-table--cursor", "runs-table--even"}
    BINDINGS = [
        Binding("up", "cursor(-1)", "Cursor up", show=False),
        Binding("down", "cursor(1)", "Cursor down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "ends(0)", "First run", show=False),
        Binding("end", "ends(1)", "Last run", show=False),
        Binding("left", "column(-1)", "Cursor left (o sorts by its column)", show=False),
        Binding("right", "column(1)", "Cursor right", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    class RowSelected(Message):
        """Enter, or a click on the row under the cursor: open this run."""

        def __init__(self, run_id: int) -> None:
            super().__init__()
            self.run_id = run_id

    class HeaderSelected(Message):
        """A click on a column's header: sort by it."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sort_column = "id"
        self.sort_reverse = True
        self.marked: set[int] = set()
        self.cursor_row = 0
        #: the column the left and right keys move to (``o`` sorts by it)
        self.cursor_column = 0
        self._runs: list[RunSummary] = []
        self._now = 0.0
        self._order: list[int] = []
        self._cells: dict[int, tuple[str, ...]] = {}
        self._cell_cache: dict[int, tuple[tuple, tuple[str, ...]]] = {}
        self._widths: list[int] = [cell_len(label) for _, label in COLUMNS]
        #: the longest text of each column (``_widths`` is it capped, with room for marks)
        self._content: list[int] = list(self._widths)
        #: perf_counter time of the first refresh that showed rows (bench/tui_start.py reads it)
        self.first_paint_at: float | None = None

    # what the screen and the tests read

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def current_run_id(self) -> int | None:
        return self._order[self.cursor_row] if self._order else None

    def get_row_at(self, index: int) -> list[str]:
        """The cells of the row at ``index`` as shown (a marked run's id reads ``✓ 12``)."""
        run_id = self._order[index]
        row = list(self._cells[run_id])
        if run_id in self.marked:
            row[0] = f"✓ {row[0]}"
        return row

    def move_cursor(self, *, row: int) -> None:
        self.cursor_row = max(0, min(row, len(self._order) - 1))
        self._keep_cursor_visible()
        self.refresh()

    # what changes the rows

    def set_runs(self, runs: list[RunSummary], now: float, force: bool = False) -> None:
        """Show these runs, in the table's order; the cursor stays on the run it was on."""
        current = self.current_run_id
        self._runs, self._now = runs, now
        ordered = sorted(runs, key=sort_key(self.sort_column, now), reverse=self.sort_reverse)
        before, self._cells = self._cells, {r.id: self._cells_of(r, now) for r in ordered}
        same_runs = not force and len(self._order) == len(ordered) and before.keys() == self._cells.keys()
        self._order = [r.id for r in ordered]
        # the same runs as before: only the rows that changed can widen a column (measuring every
        # cell of ten thousand rows at each refresh would be most of its time)
        self._resize([cells for run_id, cells in self._cells.items() if before.get(run_id) != cells]
                     if same_runs else None)
        where = {run_id: i for i, run_id in enumerate(self._order)}
        fallback = min(self.cursor_row, max(len(self._order) - 1, 0))
        self.cursor_row = fallback if current is None else where.get(current, fallback)
        self._keep_cursor_visible()
        self.refresh()
        if self._order and self.first_paint_at is None:
            self.call_after_refresh(self._painted)

    def sort_by(self, column: str) -> None:
        """Sort by a column; sorting by the same column again reverses the order."""
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, column in ("id", "started", "duration")
        self.set_runs(self._runs, self._now, force=True)

    def toggle_mark(self) -> None:
        run_id = self.current_run_id
        if run_id is not None:
            self.marked ^= {run_id}
            self._resize()
            self.refresh()

    def _cells_of(self, run: RunSummary, now: float) -> tuple[str, ...]:
        """The cells of a run, formatted again only when the run changed (or, running, always:
        its duration grows). Formatting is most of a refresh's main-thread time."""
        if run.status in LIVE or run.changed is None:
            return cells(run, now)
        key = (run.changed, run.last_loss, run.best_eer, run.best_epoch, run.best_checkpoint)
        cached = self._cell_cache.get(run.id)
        if cached is None or cached[0] != key:
            cached = self._cell_cache[run.id] = (key, cells(run, now))
        return cached[1]

    def _measure(self, rows: Iterable[tuple[str, ...]]) -> list[int]:
        # the sorted column's header has room for its arrow, the ids for a mark's "✓ "
        widths = [cell_len(label) + (2 if key == self.sort_column else 0) for key, label in COLUMNS]
        for row in rows:
            for i, text in enumerate(row):
                # cells, not characters: a CJK character takes two
                size = cell_len(text)
                if size > widths[i]:
                    widths[i] = size
        self._content = widths
        return [min(w + (2 if i == 0 and self.marked else 0), MAX_WIDTH) for i, w in enumerate(widths)]

    def _resize(self, changed: list[tuple[str, ...]] | None = None) -> None:
        """Column widths from every row, or (``changed``) from the widths before and these rows."""
        self._widths = self._measure(self._cells.values() if changed is None else [tuple(
            " " * w for w in self._content), *changed])
        self.virtual_size = Size(sum(self._widths) + 2 * PAD * len(self._widths), len(self._order) + 1)

    def _painted(self) -> None:
        self.first_paint_at = time.perf_counter()

    # drawing

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            strip = self._header()
        else:
            index = scroll_y + y - 1
            strip = self._row(index) if index < len(self._order) else Strip.blank(self.size.width, self.rich_style)
        return strip.crop(scroll_x, scroll_x + self.size.width)

    def _header(self) -> Strip:
        style = self.get_component_rich_style("runs-table--header")
        segments = []
        for i, ((key, label), width) in enumerate(zip(COLUMNS, self._widths, strict=True)):
            arrow = (" ▼" if self.sort_reverse else " ▲") if key == self.sort_column else ""
            cell_style = style + Style(underline=True) if i == self.cursor_column and self.has_focus else style
            segments.append(Segment(" " * PAD + fit(label + arrow, width) + " " * PAD, cell_style))
        return self._full_width(segments, style)

    def _row(self, index: int) -> Strip:
        run_id = self._order[index]
        base = self.rich_style
        if index == self.cursor_row:
            base = base + self.get_component_rich_style("runs-table--cursor")
        elif index % 2:
            base = base + self.get_component_rich_style("runs-table--even")
        segments = []
        for i, (text, width) in enumerate(zip(self._cells[run_id], self._widths, strict=True)):
            style = base
            if i == 0 and run_id in self.marked:
                text, style = f"✓ {text}", base + Style(bold=True, reverse=True)
            elif i == STATUS and index != self.cursor_row:
                style = base + Style.parse(STATUS_STYLE.get(text, "") or "none")
            segments.append(Segment(" " * PAD + fit(text, width) + " " * PAD, style))
        return self._full_width(segments, base)

    def _full_width(self, segments: list[Segment], style: Style) -> Strip:
        used = sum(self._widths) + 2 * PAD * len(self._widths)
        if used < self.size.width:
            segments.append(Segment(" " * (self.size.width - used), style))
        return Strip(segments)

    # moving about

    def _keep_cursor_visible(self) -> None:
        rows = max(self.size.height - 1, 1)  # the header takes a line
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + rows:
            self.scroll_to(y=self.cursor_row - rows + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(row=self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(row=self.cursor_row + direction * max(self.size.height - 2, 1))

    def action_ends(self, last: int) -> None:
        self.move_cursor(row=len(self._order) - 1 if last else 0)

    def action_column(self, delta: int) -> None:
        self.cursor_column = max(0, min(self.cursor_column + delta, len(COLUMNS) - 1))
        left = sum(self._widths[:self.cursor_column]) + 2 * PAD * self.cursor_column
        right = left + self._widths[self.cursor_column] + 2 * PAD
        if left < self.scroll_offset.x:
            self.scroll_to(x=left, animate=False, immediate=True)
        elif right > self.scroll_offset.x + self.size.width:
            self.scroll_to(x=right - self.size.width, animate=False, immediate=True)
        self.refresh()

    def action_select(self) -> None:
        if self.current_run_id is not None:
            self.post_message(self.RowSelected(self.current_run_id))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x, edge = offset.x + self.scroll_offset.x, 0
            for (key, _), width in zip(COLUMNS, self._widths, strict=True):
                edge += width + 2 * PAD
                if x < edge:
                    self.post_message(self.HeaderSelected(key))
                    return
            return
        row = self.scroll_offset.y + offset.y - 1
        if row < len(self._order):
            again = row == self.cursor_row
            self.move_cursor(row=row)
            if again or event.chain > 1:
                self.action_select()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
