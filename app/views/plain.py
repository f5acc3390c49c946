"""Text read from a database, a file or a typed query, shown as it is.

Textual reads a ``str`` given to a table cell, a column label, a ``Static`` or a notification as
markup: a run named ``[/b]`` stopped the screen that showed it (MarkupError), and one named
``[@click=app.quit]`` would have quit the app when clicked. Such text is shown as a ``Text`` here,
its control characters as escapes (``\\x1b``), as the engine prints them.
"""

from __future__ import annotations

from rich.text import Text

from engine.console import printable


def plain(value: object, style: str = "") -> Text:
    """``value``'s text (None: empty), never read as markup."""
    return Text(printable("" if value is None else str(value)), style=style)


def safe(value: object) -> str:
    """``value``'s text to put inside markup (a line with ``[b]`` of our own): every bracket escaped,
    control characters as escapes.

    Not rich's ``escape``, which leaves a bracket that cannot start a tag (``[31m``): Textual's parser
    reads from it to the next ``]``, so a note holding ``\\x1b[31m`` swallowed the ``[red]`` of the line
    after it and the run's screen failed (MarkupError). A trailing backslash would escape the bracket
    of the markup that follows: a zero-width space keeps them apart.
    """
    text = printable("" if value is None else str(value)).replace("[", "\\[")
    return text + "\u200b" if text.endswith("\\") else text
