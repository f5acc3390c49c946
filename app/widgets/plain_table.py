"""A DataTable that shows its text as it is: what a query, a run's name or a config value holds,
never read as markup (see ``app.views.plain``)."""

from __future__ import annotations

from typing import Any

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
