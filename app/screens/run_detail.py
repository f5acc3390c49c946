"""One run: live loss and EER plots, epoch table, log tail, data problems, and the actions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Static

from app.data import reader
from app.data.messages import DetailLoaded
from app.data.reader import RunDetail, StepRow
from app.launching import commands
from app.launching.children import run_quick
from app.screens.fork_actions import ForkActions
from app.views.run_detail_view import (
    extraction_lines,
    log_path,
    problem_lines,
    summary_lines,
)
from app.views.runs_view import LIVE
from app.views.validation_view import best_marker, figures, has_asnorm
from app.widgets.epoch_table import EpochTable
from app.widgets.log_tail import LogTail
from app.widgets.plots import EerPlot, EerSeries, LossPlot, LossSeries
from engine.errors import PathError, SpkembError
from engine.layout import TrainingDir, ValidationDir
from engine.records import RecordedValidation, Run

if TYPE_CHECKING:  # the dialogs are imported when opened
    from app.dialogs.actions import ExtractChoice
    from app.dialogs.average import AverageChoice
    from app.dialogs.labels import LabelsChoice
    from app.launching.commands import ValidationChoice


#: training runs that `r` continues: a completed run has nothing left to train
RESUMABLE = ("stopped", "failed", "lost")


class RunDetailScreen(ForkActions):
    BINDINGS = [
        ("escape", "app.pop_screen", "Back"),
        ("x", "stop", "Stop"),
        ("r", "resume", "Resume"),
        ("v", "validate", "Validate"),
        ("V", "stop_validation", "Stop validation"),
        ("p", "pick", "Pick best"),
        ("e", "extract", "Extract"),
        ("f", "fork", "Fork from epoch"),
        ("l", "fork_large_margin", "Large-margin fork"),
        ("n", "toggle_norm", "Raw/AS-norm"),
        ("d", "det", "DET"),
        ("a", "average", "Average epochs"),
        ("t", "labels", "Group/tags/note"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.steps: list[StepRow] = []
        #: the latest read (None until the first one arrives)
        self.data: RunDetail | None = None
        #: the EER plot and epoch table show AS-norm figures instead of raw ones
        self.asnorm = False

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
        yield LogTail(id="log", interval=self.app.refresh_interval)
        yield Footer()

    def on_mount(self) -> None:
        self._poll()
        self.set_interval(self.app.refresh_interval, self._poll)

    def _poll(self) -> None:
        self._load(self.run_id, int(self.steps[-1]["step"]) if self.steps else -1)

    @work(thread=True, exclusive=True, group="detail")
    def _load(self, run_id: int, since_step: int) -> None:
        try:
            data = reader.read_detail(self.app.db_path, run_id, since_step)
        except Exception as e:  # noqa: BLE001 - shown in the UI, never raised
            self.post_message(DetailLoaded(run_id, error=str(e)))
            return
        self.post_message(DetailLoaded(run_id, data))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        summary = self.query_one("#summary", Static)
        if message.error:
            summary.update(f"Cannot read run #{self.run_id}: {message.error}")
            return
        data = message.data
        if data is None:
            summary.update(f"Run #{self.run_id} is not in {self.app.db_path}.")
            return
        run = data.run
        # a launch waiting for this run's process (validation beside a resume) starts once it is recorded
        for entry in self.app.pending:
            self.app.launcher.start_deferred(entry, {data.train.pid})
        new = [s for s in data.steps if not self.steps or s["step"] > self.steps[-1]["step"]]
        self.steps.extend(new)
        self.data = data
        self._summary(data)
        if new or not self.query_one(LossPlot).series:
            self.query_one(LossPlot).set_series([LossSeries(run.name or f"#{run.id}", self.steps)])
        self._validations(data)
        self._side(data)
        self.query_one(LogTail).follow(log_path(run))

    def _best_epoch(self) -> int | str | None:
        chosen = [best_marker(v) for v in self.data.validators] if self.data else []
        return next((c for c in chosen if c is not None), None)

    def _validations(self, data: RunDetail) -> None:
        """EER plot and epoch table, with raw or AS-norm figures (``n`` toggles)."""
        rows = figures(data.validations, self.asnorm)
        best = self._best_epoch()
        what = " (AS-norm)" if self.asnorm else ""
        plot, table = self.query_one(EerPlot), self.query_one(EpochTable)
        plot.border_title, table.border_title = f"{EerPlot.TITLE}{what}", f"epochs{what}"
        # the group's band is of raw EERs: none beside AS-norm figures
        band = () if self.asnorm else data.group_epochs
        plot.set_series([EerSeries("EER", rows, best, band=band, band_label=data.train.run_group or "")])
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
        lines = summary_lines(data.run, data, asnorm=self.asnorm, now=self.app.now, show=self.app.workspace.show)
        self.query_one("#summary", Static).update("\n".join(lines))

    def _side(self, data: RunDetail) -> None:
        show = self.app.workspace.show
        self.query_one("#extractions", Static).update("\n".join(extraction_lines(data, show)))
        self.query_one("#problems", Static).update("\n".join(problem_lines(data, show)))

    # ---- actions --------------------------------------------------------------

    def _launch(self, argv: list[str], log: Path, *, kind: str, what: str, protocol: str, subset: str,
                device: str | None, after: int | None = None) -> int | None:
        """Start an engine command (once process ``after`` has recorded its run, if given); its pid."""
        try:
            pid = self.app.launcher.record_launch(self.app.pending, argv, log, kind=kind, what=what, protocol=protocol,
                                          subset=subset, device=device, now=self.app.now(), after=after)
        except OSError as e:
            self.app.blocking_error(f"Cannot start {kind}", f"{' '.join(argv)}\n\n{e}")
            return None
        self.app.notify(f"{what} {'started' if after is None else 'starts with it'}; "
                        f"log: {self.app.workspace.show(log)}")
        return pid

    def _train(self) -> Run | None:
        return None if self.data is None else self.data.train

    def _validators(self) -> list[Run]:
        return [] if self.data is None else self.data.validators

    def _validations_read(self) -> list[RecordedValidation]:
        return [] if self.data is None else self.data.validations

    def action_stop(self) -> None:
        run = None if self.data is None else self.data.run
        if run is None or run.status not in LIVE:
            self.app.notify("This run is not running.", severity="warning")
            return
        why = self.app.launcher.stop(run)
        if why:
            self.app.error(f"run #{run.id} not stopped: {why}")
        else:
            self.app.notify(f"SIGTERM sent to run #{run.id}: it checkpoints and stops.")

    def action_resume(self) -> None:
        run = None if self.data is None else self.data.run
        if run is not None and run.kind == "validate" and run.status not in LIVE:
            self.action_validate()  # a validation "resumes" as a new one: the scored epochs are reused
            return
        train = self._train()
        if not train or train.status not in RESUMABLE:
            state = "" if train is None else f" (#{train.id} is {train.status})"
            self.app.notify(f"Only a stopped, failed or lost training run can be resumed{state}.", severity="warning")
            return
        ws = self.app.workspace
        subset = train.subset or "train"
        argv = commands.resume_argv(train, db=ws.db_path, database=ws.database_yml)
        pid = self._launch(argv, TrainingDir(Path(train.out_dir)).log, kind="train", what=f"resume of #{train.id}",
                           protocol=train.protocol, subset=subset, device=train.device)
        validators = self._validators()
        if pid is not None and validators and not any(v.status == "running" for v in validators):
            # it was validated beside training: so it is again, once the resumed process has taken
            # the run back (before, the watcher would see it stopped and end); scored epochs are reused
            self.action_validate(after=pid)

    def action_validate(self, after: int | None = None) -> None:
        """Validate the training run: asked first (subset, every, AS-norm), prefilled from its last validation;
        beside a resume (``after``) as that validation was, without asking."""
        from app.dialogs.validate import ValidateDialog

        train = self._train()
        if not train:
            return
        validators = self._validators()
        running = [v for v in validators if v.status == "running"]
        if running:
            self.app.notify(f"validation run #{running[0].id} is already running.", severity="warning")
            return
        last = commands.validation_settings(validators[0] if validators else None)
        if after is not None:
            self._validate(train, last, after)
        else:
            self.app.push_screen(ValidateDialog(last), lambda choice: self._validate(train, choice, None))

    def _validate(self, train: Run, choice: ValidationChoice | None, after: int | None) -> None:
        if choice is None:
            return
        ws = self.app.workspace
        try:
            val = commands.val_dir(train.out_dir, train.protocol, choice.subset)
        except PathError as e:
            self.app.error(str(e))
            return
        argv = commands.validate_argv(train.out_dir, train.protocol, subset=choice.subset, every=choice.every,
                                       to=train.target_epoch, device=commands.run_device(train), db=ws.db_path,
                                       database=ws.database_yml, score_norm=choice.score_norm,
                                       calibration=choice.calibration)
        self._launch(argv, ValidationDir(val).log, kind="validate", what=f"validation of #{train.id}",
                     protocol=train.protocol, subset=choice.subset, device=commands.run_device(train), after=after)

    def action_stop_validation(self) -> None:
        running = [v for v in self._validators() if v.status == "running"]
        if not running:
            self.app.notify("No validation is running for this run.", severity="warning")
        for v in running:
            why = self.app.launcher.stop(v)
            if why:
                self.app.error(f"validation #{v.id} not stopped: {why}")
            else:
                self.app.notify(f"SIGTERM sent to validation #{v.id}.")

    def _val_dir(self) -> str | None:
        vals = [v for v in self._validators() if v.out_dir]
        if vals:
            return vals[0].out_dir
        run = None if self.data is None else self.data.run
        return run.out_dir if run is not None and run.kind == "validate" else None

    def action_pick(self) -> None:
        from app.dialogs.actions import PickDialog

        val = self._val_dir()
        validations = self._validations_read()
        eers: dict[int | str, float | None] = {v.checkpoint_name or int(v.epoch): v.eer for v in validations}
        epochs = sorted((e, eer) for e, eer in eers.items() if isinstance(e, int))
        epochs += sorted((e, eer) for e, eer in eers.items() if isinstance(e, str))
        if val is None or not epochs:
            self.app.notify("No validated epoch yet: start validation with v.", severity="warning")
            return
        self.app.push_screen(PickDialog(epochs), lambda epoch: self._pick(val, epoch))

    def _pick(self, val: str, epoch: int | str | None | bool) -> None:
        if epoch is False:
            return
        epoch = None if epoch is True else epoch
        self._run_engine(commands.pick_argv(val, epoch=epoch, db=self.app.workspace.db_path), "pick")

    def action_average(self) -> None:
        from app.dialogs.average import AverageDialog

        train = self._train()
        if train is None or not train.out_dir:
            self.app.notify("No training run to average.", severity="warning")
            return
        self.app.push_screen(AverageDialog(validated=self._val_dir() is not None and bool(self._validations_read())),
                             lambda choice: self._average(train, choice))

    def _average(self, train: Run, choice: AverageChoice | None) -> None:
        if choice is None:
            return
        folder = self._val_dir() if choice.how == "top" else train.out_dir
        top, last = (choice.count, None) if choice.how == "top" else (None, choice.count)
        self._run_engine(commands.average_argv(str(folder), top=top, last=last, db=self.app.workspace.db_path),
                         "average")

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
            save_labels(self.app.db_path, run_id, group=choice.group, tags=choice.tags, note=choice.note)
        except SpkembError as e:
            self.app.error(f"cannot save the group, tags and note: {e}")
            return
        self.app.notify(f"run #{run_id}: group, tags and note saved")
        self._load(self.run_id, -1 if not self.steps else int(self.steps[-1]["step"]))

    @work(thread=True, group="quick")
    def _run_engine(self, argv: list[str], what: str) -> None:
        """A short engine command (pick, average): its last line as a notification."""
        try:
            code, out = run_quick(argv)
        except Exception as e:  # noqa: BLE001 - reported, never raised
            code, out = 1, str(e)
        if code == 0:
            self.app.call_from_thread(self.app.notify, out.splitlines()[-1] if out else f"{what} done")
        else:
            self.app.call_from_thread(self.app.error, f"{what} failed: {out}")

    def action_det(self) -> None:
        """DET curve and score histograms of the epoch under the cursor, beside the picked epoch."""
        from app.screens.det import DetScreen, DetSource

        val = self._val_dir()
        table = self.query_one(EpochTable)
        validated = {int(v.epoch) for v in self._validations_read()}
        if val is None or not validated or not table.row_count:
            self.app.notify("No validated epoch yet: start validation with v.", severity="warning")
            return
        epoch = int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        if epoch not in validated:
            self.app.notify(f"Epoch {epoch} has not been validated.", severity="warning")
            return
        best = self._best_epoch()
        sources = [DetSource(f"epoch {epoch}" + (" (picked)" if epoch == best else ""),
                             self._scored_in(epoch) or val, epoch)]
        if best is not None and best != epoch and best in validated:
            sources.append(DetSource(f"epoch {best} (picked)", self._scored_in(best) or val, best))
        self.app.push_screen(DetScreen(sources))

    def _scored_in(self, epoch: int) -> str | None:
        """VAL_DIR of the validate run that recorded ``epoch`` last (a run may be validated on two subsets)."""
        out_dirs = {v.id: v.out_dir for v in self._validators()}
        rows = [v for v in self._validations_read() if v.epoch == epoch]
        found = [out_dirs.get(v.run_id) for v in sorted(rows, key=lambda v: v.run_id)]
        return next((d for d in reversed(found) if d), None)

    def action_extract(self) -> None:
        from app.dialogs.actions import ExtractDialog

        val = self._val_dir()
        if val is None:
            self.app.notify("Validate first: extraction uses the best validated epoch.", severity="warning")
            return
        train = self._train()
        device = None if train is None else commands.run_device(train)
        self.app.push_screen(ExtractDialog(self.app.workspace.database_yml, device),
                             lambda choice: self._extract(val, choice))

    def _extract(self, val: str, choice: ExtractChoice | None) -> None:
        if choice is None:
            return
        ws = self.app.workspace
        argv = commands.apply_argv(val, choice.protocol, subset=choice.subset, step=choice.step,
                                    epoch=choice.epoch, device=choice.device, path=choice.path, db=ws.db_path,
                                    database=ws.database_yml, diarize=choice.diarize,
                                    diarization=choice.diarization)
        self._launch(argv, ValidationDir(Path(val)).apply_log, kind="apply", what="extraction",
                     protocol=choice.protocol, subset=choice.subset, device=choice.device)
