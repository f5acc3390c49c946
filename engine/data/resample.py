"""Resampling to the model's rate, its memory bounded whatever the two rates are.

torchaudio's ``resample`` builds one filter per output phase: ``new / gcd`` filters of about
``orig / gcd`` taps each. Between the rates corpora come in (44.1, 48, 22.05, 8 kHz to 16 kHz) that
is a few thousand numbers; between two rates whose gcd is 1 (a 16001 Hz header to 16000 Hz) it is
16000 filters of 16013 taps, gigabytes of temporaries whatever the length of the file. Such rates
get the same windowed sinc evaluated at each output sample instead, a bounded block of outputs at
a time: the same samples, in memory that does not grow with the rates.
"""

from __future__ import annotations

import math

import numpy as np

#: most numbers a torchaudio filter bank may hold (it makes a few temporaries of that size)
KERNEL_LIMIT = 1 << 22
#: taps x outputs computed at once by the bounded path (8 MiB of float64 per temporary)
BLOCK_VALUES = 1 << 20
#: torchaudio's defaults (``lowpass_filter_width``, ``rolloff``): both paths give the same samples
LOWPASS_WIDTH = 6
ROLLOFF = 0.99


def resample(waveform: np.ndarray, orig: int, new: int) -> np.ndarray:
    """``waveform`` (samples,) at ``orig`` Hz as float32 at ``new`` Hz (``ceil(len * new / orig)`` samples)."""
    if orig == new:
        return waveform
    gcd = math.gcd(orig, new)
    o, n = orig // gcd, new // gcd
    width = math.ceil(LOWPASS_WIDTH * o / (min(o, n) * ROLLOFF))
    if n * (2 * width + o) <= KERNEL_LIMIT:
        # imported here: reading 16 kHz corpora (and importing this module) never pays for torch
        import torch
        import torchaudio.functional as AF

        resampled = AF.resample(torch.from_numpy(np.ascontiguousarray(waveform)), orig, new)
        return resampled.numpy().astype(np.float32, copy=False)
    return bounded_resample(waveform, o, n, width)


def bounded_resample(waveform: np.ndarray, o: int, n: int, width: int) -> np.ndarray:
    """torchaudio's windowed sinc (Hann) from ``o`` to ``n`` Hz (coprime), block by block.

    Output ``k`` sits at input position ``k * o / n``; inputs within ``width`` of it are weighed,
    those before the start or past the end of the file count as zeros (as torchaudio pads).
    """
    x = np.asarray(waveform, dtype=np.float64)
    length = len(x)
    out = np.empty(-(-n * length // o), dtype=np.float32)
    base = min(o, n) * ROLLOFF
    offsets = np.arange(-width, width + 1, dtype=np.int64)
    block = max(1, BLOCK_VALUES // len(offsets))
    for first in range(0, len(out), block):
        k = np.arange(first, min(first + block, len(out)), dtype=np.int64)[:, None]
        i = k * o // n + offsets
        # exact integers up to here: a float position drifts by samples over an hour of audio
        t = np.clip((i * n - k * o) * (base / (o * n)), -LOWPASS_WIDTH, LOWPASS_WIDTH)
        window = np.cos(t * (math.pi / LOWPASS_WIDTH / 2)) ** 2
        weights = np.sinc(t) * window * (base / o)
        inside = (i >= 0) & (i < length)
        samples = np.where(inside, x[np.clip(i, 0, length - 1)], 0.0)
        out[first:first + len(k)] = (samples * weights).sum(axis=1)
    return out
