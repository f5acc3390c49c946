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

    def __init__(self, validated: bool) -> None:
        super().__init__()
        #: --top ranks validated epochs: offered first when there are some
        self.validated = validated

    def compose(self) -> ComposeResult:
        ways = [("the K validated epochs of lowest EER (--top)", "top")] if self.validated else []
        ways.append(("the last N epochs (--last)", "last"))
        with Vertical():
            yield Label("Average the weights of several epochs (spkemb-engine average)")
            yield labelled("which epochs", Select(ways, value=ways[0][1], allow_blank=False, id="how"))
            yield labelled("how many", Input("5", id="count", type="integer"))
            yield Static("validate the average afterwards (v): it is scored like an epoch", id="hint")
            yield from form_end("Average")

    def submit(self) -> None:
        count = whole_number(self.query_one("#count", Input).value, "how many", self.query_one("#error", Static),
                             least=2)
        if count is not None:
            self.dismiss(AverageChoice(str(self.query_one("#how", Select).value), count))
