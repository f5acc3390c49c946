"""A blocking error: what went wrong and what to do, never a traceback."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ErrorDialog(ModalScreen[None]):
    DEFAULT_CSS = """
    ErrorDialog { align: center middle; }
    ErrorDialog > Vertical {
        width: 80%; max-width: 100; height: auto; border: thick $error; background: $surface; padding: 1 2;
    }
    ErrorDialog #title { text-style: bold; color: $error; }
    ErrorDialog #message { margin: 1 0; }
    ErrorDialog Button { width: 100%; }
    """
    BINDINGS = [("escape", "dismiss", "Close"), ("enter", "dismiss", "Close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="title")
            yield Static(self.message, id="message", markup=False)
            yield Button("OK", variant="error", id="ok")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    async def action_dismiss(self, result: None = None) -> None:  # async, as Textual's own
        self.dismiss(None)
