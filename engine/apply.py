"""``spkemb-engine apply``: sliding-window embeddings of every file of a protocol subset.

Loads the epoch ``VAL_DIR/params.yml`` points at (or ``--epoch``), slides a window of the
task's ``duration`` with a hop of ``step × duration`` over each file of ``PROTOCOL.{subset}()``
and writes ``VAL_DIR/apply/{epoch}/{uri}.npy`` (one row per window, nested uris as folders)
with ``metadata.yml``::

    start: 0.0            # first window start, seconds
    duration: 2.0         # window, seconds (exactly window samples / sample_rate)
    step: 0.2             # hop, seconds (exactly hop samples / sample_rate)
    dimension: 512
    epoch: 221
    checkpoint: .../weights/0221.pt
    checkpoint_sha256: ...
    mode: exact           # or shared (--shared)
    sample_rate: 16000

Window ``i`` covers ``[i × step, i × step + duration]``; a file of ``n`` samples has
``(n - window) // hop + 1`` windows (the last ``< step`` seconds start no window), and a file
no longer than one window has exactly one row: the embedding of the whole file (its nominal
window still reads ``[0, duration]``). Files are read in crops, one batch of windows (or one
block of frames) at a time, so memory does not grow with a file's length.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from engine.audio import check_files, num_samples
from engine.checkpoints import epoch_path, file_sha256
from engine.distributed import pick_device
from engine.embed import FileSignal, embed, load_model, progress_bar, window_starts
from engine.errors import SpkembError
from engine.precomputed import embedding_path
from engine.protocols import load_protocol, subset_files
from engine.recording import recorded_end, refuse_problems
from engine.atomic import atomic_write_text
from engine.selection import read_params
from engine.stopping import Interrupted, StopRequest
from engine.store import recorder


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def resolve_epoch(val_dir: Path, epoch: int | None) -> int:
    """``--epoch``, else the epoch of ``VAL_DIR/params.yml``."""
    if epoch is not None:
        return epoch
    params = read_params(val_dir)
    if params is None:
        raise SpkembError(f"{val_dir / 'params.yml'} does not exist: validate first "
                          "(`spkemb-engine validate TRN_DIR PROTOCOL`), or pass --epoch")
    return int(params["epoch"])


def cmd_apply(args: argparse.Namespace) -> int:
    """``spkemb-engine apply``: see the module docstring."""
    val_dir = Path(args.val_dir)
    if not val_dir.is_dir():
        raise SpkembError(f"{val_dir} is not a directory: pass the VAL_DIR that `spkemb-engine "
                          "validate` writes (TRN_DIR/validate_equal_error_rate/PROTOCOL.SUBSET)")
    if not 0.0 < args.step:
        raise SpkembError(f"--step {args.step}: the window step is a fraction of the window "
                          "duration and must be > 0 (e.g. 0.1)")
    epoch = resolve_epoch(val_dir, args.epoch)
    checkpoint = epoch_path(val_dir.parent.parent, epoch)
    device = pick_device(args.device)
    model, config, _ = load_model(checkpoint, device)
    files = subset_files(load_protocol(args.protocol, args.database), args.subset)
    mode = "shared" if args.shared else "exact"

    sample_rate = config.feature_extraction.sample_rate
    window = num_samples(config.task.duration, sample_rate)
    hop = max(1, int(round(args.step * window)))
    out_dir = val_dir / "apply" / str(epoch)

    writer = recorder(args.db, events_path=val_dir / "apply" / "events.jsonl")
    parents = writer.find_runs(out_dir=val_dir, kind="validate") if hasattr(writer, "find_runs") else []
    run_id = writer.create_run(kind="apply", exp_dir=val_dir.parent.parent.parent.parent, out_dir=out_dir,
                               protocol=args.protocol, subset=args.subset, config=None,
                               command=list(sys.argv), device=str(device), target_epoch=epoch,
                               parent_id=parents[0]["id"] if parents else None,
                               name=f"apply {args.protocol}.{args.subset}")
    refuse_problems(writer, run_id, check_files(str(f["audio"]) for f in files),
                    f"{args.protocol} {args.subset}")

    metadata = {"start": 0.0, "duration": window / sample_rate, "step": hop / sample_rate,
                "dimension": int(model.dimension), "epoch": epoch, "checkpoint": str(checkpoint.resolve()),
                "checkpoint_sha256": file_sha256(checkpoint), "mode": mode, "sample_rate": sample_rate,
                "protocol": args.protocol, "subset": args.subset}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "metadata.yml", yaml.safe_dump(metadata, sort_keys=False))

    stop = StopRequest().install()
    started, audio_seconds = time.monotonic(), 0.0
    with recorded_end(writer, run_id, stop):
        signals = [(f["uri"], FileSignal(str(f["audio"]), sample_rate)) for f in files]
        total = sum(s.n_samples for _, s in signals) / sample_rate
        with progress_bar() as progress:
            task = progress.add_task(f"apply epoch {epoch} ({mode})", total=total)
            for i, (uri, signal) in enumerate(signals):
                if stop.requested:
                    raise Interrupted(stop.name)
                starts = window_starts(signal.n_samples, window, hop)
                rows = embed(model, signal, starts, window, mode=mode, batch=args.batch)
                _save(embedding_path(out_dir, uri), rows)
                audio_seconds += signal.n_samples / sample_rate
                progress.update(task, completed=audio_seconds)
                writer.heartbeat(run_id, progress=i + 1, progress_total=len(signals))
        wall = time.monotonic() - started
        writer.add_extraction(run_id, epoch=epoch, protocol=args.protocol, subset=args.subset,
                              out_dir=out_dir, mode=mode, step=hop / sample_rate,
                              duration=window / sample_rate, files=len(signals),
                              audio_seconds=audio_seconds, wall_seconds=wall)
        print(f"apply: {len(signals)} files, {audio_seconds:.1f} s of audio in {wall:.1f} s: "
              f"{audio_seconds / max(wall, 1e-9):.1f}x real time ({mode}, {device}) -> {out_dir}",
              file=sys.stderr)
    return 0
