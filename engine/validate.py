"""``spkemb-engine validate``: EER and minDCF of each checkpoint, beside training.

For every committed checkpoint (``engine.watch``) in range, newest first unless
``--chronological``: embed every file of ``PROTOCOL.{subset}_trial()`` once, score each
trial by the cosine similarity of its two file embeddings, write
``VAL_DIR/scores/{epoch:04d}.txt``, a ``validations`` row, and keep ``VAL_DIR/params.yml``
on the best epoch so far.

A file's embedding is the mean of the embeddings of ``task.duration``-long windows sliding
with a hop of ``duration / 4`` (pyannote.audio 1.x: ``step=0.25`` in
``_validate_epoch_verification``), computed by the exact path of ``engine.embed``; a file
shorter than a window is one window. ``--whole-file`` embeds each file in one pass.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.progress import MofNCompleteColumn

from engine.atomic import atomic_write_text
from engine.audio import check_files, num_samples, read_file
from engine.distributed import pick_device
from engine.embed import (ArraySignal, embed_exact, embed_short, load_model,
                          progress_bar, window_starts)
from engine.errors import ProtocolError, SpkembError
from engine.protocols import load_protocol
from engine.recording import recorded_end, refuse_problems
from engine.selection import (read_params, read_scores, result_from_scores, results_from_store, scores_path,
                              write_params, write_scores)
from engine.stopping import Interrupted, StopRequest
from engine.store import HEARTBEAT_INTERVAL, recorder
from engine.watch import CheckpointWatcher

#: hop between validation windows, as a fraction of the window (pyannote.audio 1.x)
VALIDATION_STEP = 0.25

#: VAL_DIR/scores/method.yml: how the scores beside it were made (they are reused only if the same)
METHOD = Path("scores") / "method.yml"


#: seconds to wait for a training run that has not recorded itself (nor any checkpoint) yet
STARTUP_GRACE = 60.0


def val_dir_for(trn_dir: str | Path, protocol: str, subset: str) -> Path:
    """``TRN_DIR/validate_equal_error_rate/{PROTOCOL}.{subset}``, as in the tutorial."""
    return Path(trn_dir) / "validate_equal_error_rate" / f"{protocol}.{subset}"


def load_trials(protocol_name: str, subset: str, database: str | None
                ) -> tuple[list[tuple[int, str, str]], dict[str, str]]:
    """Trials ``(reference, uri1, uri2)`` of ``{subset}_trial()`` and the audio path of each uri."""
    protocol = load_protocol(protocol_name, database)
    method = getattr(protocol, f"{subset}_trial", None)
    if method is None:
        raise ProtocolError(f"protocol {protocol_name} has no {subset}_trial(): validate needs a "
                            "speaker verification protocol with trials (e.g. "
                            "VoxCeleb.SpeakerVerification.VoxCeleb1)")
    trials, files = [], {}
    try:
        for trial in method():
            uris = []
            for key in ("file1", "file2"):
                f = trial[key]
                files.setdefault(f["uri"], str(f["audio"]))
                uris.append(f["uri"])
            trials.append((int(bool(trial["reference"])), uris[0], uris[1]))
    except (NotImplementedError, FileNotFoundError) as e:
        raise ProtocolError(f"protocol {protocol_name}: {subset} trials cannot be read ({e}); "
                            "check the `trial:` entry of database.yml") from e
    if not trials:
        raise ProtocolError(f"protocol {protocol_name} lists no {subset} trial")
    return trials, files


def embed_files(model: Any, files: dict[str, str], *, duration: float, sample_rate: int,
                batch: int, whole_file: bool, progress: Any = None, task: Any = None,
                stop: StopRequest | None = None) -> dict[str, np.ndarray]:
    """One embedding per file: the mean over its sliding windows (or one pass, ``whole_file``).

    Files are packed one after the other into one signal (each starting on a multiple of the
    first convolution's stride times its pooling, so that they share its phases) until a batch
    of windows is full, and embedded together by ``engine.embed.embed_exact``.
    """
    window = num_samples(duration, sample_rate)
    hop = max(1, num_samples(VALIDATION_STEP * duration, sample_rate))
    block = model.sincnet.blocks[0]
    align = block.conv.stride * block.pool.kernel_size
    out: dict[str, np.ndarray] = {}
    pending: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        offsets, starts, owners, pieces, at = [], [], [], [], 0
        for i, (uri, x) in enumerate(pending):
            local = window_starts(len(x), window, hop)
            starts.append(at + local)
            owners.append(np.full(len(local), i))
            pieces += [x, np.zeros(-len(x) % align, np.float32)]
            offsets.append(at)
            at += len(x) + (-len(x) % align)
        rows = embed_exact(model, ArraySignal(np.concatenate(pieces)), np.concatenate(starts),
                           window, batch=batch)
        owner = np.concatenate(owners)
        for i, (uri, _) in enumerate(pending):
            out[uri] = rows[owner == i].astype(np.float64).mean(axis=0)
        pending.clear()

    n_windows = 0
    for uri, path in files.items():
        if stop is not None and stop.requested:
            raise Interrupted(stop.name)
        x = read_file(path, sample_rate)
        if whole_file or len(x) <= window:
            out[uri] = embed_short(model, x)[0].astype(np.float64)
        else:
            pending.append((uri, x))
            n_windows += len(window_starts(len(x), window, hop))
            if n_windows >= batch:
                flush()
                n_windows = 0
        if progress is not None:
            progress.advance(task)
    if pending:
        flush()
    return out


def cosine_scores(embeddings: dict[str, np.ndarray], trials: list[tuple[int, str, str]]) -> np.ndarray:
    """Cosine similarity of the two file embeddings of each trial."""
    a = np.stack([embeddings[u1] for _, u1, _ in trials])
    b = np.stack([embeddings[u2] for _, _, u2 in trials])
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def _in_range(epoch: int, args: argparse.Namespace) -> bool:
    first = args.from_epoch or 0
    return (epoch >= first and (args.to is None or epoch <= args.to)
            and (epoch - first) % max(1, args.every) == 0)


def cmd_validate(args: argparse.Namespace) -> int:
    """``spkemb-engine validate``: see the module docstring."""
    trn_dir = Path(args.trn_dir)
    if not _wait_for_training_dir(trn_dir):
        raise ProtocolError(f"{trn_dir} is not a directory: pass the TRN_DIR that `spkemb-engine train` "
                            "writes (EXP_DIR/train/PROTOCOL.SUBSET)")
    val_dir = val_dir_for(trn_dir, args.protocol, args.subset)
    trials, files = load_trials(args.protocol, args.subset, args.database)
    device = pick_device(args.device)

    writer = recorder(args.db, events_path=val_dir / "events.jsonl")
    store = writer if hasattr(writer, "find_runs") else None
    watcher = CheckpointWatcher(trn_dir, store)
    train_run = watcher.train_run()
    run_id = writer.create_run(
        kind="validate", exp_dir=trn_dir.parent.parent, out_dir=val_dir, protocol=args.protocol,
        subset=args.subset, config=train_run["config"] if train_run else None, command=list(sys.argv),
        device=str(device), target_epoch=args.to, parent_id=train_run["id"] if train_run else None,
        name=trn_dir.parent.parent.name)
    # A trial file that cannot be read is fatal before any work: an EER over a silently
    # shrunk trial list is comparable with nothing (DESIGN.md).
    refuse_problems(writer, run_id, check_files(files.values()), f"the trials of {args.protocol} {args.subset}")

    stop = StopRequest().install()
    with recorded_end(writer, run_id, stop):
        _loop(args, watcher, writer, run_id, train_run, val_dir, trials, files, device, stop)
    return 0


def _wait_for_training_dir(trn_dir: Path) -> bool:
    """Whether TRN_DIR exists, waiting for it while a training run of EXP_DIR may be creating it.

    `train` and `validate` started together (two shells, a job script) race: validate waits up
    to ``STARTUP_GRACE`` when TRN_DIR sits in an experiment (EXP_DIR/config.yml), and fails at
    once on a path that cannot be one (a typo).
    """
    if trn_dir.is_dir():
        return True
    if trn_dir.parent.name != "train" or not (trn_dir.parent.parent / "config.yml").is_file():
        return False
    print(f"validate: waiting up to {STARTUP_GRACE:.0f} s for {trn_dir} (training is starting?)",
          file=sys.stderr, flush=True)
    deadline = time.monotonic() + STARTUP_GRACE
    while not trn_dir.is_dir() and time.monotonic() < deadline:
        time.sleep(0.5)
    return trn_dir.is_dir()


def _loop(args: argparse.Namespace, watcher: CheckpointWatcher, writer: Any, run_id: int,
          train_run: dict | None, val_dir: Path, trials: list, files: dict[str, str],
          device: Any, stop: StopRequest) -> None:
    validated: set[int] = set()
    best: dict[str, Any] | None = None
    beat, began = 0.0, time.monotonic()
    print(f"validate: {len(trials)} trials over {len(files)} files of {args.protocol} "
          f"{args.subset} -> {val_dir}", file=sys.stderr)
    reusable = not args.rescore and same_method(val_dir, _method(args))
    # figures earlier validate runs of VAL_DIR recorded (this run is one of them, with none yet)
    recorded = {r["epoch"]: r for r in results_from_store(watcher.store, val_dir)} \
        if reusable and watcher.store is not None else {}
    # once VAL_DIR's scores are made the way this run makes them (method.yml says so), params.yml
    # is weighed as it is on disk; before, against this run's own best
    trusted = reusable
    while True:
        if stop.requested:
            raise Interrupted(stop.name)
        snap = watcher.poll()
        train_id = snap.train_run["id"] if snap.train_run else (train_run or {}).get("id")
        todo = sorted(e for e in snap.checkpoints if e not in validated and _in_range(e, args))
        if todo:
            epoch = todo[0] if args.chronological else todo[-1]
            result = reused_result(val_dir, epoch, snap.checkpoints[epoch], trials, recorded.get(epoch)) \
                if reusable else None
            scored = result is None
            if scored:
                result = validate_epoch(args, snap.checkpoints[epoch], epoch, val_dir, trials, files,
                                        device, stop)
            validated.add(epoch)
            writer.add_validation(run_id, train_run_id=train_id, epoch=epoch,
                                  eer=result["equal_error_rate"], eer_low=result["eer_ci_95"][0],
                                  eer_high=result["eer_ci_95"][1], mindcf_01=result["min_dcf_0.01"],
                                  mindcf_005=result["min_dcf_0.05"], threshold=result["threshold"],
                                  n_trials=result["n_trials"], scores_path=result["scores_path"])
            current = _params_or_none(val_dir) if trusted else best
            # epochs scored before are already weighed in params.yml (or picked by hand over)
            if (scored or current is None) and _lower(result, current):
                best = result
                write_params(val_dir, best)
                writer.set_best(run_id, epoch=epoch, eer=result["equal_error_rate"], how="lowest-eer")
            if scored and not trusted:
                write_method(val_dir, _method(args))
                trusted = True
            writer.heartbeat(run_id, epoch=epoch, progress=len(validated))
            continue
        reached = args.to is not None and any(e >= args.to for e in snap.checkpoints)
        # started together with train, we may look before it has recorded its run: wait for it
        starting = snap.source == "files" and not snap.checkpoints and time.monotonic() - began < STARTUP_GRACE
        if (snap.ended and not snap.pending and not starting) or reached:
            if not validated:
                print("validate: no checkpoint to evaluate in range", file=sys.stderr)
            return
        now = time.monotonic()
        if now - beat >= HEARTBEAT_INTERVAL:
            writer.heartbeat(run_id)
            if watcher.store is not None:
                # a training process that died without saying so becomes `lost`: we stop then
                watcher.store.mark_lost()
            beat = now
        time.sleep(args.poll)


def _method(args: argparse.Namespace) -> dict[str, Any]:
    """How file embeddings are made: scores made another way are not comparable."""
    return {"embedding": "whole-file" if args.whole_file else "windows", "hop": VALIDATION_STEP}


def same_method(val_dir: Path, method: dict[str, Any]) -> bool:
    """Whether the scores already in VAL_DIR were made the way this run makes them."""
    try:
        return yaml.safe_load((val_dir / METHOD).read_text()) == method
    except (OSError, yaml.YAMLError):
        return False


def write_method(val_dir: Path, method: dict[str, Any]) -> None:
    atomic_write_text(val_dir / METHOD, yaml.safe_dump(method, sort_keys=True))


def reused_result(val_dir: Path, epoch: int, checkpoint: Path, trials: list[tuple[int, str, str]],
                  recorded: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The result of an epoch an earlier validate run of VAL_DIR already scored, or None.

    Reused only when its scores file is newer than the checkpoint and scores exactly these
    trials; a validation resumed beside a resumed training run then embeds only new epochs.
    The figures are the ``recorded`` ones (the database's) when they are complete, else they
    are computed again from the scores file (its bootstrap takes about 2 s for 37,720 trials).
    """
    path = scores_path(val_dir, epoch)
    try:
        if path.stat().st_mtime < checkpoint.stat().st_mtime:
            return None
        with open(path) as f:
            pairs = [tuple(line.split()[2:4]) for line in f if line.strip()]
        if pairs != [(u1, u2) for _, u1, u2 in trials]:
            return None
        complete = recorded is not None and recorded.get("eer_ci_95") is not None and all(
            recorded.get(k) is not None for k in ("min_dcf_0.01", "min_dcf_0.05", "threshold"))
        result = dict(recorded) if complete else result_from_scores(epoch, *read_scores(path))
    except (OSError, ValueError, SpkembError):
        return None
    result["n_trials"] = len(pairs)
    result["scores_path"] = str(path)
    print(f"epoch {epoch}: EER {100 * result['equal_error_rate']:.2f} % (scored before, in {path}; "
          "--rescore to embed again)", file=sys.stderr, flush=True)
    return result


def _lower(result: dict[str, Any], current: dict[str, Any] | None) -> bool:
    """Whether params.yml should move to this epoch: a lower EER (the earlier epoch on a tie)
    than the epoch it names now (``pick`` may have changed it meanwhile), or none yet."""
    return current is None or (result["equal_error_rate"], result["epoch"]) < (
        current["equal_error_rate"], current["epoch"])


def _params_or_none(val_dir: Path) -> dict[str, Any] | None:
    """params.yml as it is now; None when absent or damaged (the validation then rewrites it)."""
    try:
        return read_params(val_dir)
    except SpkembError as e:
        print(f"validate: {e}", file=sys.stderr, flush=True)
        return None


def validate_epoch(args: argparse.Namespace, checkpoint: Path, epoch: int, val_dir: Path,
                   trials: list[tuple[int, str, str]], files: dict[str, str], device: Any,
                   stop: StopRequest) -> dict[str, Any]:
    """Embed, score, write the scores file; returns the epoch's result (selection keys)."""
    started = time.monotonic()
    model, config, _ = load_model(checkpoint, device)
    sample_rate = config.feature_extraction.sample_rate
    with progress_bar(MofNCompleteColumn()) as progress:
        task = progress.add_task(f"epoch {epoch}: embedding", total=len(files))
        embeddings = embed_files(model, files, duration=config.task.duration, sample_rate=sample_rate,
                                 batch=args.batch, whole_file=args.whole_file, progress=progress,
                                 task=task, stop=stop)
    scores = cosine_scores(embeddings, trials)
    path = write_scores(scores_path(val_dir, epoch),
                        ((ref, s, u1, u2) for (ref, u1, u2), s in zip(trials, scores)))
    # the figures come from the scores as written (six decimals), so that the file alone gives
    # them back: `pick`, a later validation reusing this epoch, anyone with the file
    result = result_from_scores(epoch, *read_scores(path))
    result["scores_path"] = str(path)
    low, high = result["eer_ci_95"]
    print(f"epoch {epoch}: EER {100 * result['equal_error_rate']:.2f} % "
          f"[95 % CI {100 * low:.2f}, {100 * high:.2f}]  minDCF(0.01) {result['min_dcf_0.01']:.3f}  "
          f"minDCF(0.05) {result['min_dcf_0.05']:.3f}  ({len(trials)} trials, "
          f"{math.ceil(time.monotonic() - started)} s)", file=sys.stderr, flush=True)
    return result
