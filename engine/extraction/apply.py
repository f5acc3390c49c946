"""``spkemb-engine apply``: sliding-window embeddings of every file of a protocol subset.

Loads the epoch ``VAL_DIR/params.yml`` points at (or ``--epoch``: a number, or averaged
weights such as ``avg-top5``, written to ``apply/avg-top5/``), slides a window of the
task's ``duration`` with a hop of ``step × duration`` over each file of ``PROTOCOL.{subset}()``
and writes ``VAL_DIR/apply/{epoch}/{uri}.npy`` (one row per window, nested uris as folders)
with ``metadata.yml``. The folder is named from the settings that make the extraction
(``engine.layout.extraction_folder``): ``apply/4`` for the exact torch path at the default
step, ``apply/4-shared``, ``apply/4-onnxruntime-step0.5`` otherwise; the same settings again
replace the files in place (said on stderr), or, where a stopped apply left the subset unfinished,
keep the files it wrote and write the others; a folder whose metadata.yml says other settings
is refused, never overwritten::

    start: 0.0            # first window start, seconds
    duration: 2.0         # window, seconds (exactly window samples / sample_rate)
    step: 0.2             # hop, seconds (exactly hop samples / sample_rate)
    dimension: 512
    epoch: 221
    checkpoint: .../weights/0221.pt
    checkpoint_sha256: ...
    mode: exact           # or shared (--shared), onnxruntime (--runtime onnxruntime)
    sample_rate: 16000
    protocol: ...         # the latest apply into the folder
    subset: test
    subsets:              # every protocol subset extracted into the folder, the latest last
    - {protocol: ..., subset: development}
    - {protocol: ..., subset: test}

Window ``i`` covers ``[i × step, i × step + duration]``; a file of ``n`` samples has
``(n - window) // hop + 1`` windows (the last ``< step`` seconds start no window), and a file
no longer than one window has exactly one row: the embedding of the whole file (its nominal
window still reads ``[0, duration]``). Files are read in crops, one batch of windows (or one
block of frames) at a time, so memory does not grow with a file's length.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from engine.atomic import atomic_write, atomic_write_text, sweep_dead_temps
from engine.console import out, say
from engine.data.audio import num_samples
from engine.data.audio_checks import check_files
from engine.data.protocols import load_protocol, subset_files
from engine.errors import CheckpointError, SpkembError
from engine.extraction.folder_checks import (
    extracted_whole,
    found_metadata,
    other_audio,
    replacing_extraction,
    subsets_with,
)
from engine.inference.network import load_network
from engine.inference.windows import FileSignal, embed, window_starts
from engine.layout import PARAMS, CheckpointName, ExtractionDir
from engine.process.checkpoints import Trust, file_sha256
from engine.process.distributed import pick_device
from engine.process.lifecycle import open_run
from engine.process.recording import Recorder
from engine.process.stopping import Interrupted, StopRequest
from engine.records import Extraction, checkpoint_title
from engine.requests import ApplyRequest
from engine.validation.params import chosen_checkpoint
from engine.validation.val_dir import given_val_dir

if TYPE_CHECKING:  # imported when --diarize asks for it (the diarization maths is not small)
    from engine.extraction.diarization_check import PreparedCheck


class ReadReach:
    """A file's signal that says how far into the file the audio embedded so far reaches: apply's
    progress inside a file (an AMI meeting is minutes of CPU). Every path reads its audio in order,
    a batch of windows or a block of frames at a time, and embeds what it read before it reads on:
    a read means the audio up to the end of the read before it is embedded."""

    def __init__(self, signal: FileSignal, reached: Callable[[int], None]) -> None:
        self.signal, self.reached = signal, reached
        self._read_to = 0

    @property
    def n_samples(self) -> int:
        return self.signal.n_samples

    def read(self, start: int, n: int) -> np.ndarray:
        self.reached(self._read_to)
        self._read_to = max(self._read_to, min(start + n, self.signal.n_samples))
        return self.signal.read(start, n)


def _save(path: Path, array: np.ndarray) -> None:
    """``path`` holds all of ``array`` or is left as it was (a full disk: DiskFull, no half file; values
    that are not finite: refused, see :func:`_require_finite`)."""
    _require_finite(array, path)
    atomic_write(path, lambda f: np.save(f, array), mode="wb")


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
    #: the checkpoint's sha256, when reading the network already hashed it
    checkpoint_sha256: str | None = None

    def last_epoch(self, checkpoint: Path, trust: Trust | None = None) -> int:
        """The epoch ``checkpoint`` was saved at: for averaged weights, the last epoch they average."""
        if self.saved_epoch is not None:
            return self.saved_epoch
        from engine.process.checkpoints import load_checkpoint

        return int(load_checkpoint(checkpoint, trust=trust).get("epoch") or 0)


def _extractor(args: ApplyRequest, mode: str, checkpoint: Path, epoch: CheckpointName, trust: Trust) -> Extractor:
    """The torch network of ``checkpoint`` on the exact or shared path, or its ONNX export in onnxruntime
    (the checkpoint checked against its row by ``trust``)."""
    if mode == "onnxruntime":
        from engine.extraction.onnx_runtime import onnx_embedder

        ort = onnx_embedder(checkpoint, epoch, args.model, device=args.device or "cpu", trust=trust)
        return Extractor(mode, f"{args.device or 'cpu'} (onnxruntime)", ort.sample_rate, ort.duration,
                         ort.dimension, lambda signal, starts, window: ort.embed(signal, starts, window, args.batch),
                         checkpoint_sha256=ort.metadata["spkemb.checkpoint_sha256"])
    device = pick_device(args.device)
    network = load_network(checkpoint, device, trust=trust)
    model, config = network.model, network.config
    if mode == "shared" and config.architecture.name != "SincTDNN":
        raise SpkembError(f"--shared pools frames of SincTDNN only; {config.architecture.name} normalises each "
                          "window's "
                          "filterbanks and pools it as a whole, so it cannot be shared exactly: drop --shared")
    return Extractor(mode, str(device), config.feature_extraction.sample_rate, config.task.duration,
                     int(model.dimension),
                     lambda signal, starts, window: embed(model, signal, starts, window, mode=mode, batch=args.batch),
                     saved_epoch=int(network.checkpoint.payload.get("epoch") or 0),
                     checkpoint_sha256=network.checkpoint.sha256)


def cmd_apply(args: ApplyRequest) -> int:
    """``spkemb-engine apply``: see the module docstring."""
    val = given_val_dir(args.val_dir)
    mode = args.mode
    epoch = chosen_checkpoint(val, args.epoch)
    checkpoint = val.training.checkpoint(epoch)
    protocol = load_protocol(args.protocol, args.database)
    files = subset_files(protocol, args.subset)
    extraction = val.extraction(epoch, mode=mode, step=args.step)
    # {uri}.npy of every file: a uri that would leave the folder is refused before any work
    source = f"protocol {args.protocol} ({args.subset})"
    outputs = [extraction.embeddings(str(f["uri"]), source=source) for f in files]
    # a diarization check that cannot be made is refused before the network is read and hours of extraction
    diarization = _diarization_check(args, extraction, protocol) if args.diarize else None
    trust = Trust(args.db, accept_changed=args.trust_checkpoint)
    extractor = _extractor(args, mode, checkpoint, epoch, trust)
    # averaged weights (avg-top5) are recorded by name, with the last epoch they average
    named = epoch if isinstance(epoch, str) else None
    last_epoch = epoch if isinstance(epoch, int) else extractor.last_epoch(checkpoint, trust)
    window = num_samples(extractor.duration, extractor.sample_rate)
    hop = max(1, int(round(args.step * window)))
    found = found_metadata(extraction)  # read once: with each uri's audio it can be a large file
    sha256 = extractor.checkpoint_sha256 or file_sha256(checkpoint)
    replacing = replacing_extraction(extraction, found, epoch, extractor.mode, hop / extractor.sample_rate,
                                     window / extractor.sample_rate, sha256)
    other_audio(extraction, files, args.protocol, found)

    recorder = open_run("apply", extraction, args, device=str(extractor.device), target_epoch=last_epoch)
    parent_id = recorder.parent.id if recorder.parent is not None else None
    recorder.refuse(check_files(str(f["audio"]) for f in files), f"{args.protocol} {args.subset}")
    # a stopped apply of the same weights and settings is finished: what it wrote is kept
    unfinished = replacing and not extracted_whole(found, args.protocol, args.subset)
    kept = {p for p in outputs if p.exists()} if unfinished else set()
    if kept:
        say(f"apply: finishing the stopped extraction in {extraction.root} (same checkpoint, mode and step): "
            f"{len(kept)} of the {len(outputs)} files are there, {len(outputs) - len(kept)} to write")
    elif replacing and any(path.exists() for path in outputs):
        # the same settings, files already there: replaced one by one (another subset's stay)
        say(f"apply: replacing the extraction in {extraction.root} (same checkpoint, mode and step)")
    metadata = _metadata(args, extractor, epoch, checkpoint, sha256, window, hop, files, found)
    # the subset is listed once its files are written: a failed or stopped apply did not extract it
    _write_metadata(extraction, {**metadata, "subsets": metadata["subsets"][:-1]})
    for folder in dict.fromkeys([extraction.root, *(path.parent for path in outputs)]):  # nested uris: folders
        sweep_dead_temps(folder)  # a killed apply's half-written embeddings

    stop = StopRequest().install()
    with recorder.ended(stop):
        todo = [(f, path) for f, path in zip(files, outputs, strict=True) if path not in kept]
        audio_seconds, wall = _extract(extractor, todo, len(kept), window, hop, recorder, stop,
                                       f"apply {checkpoint_title(epoch)} ({extractor.mode})", extraction.root)
        _write_metadata(extraction, metadata)
        rate = extractor.sample_rate
        recorder.extraction(Extraction(
            epoch=last_epoch, checkpoint_name=named, protocol=args.protocol, subset=args.subset,
            out_dir=extraction.root, mode=extractor.mode, step=hop / rate, duration=window / rate,
            files=len(files), audio_seconds=audio_seconds, wall_seconds=wall, checkpoint=checkpoint.resolve(),
            checkpoint_sha256=sha256, validate_run_id=parent_id,
            chosen_by=PARAMS if args.epoch is None else "--epoch"), device=extractor.device, kept=len(kept))
        if diarization is not None:
            _diarize(diarization, recorder)
    return 0


def _metadata(args: ApplyRequest, extractor: Extractor, epoch: CheckpointName, checkpoint: Path, sha256: str,
              window: int, hop: int, files: list, found: dict[str, Any]) -> dict[str, Any]:
    """metadata.yml of the extraction once done: the sliding window, where the weights came from, the audio
    of each uri and the protocol subsets extracted (this one last), over what ``found`` held."""
    rate = extractor.sample_rate
    earlier = found.get("audio")
    audio = ({str(uri): path for uri, path in earlier.items() if isinstance(path, str)}
             if isinstance(earlier, dict) else {})
    audio.update({str(f["uri"]): str(f["audio"]) for f in files})
    return {"start": 0.0, "duration": window / rate, "step": hop / rate,
            "dimension": extractor.dimension, "epoch": epoch, "checkpoint": str(checkpoint.resolve()),
            "checkpoint_sha256": sha256, "mode": extractor.mode, "sample_rate": rate,
            "protocol": args.protocol, "subset": args.subset,
            "subsets": subsets_with(found, args.protocol, args.subset), "audio": audio}


def _write_metadata(extraction: ExtractionDir, metadata: dict[str, Any]) -> None:
    extraction.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(extraction.metadata, yaml.safe_dump(metadata, sort_keys=False))


def _extract(extractor: Extractor, todo: list[tuple[Any, Path]], kept: int, window: int, hop: int,
             recorder: Recorder, stop: StopRequest, label: str, folder: Path) -> tuple[float, float]:
    """Embed the windows of each file of ``todo`` into its ``.npy`` (``kept`` files of the subset are there
    already); (seconds of audio, seconds of wall clock). Stopped (SIGTERM, Ctrl-C), it says what the
    folder lacks and how to finish it."""
    rate = extractor.sample_rate
    started, audio_seconds = time.monotonic(), 0.0
    signals = [(path, FileSignal(str(f["audio"]), rate)) for f, path in todo]
    total, count = sum(s.n_samples for _, s in signals) / rate, kept + len(signals)
    recorder.heartbeat(progress=kept, progress_total=count)
    with recorder.progress.phase(label, total, "s of audio", said=False) as phase:
        for i, (path, signal) in enumerate(signals, start=kept):
            shown = 0  # samples of this file counted in the phase

            def reached(sample: int, files: str = f"{i}/{count} files") -> None:
                nonlocal shown
                if sample > shown:
                    phase.advance((sample - shown) / rate, files)
                    shown = sample

            try:
                # a stop ends the file under way at once (an AMI meeting is minutes of CPU): its
                # embeddings are dropped, never half written
                with stop.immediately():
                    rows = extractor.embed(ReadReach(signal, reached), window_starts(signal.n_samples, window, hop),
                                           window)
            except Interrupted:
                recorder.say(f"apply: stopped after writing {i} of the {count} files into {folder}: run "
                             "the same apply again to finish it (the files written are kept)")
                raise
            _save(path, rows)
            audio_seconds += signal.n_samples / rate
            phase.advance((signal.n_samples - shown) / rate, f"{i + 1}/{count} files")
            recorder.heartbeat(progress=i + 1, progress_total=count)
    return audio_seconds, time.monotonic() - started


def _require_finite(rows: np.ndarray, path: Path) -> None:
    """Refuse embeddings that are not finite before they reach a file: a checkpoint whose weights give
    NaN (a negative batch-norm variance, say) wrote NaN into every file, and apply said completed."""
    bad = int(np.count_nonzero(~np.isfinite(rows).all(axis=1)))
    if bad:
        raise CheckpointError(f"{bad} of the {len(rows)} windows of {path} embed to values that are not finite "
                              "(NaN or infinite), which no file may hold: the checkpoint's weights are damaged or "
                              "edited, or the audio is; nothing of this file was written (the files before it are "
                              "kept): validate the checkpoint, or train again")


def _diarization_check(args: ApplyRequest, extraction: ExtractionDir, protocol: Any) -> PreparedCheck:
    """``apply --diarize``: the check of what ``extraction`` will hold, read and checked now (on the
    protocol apply loaded)."""
    from engine.extraction.diarization_check import prepare_check, request_from_args

    return prepare_check(request_from_args(args, extraction), protocol)


def _diarize(check: PreparedCheck, recorder: Recorder) -> None:
    """The diarization check of what was just extracted, recorded on this run."""
    from engine.extraction.diarization_check import run_check

    report = run_check(check)
    for line in report.lines():
        out(line)
    recorder.diarization(**report.record())
