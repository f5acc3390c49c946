"""A DataTable that shows its text as it is: what a query, a run's name or a config value holds,
never read as markup (see ``app.views.plain``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from app.views.plain import plain


class PlainTable(DataTable):
    """``DataTable`` whose ``str`` labels and cells are plain text; other renderables pass as they are."""

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
        name cut to ``#1 aam``."""
        self.clear(columns=True)
        for i, header in enumerate(headers):
            width = max([cell_len(header), *(cell_len(row[i]) for row in rows if i < len(row))])
            self.add_column(header, width=width)
        for row in rows:
            self.add_row(*row)
