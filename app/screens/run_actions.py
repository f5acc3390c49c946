"""The run detail's actions that start engine commands: stop and resume the run, validate it (or stop its
validation), pick the best epoch, average epochs' weights, delete the epoch checkpoints no result needs,
extract embeddings with the picked one, score recordings of one's own with it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import work

from app.data.reader import RunDetail
from app.launching import commands
from app.launching.children import run_captured
from app.screens.host import SpkembScreen
from app.views.runs_view import LIVE
from engine.errors import PathError
from engine.layout import TrainingDir, ValidationDir
from engine.records import RecordedValidation, Run

if TYPE_CHECKING:  # the dialogs are imported when opened
    from app.dialogs.actions import ExtractChoice
    from app.dialogs.average import AverageChoice
    from app.dialogs.verify import VerifyChoice
    from app.launching.commands import ValidationChoice


#: training runs that `r` continues: a completed run has nothing left to train
RESUMABLE = ("stopped", "failed", "lost")
#: seconds a verify may take (it imports torch, reads the network and embeds whole recordings)
VERIFY_TIMEOUT_S = 600.0


class RunActions(SpkembScreen):
    """A screen showing one run (the run detail) whose actions launch the engine on it."""

    #: the latest read of the run (None until the first one arrives)
    data: RunDetail | None
    #: whether the figures shown are AS-norm ones (``n``): ``s`` then verifies with AS-norm too
    asnorm: bool

    def _launch(self, argv: list[str], log: Path, *, kind: str, what: str, protocol: str, subset: str,
                device: str | None, after: int | None = None) -> int | None:
        """Start an engine command (once process ``after`` has recorded its run, if given); its pid."""
        app = self.spkemb
        try:
            pid = app.launcher.record_launch(app.pending, argv, log, kind=kind, what=what, protocol=protocol,
                                             subset=subset, device=device, now=app.now(), after=after)
        except OSError as e:
            app.blocking_error(f"Cannot start {kind}", f"{' '.join(argv)}\n\n{e}")
            return None
        self.app.notify(f"{what} {'started' if after is None else 'starts with it'}; "
                        f"log: {app.workspace.show(log)}")
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
        self.ask_to_stop(run)

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
        if train.out_dir is None or train.protocol is None:
            self.spkemb.error(f"run #{train.id} records no folder or protocol to resume from.")
            return
        what = f"resume of #{train.id}"
        if any(p.what == what for p in self.spkemb.pending):
            # a second `r` before the first resume records its run: the engine would refuse it, in the run's log
            self.app.notify(f"The {what} is starting already.", severity="warning")
            return
        ws = self.spkemb.workspace
        subset = train.subset or "train"
        argv = commands.resume_argv(train, db=ws.db_path, database=ws.database_yml)
        pid = self._launch(argv, TrainingDir(Path(train.out_dir)).log, kind="train", what=what,
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
        if train.out_dir is None or train.protocol is None:
            self.spkemb.error(f"run #{train.id} records no folder or protocol to validate.")
            return
        ws = self.spkemb.workspace
        try:
            val = commands.val_dir(train.out_dir, train.protocol, choice.subset)
        except PathError as e:
            self.spkemb.error(str(e))
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
            why = self.spkemb.launcher.stop(v)
            if why:
                self.spkemb.error(f"validation #{v.id} not stopped: {why}")
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
        # the database's validations always have an epoch (NOT NULL)
        eers: dict[int | str, float | None] = {v.checkpoint_name or int(v.epoch): v.eer for v in validations
                                               if v.epoch is not None}
        epochs: list[tuple[int | str, float | None]] = sorted((e, eer) for e, eer in eers.items() if isinstance(e, int))
        epochs += sorted((e, eer) for e, eer in eers.items() if isinstance(e, str))
        if val is None or not epochs:
            self.app.notify("No validated epoch yet: start validation with v.", severity="warning")
            return
        self.app.push_screen(PickDialog(epochs), lambda epoch: self._pick(val, epoch))

    def _pick(self, val: str, epoch: int | str | None | bool) -> None:
        if epoch is False:
            return
        epoch = None if epoch is True else epoch
        self._run_engine(commands.pick_argv(val, epoch=epoch, db=self.spkemb.workspace.db_path), "pick")

    def action_average(self) -> None:
        from app.dialogs.average import AverageDialog

        train = self._train()
        if train is None or not train.out_dir:
            self.app.notify("No training run to average.", severity="warning")
            return
        validated = {v.epoch for v in self._validations_read() if v.checkpoint_name is None and (v.epoch or 0) > 0
                     and v.eer is not None} if self._val_dir() is not None else set()
        self.app.push_screen(AverageDialog(validated=len(validated), trained=train.epoch or 0),
                             lambda choice: self._average(train, choice))

    def _average(self, train: Run, choice: AverageChoice | None) -> None:
        if choice is None:
            return
        folder = self._val_dir() if choice.how == "top" else train.out_dir
        top, last = (choice.count, None) if choice.how == "top" else (None, choice.count)
        self._run_engine(commands.average_argv(str(folder), top=top, last=last, db=self.spkemb.workspace.db_path),
                         "average")

    def action_clean(self) -> None:
        train = self._train()
        if train is None or not train.out_dir:
            self.app.notify("No training run to clean.", severity="warning")
            return
        self.ask_clean([train.out_dir], f"run #{train.id}")

    @work(thread=True, group="quick")
    def _run_engine(self, argv: list[str], what: str) -> None:
        """A short engine command (pick, average): its result (stdout's last line) as a notification, and
        what it said beside it (a warning, the command to run next) as another."""
        code, out, said = run_captured(argv)
        if code == 0:
            self.app.call_from_thread(self.app.notify, out.splitlines()[-1] if out else f"{what} done")
            if said:
                self.app.call_from_thread(self.app.notify, said)
        else:
            self.app.call_from_thread(self.spkemb.error, f"{what} failed: {said or out}")

    def action_extract(self) -> None:
        from app.dialogs.actions import ExtractDialog

        val = self._val_dir()
        if val is None:
            self.app.notify("Validate first: extraction uses the best validated epoch.", severity="warning")
            return
        train = self._train()
        device = None if train is None else commands.run_device(train)
        self.app.push_screen(ExtractDialog(self.spkemb.workspace.database_yml, device),
                             lambda choice: self._extract(val, choice))

    def _extract(self, val: str, choice: ExtractChoice | None) -> None:
        if choice is None:
            return
        ws = self.spkemb.workspace
        argv = commands.apply_argv(val, choice.protocol, subset=choice.subset, step=choice.step,
                                    epoch=choice.epoch, device=choice.device, path=choice.path, db=ws.db_path,
                                    database=ws.database_yml, diarize=choice.diarize,
                                    diarization=choice.diarization)
        self._launch(argv, ValidationDir(Path(val)).apply_log, kind="apply", what="extraction",
                     protocol=choice.protocol, subset=choice.subset, device=choice.device)

    def action_verify(self) -> None:
        from app.dialogs.verify import VerifyDialog

        val = self._val_dir()
        if val is None:
            self.app.notify("Validate first: verify decides at the picked epoch's EER threshold.", severity="warning")
            return
        norm = "asnorm" if self.asnorm else None
        self.app.push_screen(VerifyDialog(f"the picked epoch of {Path(val).name}" + (" (AS-norm)" if norm else "")),
                             lambda choice: self._verify(val, choice, norm))

    def _verify(self, val: str, choice: VerifyChoice | None, norm: str | None) -> None:
        if choice is not None:
            self._run_verify(val, choice, norm)

    @work(thread=True, group="quick")
    def _run_verify(self, val: str, choice: VerifyChoice, norm: str | None) -> None:
        """``verify`` of the chosen recordings (AS-norm ones where the screen shows AS-norm figures); its
        lines in a dialog (or why it failed)."""
        from app.dialogs.run_info import RunInfoDialog
        from app.views.verdicts import verdict_lines

        argv = commands.verify_argv(val, choice.enrolment, list(choice.tests), db=self.spkemb.workspace.db_path,
                                    score_norm=norm)
        self.app.call_from_thread(self.app.notify, f"verify: scoring {len(choice.tests)} recording(s)…")
        code, stdout, stderr = run_captured(argv, timeout=VERIFY_TIMEOUT_S)
        if code != 0:
            self.app.call_from_thread(self.spkemb.error, f"verify failed: {stderr or stdout}")
            return
        title = f"verify {choice.enrolment}"
        self.app.call_from_thread(self.app.push_screen, RunInfoDialog(title, verdict_lines(stdout, stderr)))
