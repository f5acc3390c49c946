"""File embeddings of a trial list and their cosine scores (the work of ``validate`` per checkpoint).

A file's embedding is the mean of the embeddings of ``task.duration``-long windows sliding
with a hop of ``duration / 4`` (pyannote.audio 1.x: ``step=0.25`` in
``_validate_epoch_verification``), computed by the exact path of ``engine.inference.windows``; a file
shorter than a window is one window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.data.audio import num_samples, read_file
from engine.errors import CheckpointError
from engine.inference.windows import ArraySignal, embed_exact, embed_short, window_starts
from engine.process.stopping import Interrupted, StopRequest
from engine.progress import Phase

#: hop between validation windows, as a fraction of the window (pyannote.audio 1.x)
VALIDATION_STEP = 0.25


def embed_files(model: Any, files: dict[str, str], *, duration: float, sample_rate: int,
                batch: int, whole_file: bool, phase: Phase | None = None,
                stop: StopRequest | None = None) -> dict[str, np.ndarray]:
    """One embedding per file: the mean over its sliding windows (or one pass, ``whole_file``).

    Files are packed one after the other into one signal (each starting on a multiple of the
    first convolution's stride times its pooling, so that they share its phases) until a batch
    of windows is full, and embedded together by ``engine.inference.windows.embed_exact``.
    """
    window = num_samples(duration, sample_rate)
    hop = max(1, num_samples(VALIDATION_STEP * duration, sample_rate))
    align = 1  # a filterbank backbone runs each window through the whole network: no phase to share
    if hasattr(model, "sincnet"):
        block = model.sincnet.blocks[0]
        align = block.conv.stride * block.pool.kernel_size
    out: dict[str, np.ndarray] = {}
    pending: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        offsets, starts, owners, pieces, at = [], [], [], [], 0
        for i, (_uri, x) in enumerate(pending):
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
        if phase is not None:
            phase.advance()
    if pending:
        flush()
    return out


def cosine_scores(embeddings: dict[str, np.ndarray], trials: list[tuple[int, str, str]]) -> np.ndarray:
    """Cosine similarity of the two file embeddings of each trial."""
    a = np.stack([embeddings[u1] for _, u1, _ in trials])
    b = np.stack([embeddings[u2] for _, _, u2 in trials])
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def require_finite(embeddings: dict[str, np.ndarray], checkpoint: Path) -> None:
    """Refuse the embeddings of a network that gives NaN or infinity: its scores file would hold ``nan``
    and be blamed as the damaged file, and ``delete it and validate again`` made the same one."""
    broken = [uri for uri, e in embeddings.items() if not np.isfinite(e).all()]
    if broken:
        raise CheckpointError(f"checkpoint {checkpoint} gives embeddings that are not finite ({broken[0]} and "
                              f"{len(broken) - 1} more of {len(embeddings)} files): its weights are damaged or "
                              "edited (a negative batch-norm variance, say); nothing was scored: validate another "
                              "checkpoint, or train again")
