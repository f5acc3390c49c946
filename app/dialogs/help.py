"""The `?` screen: every key of the screen it was opened from, and what it does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label


@dataclass(frozen=True)
class KeyHelp:
    """One key of a screen: as the footer names it, and what it does."""

    key: str
    description: str


def screen_name(screen: Screen) -> str:
    """``Run detail`` for ``RunDetailScreen``: what the help's title calls a screen."""
    words = re.findall(r"[A-Z][a-z]*", type(screen).__name__.removesuffix("Screen")) or [type(screen).__name__]
    return " ".join([words[0], *(w.lower() for w in words[1:])])


def screen_keys(screen: Screen) -> list[KeyHelp]:
    """Every key that does something on ``screen`` now: its own, its focused widget's, the app's.

    Keys without a description (Textual's internal ones) are left out; the footer hides some
    keys (``show=False``), this list does not, and says a key in full (its tooltip) where the footer
    has a word for it.
    """
    seen: dict[str, KeyHelp] = {}
    # the screen's own keys first, then the app's, then the focused widget's (cursor keys and the like)
    rank = {id(screen): 0, id(screen.app): 1}
    for active in sorted(screen.active_bindings.values(), key=lambda active: rank.get(id(active.node), 2)):
        binding = active.binding
        if not binding.description or not active.enabled or binding.system:
            continue
        shown = screen.app.get_key_display(binding)
        seen.setdefault(shown, KeyHelp(shown, binding.tooltip or binding.description))  # the footer's word in full
    return list(seen.values())


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 70; max-width: 95%; height: auto; max-height: 90%; border: thick $accent;
        background: $surface; padding: 1 2;
    }
    HelpScreen #title { text-style: bold; margin-bottom: 1; }
    HelpScreen DataTable { height: auto; }
    HelpScreen #hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS = [("escape", "close", "Close"), ("question_mark", "close", "Close"), ("q", "close", "Close")]

    def __init__(self, title: str, keys: list[KeyHelp]) -> None:
        super().__init__()
        self.title_text = title
        self.keys = keys

    #: rows of the box that are not the table: its border and padding, the title, the hint and their margins
    CHROME = 8

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Keys of {self.title_text}", id="title")
            table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("key", "what it does")
            for key in self.keys:
                table.add_row(key.key, key.description)
            yield table
            yield Label("ctrl+p: every command · escape or ?: close", id="hint")

    def on_mount(self) -> None:
        self._fit(self.app.size.height)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.height)

    def _fit(self, height: int) -> None:
        """The table as tall as the box leaves it (90 % of the screen), scrolling within: taller, the box
        cut its last keys off with no way to scroll to them (14 of 30 showed at 80x24)."""
        self.query_one(DataTable).styles.max_height = max(3, height * 9 // 10 - self.CHROME)

    def action_close(self) -> None:
        self.dismiss(None)
