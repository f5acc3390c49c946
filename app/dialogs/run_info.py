"""A run's info (``i`` on the run detail): its command, process, times, folders and software, as text
that can be selected and copied."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class RunInfoDialog(ModalScreen[None]):
    DEFAULT_CSS = """
    RunInfoDialog { align: center middle; }
    RunInfoDialog > Vertical {
        width: 90%; max-width: 140; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    RunInfoDialog #title { text-style: bold; }
    RunInfoDialog #info { margin: 1 0 0 0; }
    """
    BINDINGS = [("escape", "dismiss", "Close"), ("enter", "dismiss", "Close"), ("i", "dismiss", "Close")]

    def __init__(self, title: str, lines: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="title", markup=False)
            # text, not markup: a command, a path or a host name may hold brackets
            yield Static("\n".join(self.lines), id="info", markup=False)

    async def action_dismiss(self, result: None = None) -> None:  # async, as Textual's own
        self.dismiss(None)
