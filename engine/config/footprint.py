"""The memory a config needs to train, roughly, and whether the machine has it.

A size the spec table accepts one by one (per_fold 10000, per_label 1000, duration 60) can
still make a batch no machine holds: without this estimate such a config starts, lists its data
and then dies in the allocator (a traceback, or the kernel's OOM killer ending it unrecorded).
The estimate counts what dominates, from the config alone (torch-free, so that ``config check``
can make it): the network's parameters with their gradients and SGD momentum, the activations
one batch keeps for the backward pass, the batches the loader prepares ahead, and, once known,
the classifier (one row per training class) and the training index. It is an order of
magnitude, not an allocator's count: it refuses what cannot fit, not what is tight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.config.schema import Config

GIB = 1024 ** 3
FLOAT = 4  # bytes: the network trains in float32 (autocast's bf16 halves some activations on a GPU)
#: SincNet's layers (engine.model.sincnet defaults, pyannote.audio 1.x): channels, kernel, max-pool
SINC_LAYERS = ((80, 251, 3), (60, 5, 3), (60, 5, 3))
#: kernel sizes x dilations of the x-vector's frame layers (engine.model.tdnn.XVectorTDNN.CONTEXTS)
TDNN_CONTEXTS = ((5, 1), (3, 2), (3, 3), (1, 1), (1, 1))
#: width of the x-vector's last frame layer at hidden_dim 512 (engine.model.tdnn.pooled_width)
POOLED_WIDTH_AT_512 = 1500
#: batches each loader worker prepares ahead (engine.data.batch_loader.make_loader's prefetch)
PREFETCH = 4


@dataclass(frozen=True)
class Footprint:
    """Bytes a training process needs, by what needs them."""

    weights: int        # parameters, gradients and SGD momentum (classifier included once known)
    activations: int    # what one batch's forward pass keeps for the backward pass
    batches: int        # waveforms of the batches loaded ahead by the workers, and the one in use
    index: int = 0      # the training index (speech segments and file names), once built
    chunks: int = 0     # chunks in a batch (this process's share)

    @property
    def device(self) -> int:
        """What sits on the training device (the GPU under cuda)."""
        return self.weights + self.activations

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.batches + self.index

    def describe(self) -> str:
        parts = [f"model and optimizer {_gib(self.weights)}",
                 f"activations of a batch of {self.chunks:,} chunks {_gib(self.activations)}",
                 f"batches loaded ahead {_gib(self.batches)}"]
        if self.index:
            parts.append(f"training index {_gib(self.index)}")
        return f"about {_gib(self.total)} ({', '.join(parts)})"


def training_footprint(config: Config, *, classes: int = 0, index_bytes: int = 0, workers: int = 2,
                       world: int = 1) -> Footprint:
    """The estimate for ``config``, with ``classes`` training classes (0: not known yet)."""
    task, arch = config.task, config.architecture
    samples = max(1, int(round(task.duration * config.feature_extraction.sample_rate)))
    chunks = max(1, task.batch_size // world)
    hidden, embedding = arch.tdnn.hidden_dim, arch.tdnn.embedding_dim
    pooled = round(hidden * POOLED_WIDTH_AT_512 / 512)

    # activations of one chunk, in floats: each SincNet block keeps its convolution's output
    # (and |.|), then the pooled, normalised and activated frames; each TDNN layer its
    # convolution's output and its ReLU
    kept, frames, params = 2 * samples, samples, 0
    channels_in = 1
    for (channels, kernel, pool), stride in zip(SINC_LAYERS, arch.sincnet.stride, strict=True):
        conv = max(0, (frames - kernel) // stride + 1)
        frames = conv // pool
        kept += channels * (2 * conv + 5 * frames)
        params += channels * (channels_in * kernel + 3)
        channels_in = channels
    for i, (kernel, dilation) in enumerate(TDNN_CONTEXTS):
        width = pooled if i == len(TDNN_CONTEXTS) - 1 else hidden
        frames = max(1, frames - dilation * (kernel - 1))
        kept += 2 * width * frames
        params += width * (channels_in * kernel + 2)  # weights, bias and weight norm's gain
        channels_in = width
    params += 2 * pooled * embedding + embedding      # segment6
    params += classes * embedding                    # the loss's classifier
    # parameters, their gradients and SGD's momentum buffer
    weights = 3 * FLOAT * params
    activations = FLOAT * kept * chunks
    # the workers' prefetched batches and the one training uses (pinned copies aside)
    batches = FLOAT * samples * chunks * (max(workers, 0) * PREFETCH + 1)
    return Footprint(weights=weights, activations=activations, batches=batches, index=index_bytes,
                     chunks=chunks)


@dataclass(frozen=True)
class Memory:
    """A machine's memory: ``available`` to a new allocation now, of ``total``, and how each is named."""

    available: int
    total: int
    available_as: str = "of memory available here (MemAvailable)"
    total_as: str = "of memory of this machine (MemTotal)"


def host_memory(meminfo: Path = Path("/proc/meminfo")) -> Memory | None:
    """This machine's memory from /proc/meminfo; None where there is none (not Linux)."""
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:
        return None
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        words = value.split()
        if words and words[0].isdigit():
            fields[name] = int(words[0]) * 1024  # kB
    if "MemTotal" not in fields:
        return None
    total = fields["MemTotal"]
    return Memory(available=fields.get("MemAvailable", total), total=total)


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is installed (its driver lists one): ``config check``, torch-free,
    cannot tell its memory, so it leaves what sits on the GPU to ``train``'s check."""
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        return gpus.is_dir() and any(gpus.iterdir())
    except OSError:
        return False


def refusal(footprint: Footprint, need: int, memory: Memory, *, available: bool) -> str | None:
    """Why ``need`` bytes of ``footprint`` cannot fit in ``memory``, or None when they can."""
    have = memory.available if available else memory.total
    if need <= have:
        return None
    which = memory.available_as if available else memory.total_as
    return (f"training this config needs {footprint.describe()}, more than the {_gib(have)} {which}: "
            "lower task per_fold, per_label or duration (or the architecture's hidden_dim/embedding_dim)")


def _gib(n: int) -> str:
    if n >= 0.1 * GIB:
        return f"{n / GIB:,.1f} GiB"
    return f"{max(n, 0) / 1024 ** 2:,.0f} MiB"

