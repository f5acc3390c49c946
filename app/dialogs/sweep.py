"""The Sweep dialog: the keys and values of a grid over an experiment's config, its seeds, slots and epochs
(``spkemb-engine sweep``)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from app.dialogs.form_rows import FormDialog, form_end, labelled, whole_number
from app.views.plain import plain
from engine.errors import SpkembError
from engine.layout import CONFIG
from engine.requests import SweepRequest


class SweepDialog(FormDialog[SweepRequest | None]):

    def __init__(self, exp_dir: Path, protocol: str, slots: str, db: Path, database: Path | None) -> None:
        super().__init__()
        self.exp_dir, self.protocol, self.slots, self.db, self.database = exp_dir, protocol, slots, db, database

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Sweep over {self.exp_dir.name}/{CONFIG} (spkemb-engine sweep)")
            yield labelled("protocol", Input(self.protocol, id="protocol"))
            yield labelled("keys=values (; apart)", Input("", placeholder="task.params.margin=0.1,0.2; "
                                                          "scheduler.params.learning_rate=0.01,0.02", id="sets"))
            yield labelled("seeds per combination", Input("1", id="seeds", type="integer"))
            yield labelled("slots", Input(self.slots, placeholder="cpu*2, cuda:0,cuda:1", id="slots"))
            yield labelled("epochs (train --to)", Input("10", id="epochs", type="integer"))
            yield labelled("validation subset", Input("development", id="val-subset"))
            yield Static("each trial validates beside its training; trials behind the median are pruned", id="hint")
            yield from form_end("Sweep")

    def submit(self) -> None:
        error = self.query_one("#error", Static)
        seeds = whole_number(self.query_one("#seeds", Input).value, "seeds", error)
        epochs = whole_number(self.query_one("#epochs", Input).value, "epochs", error)
        if seeds is None or epochs is None:
            return
        sets = tuple(s.strip() for s in self.query_one("#sets", Input).value.split(";") if s.strip())
        try:
            protocol = self.query_one("#protocol", Input).value.strip()
            request = SweepRequest(base_config=str(self.exp_dir), protocol=protocol,
                                   set=sets or None, seeds=seeds, slots=self.query_one("#slots", Input).value.strip()
                                   or "cpu", epochs=epochs,
                                   val_subset=self.query_one("#val-subset", Input).value.strip() or "development",
                                   db=str(self.db), database=None if self.database is None else str(self.database))
        except SpkembError as e:
            error.update(plain(e))
            return
        if not request.protocol:
            error.update("give the protocol to train on")
            return
        self.dismiss(request)
