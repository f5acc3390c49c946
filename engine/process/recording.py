"""Where an engine process's records go: one run of the database (or of an event file), and the console.

A command reports through one :class:`Recorder`: typed records (``engine.records``) that it
writes to the run and says in words. Only rank 0 of training records; the other ranks of a
DistributedDataParallel run get a recorder that drops everything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.console import plural, say
from engine.data.audio_checks import Problem
from engine.errors import AudioError, SpkembError, StoreError, TrainingError
from engine.process.stopping import Interrupted, StopRequest
from engine.progress import Phase, Progress
from engine.records import Checkpoint, EpochSummary, Extraction, Figures, Run, ValidationResult
from engine.store import Store
from engine.store.writer import RunWriter

#: the unusable files and speakers of the training data said one line each; the others are counted,
#: and every one is recorded (the run's data problems)
SAID_AT_MOST = 20


class Recorder:
    """The records of one run, bound to its id: each goes to the writer and, in words, to the console.

    Every command (train, validate, apply) reports through one (``engine.process.lifecycle.open_run``):
    the run's rows reach the database or the event file, and the lines a user reads (stderr, the
    TUI's log panel) are said here, from the same records.

    ``store`` is the writer again where it is the database (which reads back what it wrote);
    ``parent`` the run this one hangs off (a validate run's training run); ``target`` the epoch
    training goes up to.
    """

    def __init__(self, writer: RunWriter, run_id: int, *, kind: str, store: Store | None = None,
                 parent: Run | None = None, target: int | None = None, indexing: bool = False,
                 quiet: bool = False) -> None:
        self.writer, self.run_id, self.kind = writer, run_id, kind
        self.store, self.parent = store, parent
        self._problems: list[Problem] = []
        self._indexing = indexing
        self._finished = False
        self.quiet = quiet
        #: where long work shows its progress (a bar on a terminal, lines in a log)
        self.progress = Progress(quiet=quiet, beat=self._beat)
        self._target = target or 0
        self._epoch: Phase | None = None
        #: epochs trained to their end (a training run's, once started): what its row says once it ends
        self._trained: int | None = None
        #: files said unusable (at indexing, at the start, or where read: said and recorded once each)
        self._unreadable: set[str] = set()
        self._read_unusable, self._read_said = 0, 0  # found where read, and how many of them were counted

    def say(self, line: str) -> None:
        """A line for the person watching (nothing on ranks other than 0)."""
        self.progress.note(line)

    # -- training ----------------------------------------------------------------------
    def _beat(self, done: float | None, total: float | None) -> None:
        # the run's progress columns count files while indexing; later phases leave them alone
        if self._indexing:
            self.writer.heartbeat(self.run_id, progress=done, progress_total=total)

    def indexed(self, problems: Sequence[Problem], what: str) -> None:
        """The data is ready; these files and speakers of ``what`` were left out: one warning line
        each, then their count (the rows are recorded at ``started``)."""
        self._problems = list(problems)
        self._unreadable.update(p.path for p in problems if p.kind == "file")  # said once
        for p in problems[:SAID_AT_MOST]:  # 20,000 missing files were 20,000 lines of train.log
            where = "" if p.path in p.problem else f"{p.path}: "
            self.say(f"train: warning: {where}{p.problem}")
        if problems:
            files = sum(p.kind == "file" for p in problems)
            above = "listed above" if len(problems) <= SAID_AT_MOST else f"the first {SAID_AT_MOST} listed above"
            self.say(f"train: warning: skipped {files} unusable file(s) and {len(problems) - files} speaker(s) "
                     f"while preparing {what} ({above}, all in the run's data problems); --strict stops "
                     "at the first instead")

    def unreadable(self, problems: Sequence[Problem], *, strict: bool) -> None:
        """Training files found unusable where they were read (changed since the index was built):
        each new one is said in the indexing's warning line and recorded as a data problem; with
        ``strict`` the first one ends the run. A chunk that found nothing readable ends it always."""
        fatal = next((p for p in problems if p.fatal), None)
        new = [p for p in problems if not p.fatal and p.path not in self._unreadable]
        self._read_unusable += len(new)
        for p in new:
            self._unreadable.add(p.path)
            where = "" if p.path in p.problem else f"{p.path}: "
            self.say(f"train: warning: {where}{p.problem}")
        if strict and new:
            self.problems(new[:1], fatal=True)
            raise AudioError(f"{new[0].problem} (found while training; without --strict its chunks are drawn "
                             "from other speech)", path=new[0].path)
        self.problems(new)
        if fatal is not None:
            self.problems([fatal], fatal=True)
            raise TrainingError(fatal.problem)

    def started(self, *, epoch: int, step: int, batches: int, chunks: int, batch: int = 0,
                resumed_from: Path | None = None) -> None:
        """Training is about to run from ``step`` (``batches`` of ``chunks`` an epoch); a resumed run
        says from which checkpoint and where in its epoch (``batch`` of epoch ``epoch + 1`` done)."""
        if self._indexing:
            self.writer.set_status(self.run_id, "running")
        self._indexing = False
        self._trained = epoch
        self.problems(self._problems)
        self.writer.heartbeat(self.run_id, epoch=epoch, step=step)
        if resumed_from is not None:
            where = (f"epoch {epoch + 1} at batch {batch}/{batches}" if batch else f"the end of epoch {epoch}")
            self.say(f"train: run #{self.run_id} resumed from {resumed_from}, {where} (step {step})")
        self.say(f"train: up to epoch {self._target}, {batches} batches of {chunks} chunks per epoch")

    def start_epoch(self, epoch: int, batches: int, done: int) -> None:
        """Epoch ``epoch`` runs, from its batch ``done`` (a resumed epoch) to ``batches``."""
        self._epoch = self.progress.open(f"epoch {epoch}/{self._target}", batches, "batches", done=done)

    def steps(self, rows: list[dict]) -> None:
        """Training steps (``add_steps`` rows); the bar shows the last loss and the speed."""
        self.writer.add_steps(self.run_id, rows)
        if self._epoch is not None and rows:
            last = rows[-1]
            self._epoch.advance(len(rows), f"loss {last['loss']:.4f}  {last['chunks_per_s']:.0f} chunks/s")

    def epoch(self, summary: EpochSummary) -> None:
        """The end of an epoch: its row, and its line."""
        self.writer.add_epoch(self.run_id, summary)
        self._trained = summary.epoch
        self._end_epoch()
        self.say(f"epoch {summary.epoch}/{self._target}  loss {summary.loss:.4f}  lr {summary.lr:.4g}  "
                 f"{summary.chunks_per_s:.0f} chunks/s  {summary.seconds:.1f} s")
        if self._read_unusable > self._read_said:
            self._read_said = self._read_unusable
            self.say(f"train: warning: {self._read_unusable} training file(s) found unusable while reading "
                     "them so far (listed above, and in the run's data problems): their chunks were drawn from "
                     "other speech; --strict stops at the first instead, --reindex checks every file again")

    def _end_epoch(self) -> None:
        if self._epoch is not None:
            self.progress.close(self._epoch, said=False)
            self._epoch = None

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        self.writer.add_checkpoint(self.run_id, checkpoint)

    def remove_checkpoint(self, *, path: Path) -> None:
        """The file at ``path`` is about to be deleted (a superseded ``resume.pt``)."""
        self.writer.remove_checkpoint(self.run_id, path=str(path))

    def recorded_epochs(self) -> set[int] | None:
        """Epochs with an end-of-epoch checkpoint row; None when the writer cannot read back."""
        if self.store is None:
            return None
        # averaged weights carry the last epoch they average: not that epoch's own checkpoint
        return {c.epoch for c in self.store.checkpoint_records(self.run_id) if not c.partial and not c.name}

    # -- validation and extraction -------------------------------------------------------
    def validation(self, result: ValidationResult, *, train_run_id: int | None, how: str,
                   cohort_speakers: int | None = None) -> None:
        """The figures of one checkpoint; ``how`` ends the line (trials and seconds, or where they came from)."""
        self.writer.add_validation(self.run_id, result, train_run_id=train_run_id)
        self.say(f"{result.title}: EER {_figures(result)}  ({how})")
        if result.asnorm is not None:
            of = f" of {cohort_speakers}" if cohort_speakers else ""  # reused figures: the cohort was not made
            self.say(f"{result.title}: AS-norm EER {_figures(result.asnorm)}  (top "
                     f"{result.asnorm.cohort_size}{of} cohort speakers)")
        if result.cllr is not None:
            self.say(f"{result.title}: calibrated on {result.calibration_list}: Cllr {result.cllr:.3f} "
                     f"(minCllr {result.min_cllr:.3f})  actual DCF(0.01) {result.actual_dcf_01:.3f}  "
                     f"actual DCF(0.05) {result.actual_dcf_005:.3f}")

    def best(self, result: ValidationResult, how: str) -> None:
        """The checkpoint the validation points at now (``how``: lowest-eer or manual)."""
        self.writer.set_best(self.run_id, epoch=result.epoch, eer=result.eer, how=how,
                             checkpoint=result.checkpoint_name)

    def extraction(self, extraction: Extraction, device: str, kept: int = 0) -> None:
        """One finished extraction, and its speed (over the files this run wrote: ``kept`` of them were
        written by the stopped apply it finished)."""
        self.writer.add_extraction(self.run_id, extraction)
        e = extraction
        speed = (f"{e.audio_seconds:.1f} s of audio in {e.wall_seconds:.1f} s: "
                 f"{e.audio_seconds / max(e.wall_seconds, 1e-9):.1f}x real time ({e.mode}, {device})")
        if kept:
            speed = f"{kept} kept from the stopped apply, {e.files - kept} written now: {speed}"
        self.say(f"apply: {plural(e.files, 'file')}, {speed} -> {e.out_dir}")

    def diarization(self, **fields: Any) -> None:
        self.writer.add_diarization(self.run_id, **fields)

    # -- any run -------------------------------------------------------------------------
    def heartbeat(self, **position: Any) -> None:
        self.writer.heartbeat(self.run_id, **position)

    def problems(self, problems: Sequence[Problem], fatal: bool = False) -> None:
        for p in problems:
            self.writer.add_problem(self.run_id, path=p.path, problem=p.problem, fatal=fatal)

    def refuse(self, problems: Sequence[Problem], what: str) -> None:
        """Unusable input files are fatal: record each one and the failure, then raise naming the first."""
        if not problems:
            return
        self.problems(problems, fatal=True)
        message = f"{len(problems)} file(s) of {what} cannot be used; first: {problems[0].problem}"
        self.finish("failed", message)
        raise AudioError(message, path=problems[0].path)

    def finish(self, status: str, reason: str | None = None) -> None:
        """The run's end; its writer is closed."""
        self._end_epoch()
        if self._finished:
            return
        self._finished = True
        if self._trained is not None and status != "completed":
            # a running run's epoch is the one being trained: stopped mid-epoch 2 of 2, it read `2/2`
            self.writer.heartbeat(self.run_id, epoch=self._trained)
        self.writer.set_status(self.run_id, status, reason)
        self.writer.close()

    @contextmanager
    def ended(self, stop: StopRequest) -> Iterator[Ending]:
        """Record how the block ended: completed, stopped (by a signal) or failed (with the reason).

        A requested stop (``Interrupted``: SIGTERM, or a first Ctrl-C, seen between two pieces of
        work) ends the block quietly, so that the command exits 0; a second Ctrl-C (a bare
        KeyboardInterrupt) still propagates. The block may end early by itself, its work kept
        (training checkpoints at a stop seen between two steps): it says so through the yielded
        :class:`Ending`. Where the end cannot be recorded (a full disk), the error the block
        raised is the one that propagates.
        """
        ending = Ending()
        try:
            yield ending
        except Interrupted as e:
            ending.status, ending.reason = "stopped", f"stopped by {e.signame or 'SIGINT'}"
            if self._indexing:  # training had not started: nothing to resume from
                where = self.progress.where()
                ending.reason += " before the first step" + (f" ({where})" if where else "")
                self.say(f"stopped by {e.signame} before the first step; nothing to resume from yet")
            else:
                self.say(ending.reason)
        except KeyboardInterrupt:
            ending.status, ending.reason = "stopped", (
                "stopped by a second SIGINT, mid-step: no checkpoint of that step" if self.kind == "train"
                else f"stopped by {stop.name or 'SIGINT'}")
            self._record_end(stop, ending, raising=True)
            raise
        except BaseException as e:
            ending.status = "failed"
            ending.reason = str(e) if isinstance(e, SpkembError) else f"{type(e).__name__}: {e}"
            self._record_end(stop, ending, raising=True)
            raise
        self._record_end(stop, ending, raising=False)
        # an event file's run number is its own: `import` gives the run the next number of a database
        run = f"run #{self.run_id}" if self.store is not None else "run"
        self.say(f"{self.kind}: {run} {ending.status}, recorded in {self.recorded_in()}")

    def recorded_in(self) -> str:
        """The runs database, or the event file, this run is recorded in."""
        return str(getattr(self.store or self.writer, "path", "an event file"))

    def _record_end(self, stop: StopRequest, ending: Ending, *, raising: bool) -> None:
        """``finish``; an error of the database while another error propagates is said, not raised."""
        stop.restore()
        try:
            self.finish(ending.status, ending.reason)
        except Exception as e:
            say(f"{self.kind}: could not record the run as {ending.status} ({type(e).__name__}: {e}); the "
                "database shows it running until `spkemb-engine runs` or the TUI finds this process gone and "
                "marks it lost")
            if not raising:
                raise StoreError(f"the {self.kind} run ended ({ending.status}) but the runs database could not "
                                 f"record it: {e}") from e


@dataclass
class Ending:
    """How a run's block ended (``Recorder.ended``): completed, unless it says it stopped early."""

    status: str = "completed"
    reason: str | None = None

    def stopped(self, reason: str | None) -> None:
        """The block stopped before its end, at a signal, its work kept (``reason``: where, by which)."""
        self.status, self.reason = "stopped", reason


def _figures(f: Figures) -> str:
    """``4.36 % [95 % CI 4.10, 4.62]  minDCF(0.01) 0.410  minDCF(0.05) 0.270`` (what is known of it)."""
    text = f.eer_text
    if f.eer_ci_95 is not None:
        text += f" [95 % CI {100 * f.eer_ci_95[0]:.2f}, {100 * f.eer_ci_95[1]:.2f}]"
    for p_target, value in (("0.01", f.mindcf_01), ("0.05", f.mindcf_005)):
        if value is not None:
            text += f"  minDCF({p_target}) {value:.3f}"
    return text
