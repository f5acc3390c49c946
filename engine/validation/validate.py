"""``spkemb-engine validate``: EER and minDCF of each checkpoint, beside training.

For every committed checkpoint (``engine.validation.watch``) in range, newest first unless
``--chronological``: embed every file of ``PROTOCOL.{subset}_trial()`` once, score each
trial by the cosine similarity of its two file embeddings, write
``VAL_DIR/scores/{epoch:04d}.txt``, a ``validations`` row, and keep ``VAL_DIR/params.yml``
on the best epoch so far. Averaged weights (``weights/avg-top5.pt``, ``spkemb-engine average``)
are scored the same way once the epochs in range are done (``scores/avg-top5.txt``, a row with
``checkpoint_name``); params.yml moves to them only by ``pick --epoch avg-top5``.

``--calibration SUBSET`` also embeds the files of ``PROTOCOL.{SUBSET}_trial()``, scores that list
(``scores/{epoch:04d}.calibration.txt``), fits a logistic-regression calibration of the scores on it
(``engine.validation.calibration``) and records the Cllr and actual DCFs of the calibrated scores of
the evaluated list; minCllr is recorded always.

``--score-norm asnorm`` also normalises each score by adaptive S-norm against the training
speakers (``engine.validation``) and records both figures (``scores/{epoch:04d}.asnorm.txt``).

A file's embedding is the mean of the embeddings of ``task.duration``-long windows sliding
with a hop of ``duration / 4`` (pyannote.audio 1.x: ``step=0.25`` in
``_validate_epoch_verification``), computed by the exact path of ``engine.inference.windows``; a file
shorter than a window is one window. ``--whole-file`` embeds each file in one pass.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.atomic import sweep_dead_temps
from engine.console import say
from engine.data.audio_checks import check_files
from engine.errors import ProtocolError, SpkembError
from engine.inference.network import load_network
from engine.layout import TRN_DIR_SHAPE, CheckpointName, TrainingDir, ValidationDir
from engine.process import folder_lock
from engine.process.checkpoints import Trust
from engine.process.distributed import pick_device
from engine.process.lifecycle import find_parent, open_run
from engine.process.recording import Recorder
from engine.process.stopping import Interrupted, StopRequest
from engine.progress import Progress
from engine.records import Run, ValidationResult, checkpoint_title
from engine.requests import ValidateRequest
from engine.store import HEARTBEAT_INTERVAL
from engine.validation.normalised import ScoreNorm, asnorm_result, cohort_of, prepare_score_norm
from engine.validation.params import read_params, write_params
from engine.validation.recordings import warn_short_trial_files
from engine.validation.reuse import reused_result, same_method, scored_on, write_method
from engine.validation.score_files import read_scores, result_from_scores, write_scores
from engine.validation.selection import results_from_store
from engine.validation.trial_scores import VALIDATION_STEP, cosine_scores, embed_files, require_finite
from engine.validation.trials import load_trials
from engine.validation.val_dir import given_trn_dir, near_trn_dir
from engine.validation.watch import CheckpointWatcher, Snapshot, modified_at

if TYPE_CHECKING:
    from engine.validation.calibration_list import CalibrationList

#: seconds to wait for a training run that has not recorded itself (nor any checkpoint) yet
STARTUP_GRACE = 60.0


def _in_range(epoch: int, args: ValidateRequest) -> bool:
    first = args.from_epoch or 0
    return (epoch >= first and (args.to is None or epoch <= args.to)
            and (epoch - first) % max(1, args.every) == 0)


def cmd_validate(args: ValidateRequest) -> int:
    """``spkemb-engine validate``: see the module docstring."""
    trn = given_trn_dir(args.trn_dir)
    if not _wait_for_training_dir(trn):
        raise ProtocolError(f"{trn.root} is not a directory: pass the TRN_DIR that `spkemb-engine train` "
                            f"writes ({TRN_DIR_SHAPE}){near_trn_dir(trn) if trn.in_experiment() else ''}")
    val = trn.validation(args.protocol, args.subset)
    trials, files = load_trials(args.protocol, args.subset, args.database)
    calibration = None
    if args.calibration is not None:
        calibration_trials, calibration_files = load_trials(args.protocol, args.calibration, args.database,
                                                            option="--calibration")
        from engine.validation.calibration_list import CalibrationList

        calibration = CalibrationList(f"{args.protocol}.{args.calibration}", calibration_trials)
        files = {**files, **calibration_files}   # embedded once, whichever list names them
    device = pick_device(args.device)
    # the cohort is made before the run is recorded: one that cannot be made is refused, not failed
    cohort = None if args.score_norm is None else cohort_of(
        trn, find_parent("validate", val, args.db), args.database, size=args.cohort_size,
        per_speaker=args.cohort_files)
    # a second validation of VAL_DIR is refused before it records anything (VAL_DIR made only now)
    with folder_lock.held(val.root, val.lock, folder_lock.VALIDATION):
        recorder = open_run("validate", val, args, device=str(device), target_epoch=args.to)
        sweep_dead_temps(val.scores)  # a killed validate's half-written score file
        watcher = CheckpointWatcher(trn, recorder.store)
        # A trial file that cannot be read is fatal before any work: an EER over a silently
        # shrunk trial list is comparable with nothing (docs/validation.md).
        # tens of thousands of files on a network filesystem take minutes: counted as they go
        with recorder.progress.phase("validate: checking the trials' files", len(files), said=False,
                                     opening=False) as phase:
            problems = check_files(files.values(), advance=phase.advance)
        recorder.refuse(problems, f"the trials of {args.protocol} {args.subset}")
        warn_short_trial_files(files.values(), trn)
        norm = None if cohort is None else prepare_score_norm(cohort, args.cohort_size, recorder)
        stop = StopRequest().install()
        with recorder.ended(stop):
            _loop(args, watcher, recorder, recorder.parent, val, trials, files, device, stop, norm, calibration)
    return 0


def _wait_for_training_dir(trn: TrainingDir) -> bool:
    """Whether TRN_DIR exists, waiting for it while a training run of EXP_DIR may be creating it.

    `train` and `validate` started together (two shells, a job script) race: validate waits up
    to ``STARTUP_GRACE`` when TRN_DIR sits in an experiment (EXP_DIR/config.yml), and fails at
    once on a path that cannot be one (a typo).
    """
    if trn.root.is_dir():
        return True
    if not trn.in_experiment():
        return False
    say(f"validate: waiting up to {STARTUP_GRACE:.0f} s for {trn.root} (training is starting?"
        f"{near_trn_dir(trn)})")
    deadline = time.monotonic() + STARTUP_GRACE
    while not trn.root.is_dir() and time.monotonic() < deadline:
        time.sleep(0.5)
    return trn.root.is_dir()


def _loop(args: ValidateRequest, watcher: CheckpointWatcher, recorder: Recorder, train_run: Run | None,
          val: ValidationDir, trials: list, files: dict[str, str], device: Any, stop: StopRequest,
          norm: ScoreNorm | None = None, calibration: CalibrationList | None = None) -> None:
    validated: set[int] = set()
    named_done: dict[str, float] = {}   # averaged weights scored, with the mtime of the file scored
    best: ValidationResult | None = None
    seen: list[ValidationResult] = []   # the epochs' figures, scored or read back
    beat, began, began_at = 0.0, time.monotonic(), time.time()
    # `files` holds the calibration list's files too (embedded once): the trials' own are counted here
    trial_files = len({uri for _, *pair in trials for uri in pair})
    also = "" if calibration is None else \
        f", calibrated on {len(calibration.trials)} trials of {calibration.name} ({len(files)} files in all)"
    recorder.say(f"validate: {len(trials)} trials over {trial_files} files of {args.protocol} {args.subset}{also} "
                 f"-> {val.root}")
    reusable = not args.rescore and same_method(val, _method(args))
    # figures earlier validate runs of VAL_DIR recorded (this run is one of them, with none yet)
    recorded = {r.checkpoint: r for r in results_from_store(watcher.store, val)} \
        if reusable and watcher.store is not None else {}
    # once VAL_DIR's scores are made the way this run makes them (method.yml says so), params.yml
    # is weighed as it is on disk; before, against this run's own best. --rescore scores again but
    # leaves a pick alone: params.yml moves only for a lower EER
    trusted = same_method(val, _method(args))
    waiting_said = False
    while True:
        if stop.requested:
            raise Interrupted(stop.name)
        snap = watcher.poll()
        train = snap.train_run or train_run
        train_id = train.id if train is not None else None
        todo = sorted(e for e in snap.checkpoints if e not in validated and _in_range(e, args))
        named = [n for n, p in sorted(snap.named.items()) if named_done.get(n) != modified_at(p)]
        if not todo and named:
            name = named[0]
            named_done[name] = modified_at(snap.named[name])
            result, scored = _score(args, recorder, train_id, name, snap.named[name], val, trials, files, device,
                                    stop, norm, recorded.get(name), reusable, calibration)
            current = _params_or_none(val)
            if scored and current is not None and current.checkpoint == name:
                # the averaged weights params.yml points at were made again (`average` run again): its
                # figures follow the weights `apply` now loads
                best = result
                write_params(val, result)
                recorder.best(result, how="manual")
            recorder.heartbeat()
            waiting_said = False
            continue
        if todo:
            epoch = todo[0] if args.chronological else todo[-1]
            if not snap.checkpoints[epoch].is_file():  # deleted since it was recorded (disk space, say)
                recorder.say(f"validate: {snap.checkpoints[epoch]} is gone (deleted?): epoch {epoch} not scored")
                validated.add(epoch)
                continue
            result, scored = _score(args, recorder, train_id, epoch, snap.checkpoints[epoch], val,
                                    trials, files, device, stop, norm, recorded.get(epoch), reusable, calibration)
            validated.add(epoch)
            seen.append(result)
            current = _params_or_none(val) if trusted else best
            if current is not None and current is not best and not scored_on(val, current, trials):
                current = best  # params.yml's epoch was scored on another list behind the same name
            # epochs scored before are already weighed in params.yml (or picked by hand over)
            if (scored or current is None) and _lower(result, current):
                best = result
                write_params(val, best)
                recorder.best(result, how="lowest-eer")
            if scored and not trusted:
                write_method(val, _method(args))
                trusted = True
            recorder.heartbeat(epoch=epoch, progress=len(validated))
            waiting_said = False
            continue
        if _finished(args, snap, began, began_at, watcher.trn):
            if not validated and not named_done and snap.checkpoints:
                raise SpkembError(_out_of_range(args, snap, watcher.trn))
            for line in snap.ending(watcher.trn, scored=bool(validated)):
                recorder.say(line)
            if args.to is not None and not _reached(args, snap) and train is not None:
                recorder.say(f"validate: training run #{train.id} is {train.status} at epoch {train.epoch or 0}: "
                             f"--to {args.to} is not reached")
            _say_choice(recorder, val, seen, recorded_best=best is not None)
            return
        if not waiting_said:
            recorder.say(snap.waiting(watcher.trn))
            waiting_said = True
        now = time.monotonic()
        if now - beat >= HEARTBEAT_INTERVAL:
            recorder.heartbeat()
            if watcher.store is not None:
                # a training process that died without saying so becomes `lost`: we stop then
                watcher.store.mark_lost()
            beat = now
        time.sleep(args.poll)


def _say_choice(recorder: Recorder, val: ValidationDir, seen: list[ValidationResult], *,
                recorded_best: bool) -> None:
    """The last line: where params.yml points. A run that found its epochs scored before, or none
    better than params.yml's, records that choice too: the runs table and the report read a
    validate run's best, and would otherwise fall back to its lowest EER (averaged weights included)."""
    current = _params_or_none(val)
    if current is None:
        return
    if not recorded_best:
        lowest = min((r for r in seen if r.checkpoint_name is None), key=ValidationResult.ranked, default=None)
        picked = lowest is None or lowest.checkpoint != current.checkpoint
        recorder.best(current, how="manual" if picked else "lowest-eer")
    recorder.say(f"validate: {val.params} points at {current.title} (EER {current.eer_text})")


def _finished(args: ValidateRequest, snap: Snapshot, began: float, began_at: float, trn: TrainingDir) -> bool:
    """Whether nothing more will come: training has ended (or reached ``--to``)."""
    in_grace = time.monotonic() - began < STARTUP_GRACE
    # started together with train, we may look before it has recorded its run: wait for it
    starting = snap.source == "files" and not snap.checkpoints and in_grace
    # ... or before a `train --resume` started with us has reopened a run that ended short of --to, or
    # that a training process holding the folder is about to reopen (a completed run resumed `--to`
    # further: we ended at once, its new epochs never scored)
    run = snap.train_run
    resuming = (run is not None and in_grace and run.ended_at is not None and run.ended_at < began_at
                and (args.to is not None or folder_lock.is_held(trn.lock)))
    return (snap.ended and not snap.pending and not starting and not resuming) or _reached(args, snap)


def _out_of_range(args: ValidateRequest, snap: Snapshot, trn: TrainingDir) -> str:
    """Why a validation of a training that has ended scores nothing: no epoch of it in the range asked
    (``--from`` past its last epoch, say). Refused as ``--from 3 --to 2`` is: a run recorded as
    completed with nothing scored read as a validation."""
    epochs, run = sorted(snap.checkpoints), snap.train_run
    whose = f"training run #{run.id} ({run.status})" if run is not None else str(trn.weights)
    asked = " ".join([f"--from {args.from_epoch or 0}", *([f"--to {args.to}"] if args.to is not None else []),
                      *([f"--every {args.every}"] if args.every > 1 else [])])
    return (f"nothing to score: {whose} has epochs {epochs[0]}–{epochs[-1]}, none of them in {asked}; pass a "
            "range that holds one, or train further first (`spkemb-engine train --resume --to N`)")


def _reached(args: ValidateRequest, snap: Snapshot) -> bool:
    """Whether the epoch ``--to`` names (or a later one) has a checkpoint."""
    return args.to is not None and any(e >= args.to for e in snap.checkpoints)


def _score(args: ValidateRequest, recorder: Recorder, train_id: int | None, name: CheckpointName,
           checkpoint: Path, val: ValidationDir, trials: list, files: dict[str, str], device: Any,
           stop: StopRequest, norm: ScoreNorm | None, recorded: ValidationResult | None,
           reusable: bool, calibration: CalibrationList | None = None) -> tuple[ValidationResult, bool]:
    """Score one checkpoint (or reuse its earlier figures) and record them; (result, scored)."""
    calibrated_on = None if calibration is None else calibration.name
    result = reused_result(val, name, checkpoint, trials, recorded, norm, calibrated_on) if reusable else None
    scored = result is None
    if result is not None:
        how = f"scored before, in {result.scores_path}; --rescore to embed again"
    else:
        started = time.monotonic()
        result = validate_epoch(args, checkpoint, name, val, trials, files, device, stop, norm,
                                progress=recorder.progress, calibration=calibration)
        how = f"{len(trials)} trials, {math.ceil(time.monotonic() - started)} s"
    recorder.validation(result, train_run_id=train_id, how=how,
                        cohort_speakers=None if norm is None else len(norm.cohort.speakers))
    return result, scored


def _method(args: ValidateRequest) -> dict[str, Any]:
    """How file embeddings are made: scores made another way are not comparable."""
    return {"embedding": "whole-file" if args.whole_file else "windows", "hop": VALIDATION_STEP}


def _lower(result: ValidationResult, current: ValidationResult | None) -> bool:
    """Whether params.yml should move to this epoch: a lower EER (the earlier epoch on a tie)
    than the epoch it names now (``pick`` may have changed it meanwhile), or none yet."""
    return current is None or result.ranked() < current.ranked()


def _params_or_none(val: ValidationDir) -> ValidationResult | None:
    """params.yml as it is now; None when absent or damaged (the validation then rewrites it)."""
    try:
        return read_params(val)
    except SpkembError as e:
        say(f"validate: {e}")
        return None


def validate_epoch(args: ValidateRequest, checkpoint: Path, epoch: CheckpointName, val: ValidationDir,
                   trials: list[tuple[int, str, str]], files: dict[str, str], device: Any,
                   stop: StopRequest, norm: ScoreNorm | None = None, *,
                   progress: Progress | None = None, calibration: CalibrationList | None = None) -> ValidationResult:
    """Embed, score, write the scores file; returns the checkpoint's result."""
    network = load_network(checkpoint, device, trust=Trust(args.db, accept_changed=args.trust_checkpoint))
    model, config, payload = network.model, network.config, network.checkpoint.payload
    sample_rate = config.feature_extraction.sample_rate
    progress = progress or Progress()
    with progress.phase(f"{checkpoint_title(epoch)}: embedding", len(files), said=False) as phase:
        embeddings = embed_files(model, files, duration=config.task.duration, sample_rate=sample_rate,
                                 batch=args.batch, whole_file=args.whole_file, phase=phase, stop=stop)
    if norm is not None:
        with progress.phase(f"{checkpoint_title(epoch)}: cohort", len(norm.cohort.files), said=False) as phase:
            cohort = embed_files(model, norm.cohort.files, duration=config.task.duration,
                                 sample_rate=sample_rate, batch=args.batch, whole_file=args.whole_file,
                                 phase=phase, stop=stop)
    require_finite({**embeddings, **(cohort if norm is not None else {})}, checkpoint)
    scores = cosine_scores(embeddings, trials)
    path = write_scores(val.score_file(epoch),
                        ((ref, s, u1, u2) for (ref, u1, u2), s in zip(trials, scores, strict=True)))
    # the figures come from the scores as written (eight decimals), so that the file alone gives
    # them back: `pick`, a later validation reusing this epoch, anyone with the file
    result = result_from_scores(epoch, *read_scores(path), source=path, last_epoch=int(payload.get("epoch") or 0))
    if calibration is not None:
        from engine.validation.calibration_list import calibration_figures

        result = dataclasses.replace(result, **vars(calibration_figures(val, epoch, path, embeddings, calibration)))
    if norm is not None:
        result = dataclasses.replace(
            result, asnorm=asnorm_result(norm, epoch, val, cohort, embeddings, trials, scores))
    return result

