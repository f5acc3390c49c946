"""``spkemb-engine apply``: sliding-window embeddings of every file of a protocol subset.

Loads the epoch ``VAL_DIR/params.yml`` points at (or ``--epoch``: a number, or averaged
weights such as ``avg-top5``, written to ``apply/avg-top5/``), slides a window of the
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
    mode: exact           # or shared (--shared), onnxruntime (--runtime onnxruntime)
    sample_rate: 16000

Window ``i`` covers ``[i × step, i × step + duration]``; a file of ``n`` samples has
``(n - window) // hop + 1`` windows (the last ``< step`` seconds start no window), and a file
no longer than one window has exactly one row: the embedding of the whole file (its nominal
window still reads ``[0, duration]``). Files are read in crops, one batch of windows (or one
block of frames) at a time, so memory does not grow with a file's length.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from engine.data.audio import check_files, num_samples
from engine.process.checkpoints import file_sha256
from engine.console import out, say
from engine.process.distributed import pick_device
from engine.validation.embed import FileSignal, embed, load_model, progress_bar, window_starts
from engine.errors import SpkembError
from engine.layout import PARAMS, VAL_DIR_SHAPE, CheckpointName, ExtractionDir, TrainingDir, ValidationDir
from engine.data.protocols import load_protocol, subset_files
from engine.process.recording import recorded_end, refuse_problems
from engine.atomic import atomic_write_text
from engine.requests import ApplyRequest
from engine.validation.selection import read_params
from engine.process.stopping import Interrupted, StopRequest
from engine.store import recorder


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def resolve_epoch(val_dir: Path, epoch: CheckpointName | None) -> CheckpointName:
    """``--epoch``, else the epoch (or averaged weights, ``avg-top5``) of ``VAL_DIR/params.yml``."""
    if epoch is not None:
        return epoch
    params = read_params(val_dir)
    if params is None:
        raise SpkembError(f"{ValidationDir(val_dir).params} does not exist: validate first "
                          "(`spkemb-engine validate TRN_DIR PROTOCOL`), or pass --epoch")
    return params["epoch"]


def output_paths(out_dir: Path, files: list, source: str) -> list[Path]:
    """``out_dir/{uri}.npy`` of every file, refusing before any work a uri that would leave out_dir."""
    return [ExtractionDir(out_dir).embeddings(str(f["uri"]), source=source) for f in files]


@dataclass(frozen=True)
class Extractor:
    """How apply embeds: the path (exact, shared, onnxruntime), where, and the network's figures."""

    mode: str
    device: str
    sample_rate: int
    duration: float
    dimension: int
    #: (signal, window starts in samples, window in samples) -> (windows, dimension) float32
    embed: Callable[[Any, np.ndarray, int], np.ndarray]
    #: the epoch the checkpoint was saved at (an average's last epoch), when already read
    saved_epoch: int | None = None

    def last_epoch(self, checkpoint: Path) -> int:
        """The epoch ``checkpoint`` was saved at: for averaged weights, the last epoch they average."""
        if self.saved_epoch is not None:
            return self.saved_epoch
        from engine.process.checkpoints import load_checkpoint

        return int(load_checkpoint(checkpoint).get("epoch") or 0)


def _extractor(args: ApplyRequest, checkpoint: Path, epoch: CheckpointName) -> Extractor:
    """The torch network of ``checkpoint`` on the exact or shared path, or its ONNX export in onnxruntime."""
    if args.runtime == "onnxruntime":
        from engine.extraction.onnx_runtime import onnx_embedder

        if args.shared:
            raise SpkembError("--shared is a path of the torch runtime; onnxruntime runs every window "
                              "through the exported network (drop --shared, or use --runtime torch)")
        ort = onnx_embedder(checkpoint, epoch, args.model, device=args.device or "cpu")
        return Extractor("onnxruntime", f"{args.device or 'cpu'} (onnxruntime)", ort.sample_rate, ort.duration,
                         ort.dimension, lambda signal, starts, window: ort.embed(signal, starts, window, args.batch))
    if args.model is not None:
        raise SpkembError("--model is an exported network for --runtime onnxruntime; add that option, "
                          "or drop --model to use the checkpoint")
    device = pick_device(args.device)
    model, config, payload = load_model(checkpoint, device)
    mode = "shared" if args.shared else "exact"
    return Extractor(mode, str(device), config.feature_extraction.sample_rate, config.task.duration,
                     int(model.dimension),
                     lambda signal, starts, window: embed(model, signal, starts, window, mode=mode, batch=args.batch),
                     saved_epoch=int(payload.get("epoch") or 0))


def cmd_apply(args: ApplyRequest) -> int:
    """``spkemb-engine apply``: see the module docstring."""
    val_dir = Path(args.val_dir)
    if not val_dir.is_dir():
        raise SpkembError(f"{val_dir} is not a directory: pass the VAL_DIR that `spkemb-engine "
                          f"validate` writes ({VAL_DIR_SHAPE})")
    if not 0.0 < args.step:
        raise SpkembError(f"--step {args.step}: the window step is a fraction of the window "
                          "duration and must be > 0 (e.g. 0.1)")
    epoch = resolve_epoch(val_dir, args.epoch)
    checkpoint = TrainingDir(val_dir.parent.parent).checkpoint(epoch)
    extractor = _extractor(args, checkpoint, epoch)
    device, mode = extractor.device, extractor.mode
    # averaged weights (avg-top5) are recorded by name, with the last epoch they average
    named = epoch if isinstance(epoch, str) else None
    last_epoch = extractor.last_epoch(checkpoint) if named else epoch
    files = subset_files(load_protocol(args.protocol, args.database), args.subset)

    sample_rate = extractor.sample_rate
    window = num_samples(extractor.duration, sample_rate)
    hop = max(1, int(round(args.step * window)))
    out_dir = ValidationDir(val_dir).extraction(epoch).root
    outputs = output_paths(out_dir, files, f"protocol {args.protocol} ({args.subset})")

    writer = recorder(args.db, events_path=val_dir / "apply" / "events.jsonl")
    parents = writer.find_runs(out_dir=val_dir, kind="validate")
    run_id = writer.create_run(kind="apply", exp_dir=val_dir.parent.parent.parent.parent, out_dir=out_dir,
                               protocol=args.protocol, subset=args.subset, config=None,
                               command=list(sys.argv), device=str(device), target_epoch=last_epoch,
                               parent_id=parents[0]["id"] if parents else None,
                               name=f"apply {args.protocol}.{args.subset}")
    refuse_problems(writer, run_id, check_files(str(f["audio"]) for f in files),
                    f"{args.protocol} {args.subset}")
    if args.diarize:  # refused before hours of extraction, not after
        from engine.extraction.check import check_settings, request_from_args, require_references

        check_settings(request_from_args(args, val_dir).settings, args.subset)
        require_references(files, args.protocol, args.subset)

    sha256 = file_sha256(checkpoint)
    metadata = {"start": 0.0, "duration": window / sample_rate, "step": hop / sample_rate,
                "dimension": extractor.dimension, "epoch": epoch, "checkpoint": str(checkpoint.resolve()),
                "checkpoint_sha256": sha256, "mode": mode, "sample_rate": sample_rate,
                "protocol": args.protocol, "subset": args.subset}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "metadata.yml", yaml.safe_dump(metadata, sort_keys=False))

    stop = StopRequest().install()
    started, audio_seconds = time.monotonic(), 0.0
    with recorded_end(writer, run_id, stop):
        signals = [(path, FileSignal(str(f["audio"]), sample_rate)) for f, path in zip(files, outputs)]
        total = sum(s.n_samples for _, s in signals) / sample_rate
        with progress_bar() as progress:
            task = progress.add_task(f"apply epoch {epoch} ({mode})", total=total)
            for i, (path, signal) in enumerate(signals):
                if stop.requested:
                    raise Interrupted(stop.name)
                starts = window_starts(signal.n_samples, window, hop)
                rows = extractor.embed(signal, starts, window)
                _save(path, rows)
                audio_seconds += signal.n_samples / sample_rate
                progress.update(task, completed=audio_seconds)
                writer.heartbeat(run_id, progress=i + 1, progress_total=len(signals))
        wall = time.monotonic() - started
        writer.add_extraction(run_id, epoch=last_epoch, checkpoint_name=named,
                              protocol=args.protocol, subset=args.subset,
                              out_dir=out_dir, mode=mode, step=hop / sample_rate,
                              duration=window / sample_rate, files=len(signals),
                              audio_seconds=audio_seconds, wall_seconds=wall,
                              checkpoint=checkpoint.resolve(), checkpoint_sha256=sha256,
                              validate_run_id=parents[0]["id"] if parents else None,
                              chosen_by=PARAMS if args.epoch is None else "--epoch")
        say(f"apply: {len(signals)} files, {audio_seconds:.1f} s of audio in {wall:.1f} s: "
            f"{audio_seconds / max(wall, 1e-9):.1f}x real time ({mode}, {device}) -> {out_dir}")
        if args.diarize:
            _diarize(args, out_dir, writer, run_id)
    return 0


def _diarize(args: ApplyRequest, out_dir: Path, writer: object, run_id: int) -> None:
    """``apply --diarize``: the diarization check of what was just extracted, recorded on this run."""
    from engine.extraction.check import request_from_args, run_check

    report = run_check(request_from_args(args, out_dir))
    for line in report.lines():
        out(line)
    writer.add_diarization(run_id, **report.record())
