"""The Clean dialog: what ``spkemb-engine clean`` keeps of the epoch checkpoints, before it lists what goes."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, Label, Static

from app.dialogs.form_rows import FormDialog, form_end, labelled, whole_number
from app.widgets.tick_box import TickBox


@dataclass(frozen=True)
class CleanChoice:
    """``--keep-last``, ``--keep-best`` and ``--skipped`` of ``clean``."""

    keep_last: int = 10
    keep_best: int = 10
    skipped: bool = False


class CleanDialog(FormDialog[CleanChoice | None]):

    def __init__(self, what: str) -> None:
        super().__init__()
        #: the run or sweep cleaned, as the title names it
        self.what = what

    def compose(self) -> ComposeResult:
        default = CleanChoice()
        with Vertical():
            yield Label(f"Clean the epoch checkpoints of {self.what} (spkemb-engine clean)", markup=False)
            yield labelled("keep the newest N epochs", Input(str(default.keep_last), id="keep-last", type="integer"))
            yield labelled("keep the K best of each validation", Input(str(default.keep_best), id="keep-best",
                                                                       type="integer"))
            yield TickBox("also the epochs a validation passed over (validate --every N)", default.skipped,
                          id="skipped")
            yield Static("the epochs picked, extracted or not validated yet stay; nothing goes before you "
                         "confirm the list", id="hint")
            yield from form_end("List")

    def submit(self) -> None:
        error = self.query_one("#error", Static)
        keep_last = whole_number(self.query_one("#keep-last", Input).value, "newest N", error)
        keep_best = whole_number(self.query_one("#keep-best", Input).value, "best K", error)
        if keep_last is not None and keep_best is not None:
            self.dismiss(CleanChoice(keep_last, keep_best, self.query_one("#skipped", Checkbox).value))
