"""A DataTable that shows its text as it is: what a query, a run's name or a config value holds,
never read as markup (see ``app.views.plain``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from app.views.plain import plain

#: rows a fill adds between two refreshes: a query's 10,000 rows added at once froze the screen ~7 s
FILL_CHUNK = 500


class PlainTable(DataTable):
    """``DataTable`` whose ``str`` labels and cells are plain text; other renderables pass as they are.

    ``home`` and ``end`` go to the first and last row, as in the Runs table (DataTable's own go to the
    first and last column, which the arrows reach); a table whose cursor is a column keeps them for columns.
    """

    BINDINGS = [Binding("home", "ends(0)", "First row", show=False), Binding("end", "ends(1)", "Last row", show=False)]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: fills started: rows still being added belong to the latest one only
        self._fills = 0

    def action_ends(self, last: int) -> None:
        if self.cursor_type == "column":
            self.action_scroll_end() if last else self.action_scroll_home()
        elif last:
            self.action_scroll_bottom()
        else:
            self.action_scroll_top()

    def add_column(self, label: Any, *, width: int | None = None, key: str | None = None,
                   default: Any = None) -> ColumnKey:
        return super().add_column(plain(label) if isinstance(label, str) else label, width=width, key=key,
                                  default=default)

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None,
                label: Any = None) -> RowKey:
        return super().add_row(*(plain(c) if isinstance(c, str) else c for c in cells), height=height, key=key,
                               label=plain(label) if isinstance(label, str) else label)

    def fill(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Replace the columns and rows, each column as wide as its widest text: a table measures its rows
        when idle, and a picture (or a loaded machine) could catch the columns header-wide, a run's
        name cut to ``#1 aam``. The first :data:`FILL_CHUNK` rows are there on return, the others
        follow a chunk per refresh."""
        self.clear(columns=True)
        self._fills += 1
        for i, header in enumerate(headers):
            width = max([cell_len(header), *(cell_len(row[i]) for row in rows if i < len(row))])
            self.add_column(header, width=width)
        self._add_rows(rows, 0, self._fills)

    def _add_rows(self, rows: Sequence[Sequence[str]], start: int, fill: int) -> None:
        """Rows ``start`` on, a chunk at a time with a refresh between (keys are answered meanwhile);
        dropped once a newer fill began."""
        if fill != self._fills:
            return
        for row in rows[start:start + FILL_CHUNK]:
            self.add_row(*row)
        if start + FILL_CHUNK < len(rows):
            self.call_after_refresh(self._add_rows, rows, start + FILL_CHUNK, fill)
