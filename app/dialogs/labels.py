"""The Labels dialog: a run's group, tags and note (``spkemb-engine tag``), edited in place."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from app.dialogs.form_rows import FormDialog, form_end, labelled
from engine.records.labels import check_label, check_tags


@dataclass(frozen=True)
class LabelsChoice:
    """What the run is to carry: its group ("" for none), its tags (all of them) and its note."""

    group: str
    tags: tuple[str, ...]
    note: str


def read_labels(group: str, tags: str, note: str) -> LabelsChoice:
    """The fields as typed (tags: words apart, ``#`` optional); ValueError saying what is wrong."""
    return LabelsChoice(check_label(group, "group") if group.strip() else "",
                        tuple(check_tags(t.lstrip("#") for t in tags.replace(",", " ").split())), note.strip())


class LabelsDialog(FormDialog[LabelsChoice | None]):

    def __init__(self, run_id: int, current: LabelsChoice) -> None:
        super().__init__()
        self.run_id, self.current = run_id, current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Group, tags and note of run #{self.run_id} (spkemb-engine tag)")
            yield labelled("group", Input(self.current.group, placeholder="e.g. resnet34-lm", id="group"))
            yield labelled("tags (words)", Input(" ".join(self.current.tags), placeholder="baseline lm",
                                                 id="tags"))
            yield labelled("note", Input(self.current.note, id="note"))
            yield Static("a group compares runs that differ only by seed: mean ± std of their EER", id="hint")
            yield from form_end("Save")

    def submit(self) -> None:
        try:
            choice = read_labels(*(self.query_one(f"#{name}", Input).value for name in ("group", "tags", "note")))
        except ValueError as e:
            self.query_one("#error", Static).update(str(e))
            return
        self.dismiss(choice)
