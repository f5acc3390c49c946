"""Speed perturbation: each chunk played at a factor drawn from a list, each factor a class.

As WeSpeaker (``wespeaker/dataset/processor.py`` ``speed_perturb``) and 3D-Speaker do, and
Kaldi's ``sp0.9-`` copies before them (Ko et al., "Audio augmentation for speech
recognition", Interspeech 2015): a chunk is sped up by ``f`` by reading ``f`` times as many
samples and resampling them from ``f * sample_rate`` to ``sample_rate`` (pitch moves with
the speed, as sox's ``speed`` effect), and speaker ``s`` at factor ``f`` is a training class
of its own: class ``i * n_speakers + s`` for the ``i``-th factor, so that with the factor
1.0 listed first the classes of the plain speakers keep their numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from engine.data.audio import Indexed, read_crop

#: extra input samples read on each side of the chunk, so that the resampling filter's edges
#: (about 6 zero crossings wide at these ratios, zeros beyond) never reach the kept samples
_PAD = 64
#: ... unless that context would be long (a factor whose rate has a small common divisor with
#: the sample rate): then the first milliseconds of the chunk fade in instead
_MAX_LEFT = 8 * _PAD


@contextmanager
def _one_thread() -> Iterator[None]:
    """Resample on one thread, as loader workers do: conv1d's sums depend on the thread count,
    and a batch must not depend on whether workers or the main process made it."""
    import torch

    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


def speed_label(speaker: str, factor: float) -> str:
    """The class name of ``speaker`` at ``factor``: itself at 1.0, Kaldi's ``sp0.9-id10001`` otherwise."""
    return speaker if factor == 1.0 else f"sp{factor:g}-{speaker}"


def speed_vocabulary(speakers: Sequence[str], factors: Sequence[float]) -> list[str]:
    """Every class: the speakers at the first factor, then at the second, and so on."""
    return [speed_label(s, f) for f in factors for s in speakers]


class SpeedPerturb:
    """Reads chunks at a speed factor; a factor per chunk drawn uniformly (WeSpeaker's ``random.choice``).

    Parameters
    ----------
    factors : sequence of float
        Speed factors, e.g. (0.9, 1.0, 1.1); 1.0 reads the chunk unchanged.
    sample_rate : int
        Rate of the chunks (and of the audio after resampling).
    """

    def __init__(self, factors: Sequence[float], sample_rate: int) -> None:
        self.factors = tuple(float(f) for f in factors)
        self.sample_rate = sample_rate
        # the rate the read samples are declared to have: f x faster when played at sample_rate
        self.rates = tuple(int(round(f * sample_rate)) for f in self.factors)
        # left context in (input, output) samples: whole periods of the rational ratio, so that
        # it maps onto a whole number of output samples to drop
        self.context = tuple(self._left_context(rate) for rate in self.rates)

    def _left_context(self, rate: int) -> tuple[int, int]:
        g = math.gcd(rate, self.sample_rate)
        periods = math.ceil(_PAD / (rate // g))
        left_in, left_out = periods * (rate // g), periods * (self.sample_rate // g)
        return (left_in, left_out) if left_in <= _MAX_LEFT else (0, 0)

    def __len__(self) -> int:
        return len(self.factors)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n,) int64: the factor index of each of ``n`` chunks."""
        return rng.integers(len(self.factors), size=n)

    def input_samples(self, index: int, samples: int) -> int:
        """Samples to read for ``samples`` out at factor ``index``."""
        if self.factors[index] == 1.0:
            return samples
        return int(math.ceil(samples * self.rates[index] / self.sample_rate)) + _PAD

    def input_seconds(self, index: np.ndarray, samples: int) -> np.ndarray:
        """(n,) seconds of audio read for chunks at the factors ``index``."""
        needed = np.array([self.input_samples(i, samples) for i in range(len(self.factors))])
        return needed[index] / self.sample_rate

    def read(self, path: str | os.PathLike, start: float, index: int, out: np.ndarray,
             indexed: Indexed | None = None) -> np.ndarray:
        """Fill ``out`` (samples,) with the chunk from ``start`` seconds at factor ``index``
        (``indexed``: as ``read_crop``)."""
        samples = len(out)
        if self.factors[index] == 1.0:
            return read_crop(path, start, samples / self.sample_rate, self.sample_rate, out=out, indexed=indexed)
        import torch
        import torchaudio.functional as AF

        frame = int(round(start * self.sample_rate))
        left_in, left_out = self.context[index] if frame >= self.context[index][0] else (0, 0)
        n = left_in + self.input_samples(index, samples)
        raw = read_crop(path, (frame - left_in) / self.sample_rate, n / self.sample_rate, self.sample_rate,
                        indexed=indexed)
        with _one_thread():
            fast = AF.resample(torch.from_numpy(raw), self.rates[index], self.sample_rate)
        out[:] = fast[left_out:left_out + samples].numpy()
        return out
