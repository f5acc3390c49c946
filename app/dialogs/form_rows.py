"""What the small forms share: their look and their ending (``FormDialog``), a labelled field, a whole
number read from a field."""

from __future__ import annotations

from typing import Any, TypeVar

from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

from app.views.plain import plain

#: what a form gives back
R = TypeVar("R")


class FormDialog(ModalScreen[R]):
    """A small form: its OK button submits it (:meth:`submit`); Cancel, or escape, dismisses it with
    :attr:`cancelled`. Its look reaches every subclass (a type selector matches them too)."""

    DEFAULT_CSS = """
    FormDialog { align: center middle; }
    FormDialog > Vertical { width: 90; max-width: 100%; height: auto; max-height: 100%; overflow-y: auto;
                            border: thick $primary; background: $surface; padding: 1 2; }
    FormDialog Horizontal { height: auto; margin-top: 1; }
    FormDialog .form-row { margin-top: 1; }
    FormDialog .form-row > Label { width: 28; padding: 0 1 0 0; }
    FormDialog .form-row Input, FormDialog .form-row Select { width: 1fr; }
    FormDialog Button { width: 1fr; margin: 0 1; }
    FormDialog #error { color: $error; }
    FormDialog.-short > Vertical { padding: 0 2; }
    FormDialog.-short .form-row { margin-top: 0; }
    FormDialog.-short Checkbox { border: none !important; padding: 0; height: 1; }
    FormDialog.-short Checkbox:focus > .toggle--label { color: $block-cursor-foreground;
                                                         background: $block-cursor-background; }
    FormDialog.-short Button { border: none !important; height: 1; min-width: 0; }
    """
    #: under 36 rows a form goes without its rows' gaps and its boxes' borders: at 80x24 the
    #: extraction form's buttons were below the fold
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [("escape", "cancel", "Cancel")]
    #: what the form gives back when cancelled
    cancelled: Any = None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(self.cancelled)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field submits the form, as its OK button does."""
        event.stop()
        self.submit()

    def submit(self) -> None:
        """Read the fields: dismiss with what they say, or say in ``#error`` why they cannot be used."""
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(self.cancelled)


def labelled(label: str, widget: Widget) -> Horizontal:
    """A field with its name in front of it, one line high (a compact input or select)."""
    if hasattr(widget, "compact"):
        widget.compact = True
    return Horizontal(Label(label), widget, classes="form-row")


def form_end(ok: str) -> list[Widget]:
    """The end of every small form: the line that says why a value is refused, then ``ok`` and Cancel."""
    # messages hold what was typed: text, not markup
    return [Static("", id="error", markup=False),
            Horizontal(Button(ok, variant="primary", id="ok"), Button("Cancel", id="cancel"))]


def whole_number(text: str, name: str, error: Static, *, least: int = 1) -> int | None:
    """``text`` as a whole number of at least ``least``; else None, and why in ``error``."""
    try:
        value = int(text.strip())
    except ValueError:
        error.update(plain(f"{name}: a whole number, got {text.strip()!r}"))
        return None
    if value < least:
        error.update(f"{name}: at least {least}, got {value}")
        return None
    return value
