"""The Verify dialog: the recordings ``spkemb-engine verify`` scores with the picked checkpoint."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from app.dialogs.form_rows import FormDialog, form_end, labelled
from app.views.plain import plain


@dataclass(frozen=True)
class VerifyChoice:
    """ENROLMENT and the TESTs of ``verify``, as paths (``~`` expanded; relative ones are the TUI's folder's)."""

    enrolment: str
    tests: tuple[str, ...]


def recordings(text: str) -> list[str]:
    """The paths typed in one field, split as a shell would (quotes keep a space in a name)."""
    return [os.path.expanduser(path) for path in shlex.split(text)]


class VerifyDialog(FormDialog[VerifyChoice | None]):

    def __init__(self, what: str) -> None:
        super().__init__()
        #: the checkpoint that scores them, as the title names it
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Verify recordings with {self.what} (spkemb-engine verify)", markup=False)
            yield labelled("enrolment recording", Input(id="enrolment", placeholder="alice.wav"))
            yield labelled("test recordings", Input(id="tests", placeholder="unknown-1.flac unknown-2.wav"))
            yield Static("any audio file, at any rate; each test is scored against the enrolment and decided at the "
                         "threshold of the epoch's validated EER", id="hint")
            yield from form_end("Verify")

    def submit(self) -> None:
        error = self.query_one("#error", Static)
        try:
            enrolment = recordings(self.query_one("#enrolment", Input).value)
            tests = recordings(self.query_one("#tests", Input).value)
        except ValueError as e:  # an unclosed quote
            error.update(plain(f"cannot read the paths: {e}"))
            return
        if len(enrolment) != 1:
            error.update("enrolment recording: one path")
        elif not tests:
            error.update("test recordings: at least one path")
        else:
            self.dismiss(VerifyChoice(enrolment[0], tuple(tests)))
