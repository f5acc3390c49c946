"""Text read from a database, a file or a typed query, shown as it is.

Textual reads a ``str`` given to a table cell, a column label, a ``Static`` or a notification as
markup: a run named ``[/b]`` stopped the screen that showed it (MarkupError), and one named
``[@click=app.quit]`` would have quit the app when clicked. Such text is shown as a ``Text`` here,
its control characters as escapes (``\\x1b``), as the engine prints them.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from engine.console import printable


def plain(value: object, style: str = "") -> Text:
    """``value``'s text (None: empty), never read as markup."""
    return Text(printable("" if value is None else str(value)), style=style)


def safe(value: object) -> str:
    """``value``'s text to put inside markup (a line with ``[b]`` of our own): brackets escaped,
    control characters as escapes."""
    return escape(printable("" if value is None else str(value)))
