"""The Average dialog: the weights of several epochs averaged into one checkpoint (``spkemb-engine average``)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Select, Static

from app.dialogs.form_rows import FormDialog, form_end, labelled, whole_number


@dataclass(frozen=True)
class AverageChoice:
    """``--top K`` of the validated epochs (lowest EER), or ``--last N`` epochs."""

    how: str
    count: int


class AverageDialog(FormDialog[AverageChoice | None]):

    def __init__(self, validated: int, trained: int) -> None:
        super().__init__()
        #: --top ranks validated trained epochs: offered first when there are two to average
        self.validated, self.trained = validated, trained

    def default_count(self, how: str) -> int:
        """5, or as many epochs as there are to average (5 of 2 validated ones failed in the engine)."""
        return max(2, min(5, self.validated if how == "top" else self.trained))

    def compose(self) -> ComposeResult:
        ways = [("the K validated epochs of lowest EER (--top)", "top")] if self.validated >= 2 else []
        ways.append(("the last N epochs (--last)", "last"))
        with Vertical():
            yield Label("Average the weights of several epochs (spkemb-engine average)")
            yield labelled("which epochs", Select(ways, value=ways[0][1], allow_blank=False, id="how"))
            yield labelled("how many", Input(str(self.default_count(ways[0][1])), id="count", type="integer"))
            yield Static("validate the average afterwards (v): it is scored like an epoch", id="hint")
            yield from form_end("Average")

    def on_select_changed(self, event: Select.Changed) -> None:
        self.query_one("#count", Input).value = str(self.default_count(str(event.value)))

    def submit(self) -> None:
        count = whole_number(self.query_one("#count", Input).value, "how many", self.query_one("#error", Static),
                             least=2)
        if count is not None:
            self.dismiss(AverageChoice(str(self.query_one("#how", Select).value), count))
