"""Refuse, before the first step, a config whose training cannot fit in the machine's memory.

The estimate is :mod:`engine.config.footprint`'s; here it meets the device: a GPU's free memory
for what sits on it (network, optimizer, activations), the host's MemAvailable for the rest
(or for everything on the CPU).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.config import Config
from engine.config.footprint import Memory, host_memory, refusal, training_footprint
from engine.data.speech_index import SpeakerIndex
from engine.errors import TrainingError


def device_memory(device: torch.device) -> Memory | None:
    """Free and total memory of a CUDA device; None for the CPU (the host's memory is it)."""
    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    return Memory(available=free, total=total, available_as=f"free on {device}", total_as=f"of {device}")


def index_bytes(index: SpeakerIndex) -> int:
    """Bytes of the training index's columns (segments, speakers, file names)."""
    arrays = [index.offsets, index.seg_file, index.seg_start, index.seg_span, index.cumulative, index.speech]
    for column in (index.paths, index.uris):
        arrays += [getattr(column, "data", np.empty(0)), getattr(column, "offsets", np.empty(0))]
    return int(sum(a.nbytes for a in arrays))


def check_memory(config: Config, device: torch.device, *, workers: int, world: int = 1, classes: int = 0,
                 index: SpeakerIndex | None = None) -> None:
    """Raise TrainingError when training ``config`` on ``device`` needs more memory than there is."""
    host, gpu = host_memory(), device_memory(device)
    footprint = training_footprint(config, classes=classes, workers=workers, world=world,
                                   index_bytes=index_bytes(index) if index is not None else 0)
    # the index is already in memory when it is known: only what is still to come must fit
    checks = [(gpu, footprint.device), (host, footprint.batches)] if gpu is not None else \
             [(host, footprint.total - footprint.index)]
    for memory, need in checks:
        reason = refusal(footprint, need, memory, available=True) if memory is not None else None
        if reason is not None:
            raise TrainingError(reason)
