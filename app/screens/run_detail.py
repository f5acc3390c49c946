"""One run: live loss and EER plots, epoch table, log tail, data problems, and the actions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Header, Static
from textual.worker import Worker

from app.data import reader
from app.data.messages import DetailLoaded
from app.data.reader import RunDetail, StepRow, thin_steps
from app.screens.fork_actions import ForkActions
from app.screens.host import reading
from app.screens.run_actions import RunActions
from app.views.plain import plain, safe
from app.views.run_detail_view import (
    drawn_from,
    extraction_lines,
    log_path,
    problem_lines,
    summary_lines,
)
from app.views.validation_view import figures, has_asnorm, picked
from app.widgets.epoch_table import EpochTable
from app.widgets.keys_footer import KeysFooter
from app.widgets.log_tail import LogTail
from app.widgets.plots import EerPlot, EerSeries, LossPlot, LossSeries
from engine.errors import SpkembError
from engine.layout import CheckpointName
from engine.records.validation import checkpoint_title

if TYPE_CHECKING:  # the dialogs are imported when opened
    from app.dialogs.labels import LabelsChoice


class RunDetailScreen(RunActions, ForkActions):
    # sixteen keys: the footer says each in a word (at 200 columns the long names still lost t, i and s),
    # Help in full (the tooltip)
    BINDINGS = [
        ("escape", "app.pop_screen", "Back"),
        ("x", "stop", "Stop"),
        ("r", "resume", "Resume"),
        ("v", "validate", "Validate"),
        Binding("V", "stop_validation", "Stop val.", tooltip="Stop validation"),
        Binding("p", "pick", "Pick", tooltip="Pick best epoch"),
        ("e", "extract", "Extract"),
        Binding("f", "fork", "Fork", tooltip="Fork from epoch"),
        Binding("l", "fork_large_margin", "LM fork", tooltip="Large-margin fork"),
        ("n", "toggle_norm", "Raw/AS-norm"),
        ("d", "det", "DET"),
        Binding("a", "average", "Average", tooltip="Average epochs"),
        Binding("C", "clean", "Clean", tooltip="Clean checkpoints"),
        Binding("t", "labels", "Labels", tooltip="Group/tags/note"),
        Binding("i", "info", "Info", tooltip="Run info"),
        Binding("s", "verify", "Verify", tooltip="Verify recordings"),
    ]
    # under 30 rows (an 80x24 terminal) the wrapped summary and the log took the room of the epoch rows
    # that d, f, l and p act on: the summary keeps 4 lines and the log 4; taller, a long name, many tags
    # or a long note still pushed the plots and the epoch table off the screen: 8 lines. Short, the
    # plots go without their bottom border (and its caption, the best epoch's EER) for a third epoch row
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    DEFAULT_CSS = """
    RunDetailScreen #summary { max-height: 8; }
    RunDetailScreen #plots { height: 1fr; min-height: 8; }
    RunDetailScreen #lower { height: 1fr; min-height: 7; }
    RunDetailScreen.-short #summary { max-height: 4; }
    RunDetailScreen.-short LogTail { height: 4; min-height: 4; }
    RunDetailScreen.-short #plots { min-height: 7; }
    RunDetailScreen.-short LossPlot, RunDetailScreen.-short EerPlot { min-height: 7; border-bottom: none; }
    """

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.steps: list[StepRow] = []
        #: the latest read (None until the first one arrives)
        self.data: RunDetail | None = None
        #: the EER plot and epoch table show AS-norm figures instead of raw ones
        self.asnorm = False
        #: the read in flight, if any (polls wait for it: ``reading``)
        self._reading: Worker | None = None
        #: what the EER plot and epoch table were last drawn from (``drawn_from``)
        self._drawn: tuple | None = None
        #: reads shown so far (the tests wait on it)
        self.reads = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading…", id="summary")
        with Horizontal(id="plots"):
            yield LossPlot(id="loss")
            yield EerPlot(id="eer")
        with Horizontal(id="lower"):
            yield EpochTable(id="epochs")
            with Vertical(id="side"):
                yield Static("", id="extractions")
                yield Static("", id="problems")
        yield LogTail(id="log", interval=self.spkemb.refresh_interval)
        yield KeysFooter()

    def on_mount(self) -> None:
        self._poll()
        self.set_interval(self.spkemb.refresh_interval, self._poll)

    def _poll(self) -> None:
        if reading(self._reading):
            return
        self._reading = self._load(self.run_id, int(self.steps[-1]["step"]) if self.steps else -1)

    @work(thread=True, exclusive=True, group="detail")
    def _load(self, run_id: int, since_step: int) -> None:
        try:
            data = reader.read_detail(self.spkemb.db_path, run_id, since_step)
        except Exception as e:  # noqa: BLE001 - shown in the UI, never raised
            self.post_message(DetailLoaded(run_id, error=str(e)))
            return
        self.post_message(DetailLoaded(run_id, data))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        self.reads += 1
        summary = self.query_one("#summary", Static)
        if message.error:
            summary.update(plain(f"Cannot read run #{self.run_id}: {message.error}"))
            return
        data = message.data
        if data is None:
            summary.update(plain(f"Run #{self.run_id} is not in {self.spkemb.db_path}."))
            return
        run = data.run
        # a launch waiting for this run's process (validation beside a resume) starts once it is recorded
        for entry in self.spkemb.pending:
            self.spkemb.launcher.start_deferred(entry, {data.train.pid})
        new = [s for s in data.steps if not self.steps or s["step"] > self.steps[-1]["step"]]
        self.steps.extend(new)
        self.steps = thin_steps(self.steps)  # a live run's steps held as its first read took them
        self.data = data
        self._summary(data)
        if new or not self.query_one(LossPlot).series:
            self.query_one(LossPlot).set_series([LossSeries(run.name or f"#{run.id}", self.steps)])
        self._validations(data)
        self._side(data)
        self.query_one(LogTail).follow(log_path(run))

    def _best_epoch(self) -> int | str | None:
        return picked(self.data.validators)[0] if self.data else None

    def _validations(self, data: RunDetail) -> None:
        """EER plot and epoch table, with raw or AS-norm figures (``n`` toggles)."""
        rows = figures(data.shown_validations, self.asnorm)
        best = self._best_epoch()
        drawn = drawn_from(data, rows, best, self.asnorm)
        if drawn == self._drawn:
            return
        self._drawn = drawn
        what = " (AS-norm)" if self.asnorm else ""
        plot, table = self.query_one(EerPlot), self.query_one(EpochTable)
        plot.border_title, table.border_title = f"{EerPlot.TITLE}{what}", f"epochs{what}"
        # the group's band is of raw EERs: none beside AS-norm figures
        band = () if self.asnorm else data.group_epochs
        plot.set_series([EerSeries("EER", rows, best, band=band, band_label=data.train.run_group or "",
                                   picked=picked(data.validators)[1])])
        table.set_rows(data.epochs, rows, data.checkpoints, best)

    def action_toggle_norm(self) -> None:
        data = self.data
        if data is None or (not self.asnorm and not has_asnorm(data.validations)):
            self.app.notify("No AS-norm figures: validate with --score-norm asnorm.", severity="warning")
            return
        self.asnorm = not self.asnorm
        self._validations(data)
        self._summary(data)

    def _summary(self, data: RunDetail) -> None:
        lines = summary_lines(data.run, data, asnorm=self.asnorm, now=self.spkemb.now, show=self._show)
        self.query_one("#summary", Static).update("\n".join(lines))

    def _show(self, path: str | Path | None) -> str:
        """A path in the workspace's words, to put inside the panels' markup."""
        return safe(self.spkemb.workspace.show(path))

    def _side(self, data: RunDetail) -> None:
        self.query_one("#extractions", Static).update("\n".join(extraction_lines(data, self._show)))
        self.query_one("#problems", Static).update("\n".join(problem_lines(data, self._show)))

    def action_info(self) -> None:
        from app.dialogs.run_info import RunInfoDialog
        from app.views.run_info_view import info_lines

        run = self.data.run if self.data is not None else None
        if run is None:
            self.app.notify("The run is not read yet.", severity="warning")
            return
        self.app.push_screen(RunInfoDialog(f"#{run.id} {run.name or ''}", info_lines(run)))

    def action_labels(self) -> None:
        from app.dialogs.labels import LabelsChoice, LabelsDialog

        run = self.data.run if self.data is not None else None
        if run is None:
            self.app.notify("The run is not read yet.", severity="warning")
            return
        current = LabelsChoice(run.run_group or "", run.tags, run.note or "")
        self.app.push_screen(LabelsDialog(run.id, current), lambda choice: self._save_labels(run.id, choice))

    def _save_labels(self, run_id: int, choice: LabelsChoice | None) -> None:
        from app.data.run_labels import save_labels

        if choice is None:
            return
        try:
            save_labels(self.spkemb.db_path, run_id, group=choice.group, tags=choice.tags, note=choice.note)
        except SpkembError as e:
            self.spkemb.error(f"cannot save the group, tags and note: {e}")
            return
        self.app.notify(f"run #{run_id}: group, tags and note saved")
        self._reading = self._load(self.run_id, -1 if not self.steps else int(self.steps[-1]["step"]))

    def action_det(self) -> None:
        """DET curve and score histograms of the epoch (or averaged weights) under the cursor, beside the
        picked epoch."""
        from app.screens.det import DetScreen, DetSource

        val = self._val_dir()
        table = self.query_one(EpochTable)
        # an epoch by its number, averaged weights by their name (checkpoint_name); epochs are NOT NULL
        validated: set[CheckpointName] = {v.checkpoint_name or int(v.epoch) for v in self._validations_read()
                                          if v.epoch is not None}
        if val is None or not validated or not table.row_count:
            self.app.notify("No validated epoch yet: start validation with v.", severity="warning")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is None:  # every row is added with its key (EpochTable.set_rows)
            return
        name: CheckpointName = int(key) if key.isdigit() else key
        if name not in validated:
            self.app.notify(f"{checkpoint_title(name).capitalize()} has not been validated.", severity="warning")
            return
        best = self._best_epoch()
        sources = [DetSource(checkpoint_title(name) + (" (picked)" if name == best else ""),
                             self._scored_in(name) or val, name)]
        if best is not None and best != name and best in validated:
            sources.append(DetSource(f"{checkpoint_title(best)} (picked)", self._scored_in(best) or val, best))
        self.app.push_screen(DetScreen(sources))

    def _scored_in(self, name: CheckpointName) -> str | None:
        """VAL_DIR of the validate run that recorded ``name`` last (a run may be validated on two subsets)."""
        out_dirs = {v.id: v.out_dir for v in self._validators()}
        rows = [v for v in self._validations_read() if (v.checkpoint_name or v.epoch) == name]
        found = [out_dirs.get(v.run_id) for v in sorted(rows, key=lambda v: v.run_id)]
        return next((d for d in reversed(found) if d), None)

