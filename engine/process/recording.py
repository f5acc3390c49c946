"""Where an engine process's records go: one run of the database (or of an event file), and the console.

A command reports through one :class:`Recorder`: typed records (``engine.records``) that it
writes to the run and says in words. Only rank 0 of training records; the other ranks of a
DistributedDataParallel run get a recorder that drops everything.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from engine.config import Config, config_to_dict
from engine.data.audio import Problem
from engine.errors import AudioError, TrainingError
from engine.process.distributed import World
from engine.process.stopping import Interrupted, StopRequest
from engine.progress import Phase, Progress
from engine.records import Checkpoint, EpochSummary, Extraction, Figures, RunDevice, ValidationResult
from engine.requests import TrainRequest
from engine.store.events import recorder as open_writer
from engine.store.writer import NullWriter, RunWriter

if TYPE_CHECKING:
    from engine.store import Store


def _database(writer: RunWriter) -> Store:
    """The writer of a run that reads back what it wrote: only the database does (``reads_back``),
    and a run is reopened or its checkpoints read only after a read found it there."""
    return cast("Store", writer)


class Recorder:
    """The records of one run, bound to its id: each goes to the writer and, in words, to the console.

    Every command (train, validate, apply) reports through one: the run's rows reach the database
    or the event file, and the lines a user reads (stderr, the TUI's log panel) are said here,
    from the same records.
    """

    def __init__(self, writer: RunWriter, run_id: int, *, reopen: dict[str, Any] | None = None,
                 problems: Sequence[Problem] = (), indexing: bool = False, quiet: bool = False) -> None:
        self.writer, self.run_id = writer, run_id
        self._reopen, self._problems = reopen, list(problems)
        self._indexing = indexing
        self._finished = False
        self.quiet = quiet
        #: where long work shows its progress (a bar on a terminal, lines in a log)
        self.progress = Progress(quiet=quiet, beat=self._beat)
        self._target = 0
        self._epoch: Phase | None = None
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
        for p in problems:
            where = "" if p.path in p.problem else f"{p.path}: "
            self.say(f"train: warning: {where}{p.problem}")
        if problems:
            files = sum(p.kind == "file" for p in problems)
            self.say(f"train: warning: skipped {files} unusable file(s) and {len(problems) - files} speaker(s) "
                     f"while preparing {what} (listed above, and in the run's data problems); --strict stops "
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

    def started(self, *, target_epoch: int, epoch: int, step: int, batches: int, chunks: int) -> None:
        """Training is about to run from ``step`` (``batches`` of ``chunks`` an epoch): a resumed
        run is reopened from there."""
        if self._reopen is not None:
            _database(self.writer).reopen_run(self.run_id, from_step=step,
                                              **{**self._reopen, "target_epoch": target_epoch})
        elif self._indexing:
            self.writer.set_status(self.run_id, "running")
        self._indexing = False
        self.problems(self._problems)
        self.writer.heartbeat(self.run_id, epoch=epoch, step=step)
        self._target = target_epoch
        self.say(f"train: up to epoch {target_epoch}, {batches} batches of {chunks} chunks per epoch")

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
        if not self.writer.reads_back:
            return None
        rows = _database(self.writer).checkpoints(self.run_id) or []
        # averaged weights carry the last epoch they average: not that epoch's own checkpoint
        return {int(r["epoch"]) for r in rows if not r["partial"] and not r.get("name")}

    # -- validation and extraction -------------------------------------------------------
    def validation(self, result: ValidationResult, *, train_run_id: int | None, how: str,
                   cohort_speakers: int | None = None) -> None:
        """The figures of one checkpoint; ``how`` ends the line (trials and seconds, or where they came from)."""
        self.writer.add_validation(self.run_id, result, train_run_id=train_run_id)
        self.say(f"epoch {result.checkpoint}: EER {_figures(result)}  ({how})")
        if result.asnorm is not None:
            of = f" of {cohort_speakers}" if cohort_speakers else ""  # reused figures: the cohort was not made
            self.say(f"epoch {result.checkpoint}: AS-norm EER {_figures(result.asnorm)}  (top "
                     f"{result.asnorm.cohort_size}{of} cohort speakers)")

    def best(self, result: ValidationResult, how: str) -> None:
        """The checkpoint the validation points at now (``how``: lowest-eer or manual)."""
        # not yet clean: averaged weights read from scores alone have no epoch, which set_best's
        # epoch (and so the event-file schema read from it) does not allow for
        self.writer.set_best(self.run_id, epoch=result.epoch, eer=result.eer, how=how,  # type: ignore[arg-type]
                             checkpoint=result.checkpoint_name)

    def extraction(self, extraction: Extraction, device: str) -> None:
        """One finished extraction, and its speed."""
        self.writer.add_extraction(self.run_id, extraction)
        e = extraction
        self.say(f"apply: {e.files} files, {e.audio_seconds:.1f} s of audio in {e.wall_seconds:.1f} s: "
            f"{e.audio_seconds / max(e.wall_seconds, 1e-9):.1f}x real time ({e.mode}, {device}) -> {e.out_dir}")

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
        self.writer.set_status(self.run_id, status, reason)
        self.writer.close()

    @contextmanager
    def ended(self, stop: StopRequest) -> Iterator[None]:
        """Record how the block ended: completed, stopped (by a signal) or failed (with the reason).

        A requested stop (``Interrupted``: SIGTERM, or a first Ctrl-C, seen between two pieces of
        work) ends the block quietly, so that the command exits 0 as ``train`` does; a second
        Ctrl-C (a bare KeyboardInterrupt) still propagates.
        """
        status, reason = "failed", None
        try:
            yield
            status = "completed"
        except Interrupted:
            status, reason = "stopped", f"stopped by {stop.name or 'SIGINT'}"
            self.say(reason)
        except KeyboardInterrupt:
            status, reason = "stopped", f"stopped by {stop.name or 'SIGINT'}"
            raise
        except BaseException as e:
            reason = str(e) or type(e).__name__
            raise
        finally:
            stop.restore()
            self.finish(status, reason)


def _figures(f: Figures) -> str:
    """``4.36 % [95 % CI 4.10, 4.62]  minDCF(0.01) 0.410  minDCF(0.05) 0.270`` (what is known of it)."""
    text = f"{100 * f.eer:.2f} %"
    if f.eer_ci_95 is not None:
        text += f" [95 % CI {100 * f.eer_ci_95[0]:.2f}, {100 * f.eer_ci_95[1]:.2f}]"
    for p_target, value in (("0.01", f.mindcf_01), ("0.05", f.mindcf_005)):
        if value is not None:
            text += f"  minDCF({p_target}) {value:.3f}"
    return text


def open_run(writer: RunWriter, **fields: Any) -> Recorder:
    """A new run of ``writer`` (the fields of ``create_run``), recorded through the returned recorder."""
    return Recorder(writer, writer.create_run(**fields))


def open_recorder(args: TrainRequest, *, world: World, config: Config, trn_dir: Path, device: str,
                  problems: Sequence[Problem] = (), kind: str = "train", init: Any = None,
                  indexing: bool = False, resuming: bool = False) -> Recorder:
    """Rank 0: a new run (or, ``resuming``, the run being resumed); other ranks: nothing.

    ``init`` (an :class:`engine.training.init_from.InitFrom`) is the checkpoint a forked run
    starts from; the new run records its lineage. With ``indexing`` the run is recorded
    ``indexing`` from now until ``Recorder.started``: the data is listed and checked before the
    first step, with the run already visible.
    """
    if not world.is_main:
        return Recorder(NullWriter(), -1, quiet=True)
    trn_dir.mkdir(parents=True, exist_ok=True)
    writer = open_writer(args.db, events_path=trn_dir / "events.jsonl", events=args.events)
    exp_dir = Path(args.exp_dir).resolve()
    log = trn_dir / "train.log"
    fields: dict[str, Any] = dict(command=list(sys.argv), device=str(RunDevice(device, world.size)),
                                  target_epoch=args.to)
    previous = None
    if resuming:  # an event file finds nothing: a resumed run is a new run there
        previous = next(iter(writer.find_runs(out_dir=trn_dir.resolve(), kind=kind)), None)
    if previous is not None:
        if args.group or args.tag or args.note:  # given again with --resume: they change the run's
            _database(writer).set_labels(previous["id"], run_group=args.group, add_tags=list(args.tag or []),
                                         note=args.note)
        if indexing:
            _database(writer).reopen_run(previous["id"], from_step=None, status="indexing", **fields)
        return Recorder(writer, previous["id"], reopen=fields, problems=problems)
    lineage = init.lineage(writer) if init is not None else {}
    status: dict[str, Any] = {"status": "indexing"} if indexing else {}
    labels: dict[str, Any] = dict(seed=args.seed, run_group=args.group, tags=list(args.tag or []),
                                  note=args.note)
    run_id = writer.create_run(kind=kind, exp_dir=exp_dir, out_dir=trn_dir.resolve(), protocol=args.protocol,
                               subset=args.subset, config=config_to_dict(config), name=exp_dir.name,
                               log_path=log if log.exists() else None, **fields, **lineage, **status, **labels)
    return Recorder(writer, run_id, problems=problems, indexing=indexing)
