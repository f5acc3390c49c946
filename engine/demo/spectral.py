"""The demo synthesizer's frame grid and its numpy primitives: STFT, overlap-add, resonators, noise.

Every spectral frame is HOP samples after the last, Hann-windowed over WIN samples and
zero-padded to NFFT bins, so that a filter's impulse response fits inside the frame.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
HOP = 128                     # 8 ms between spectral frames
WIN = 512                     # 32 ms analysis window
NFFT = 1024                   # zero padding leaves room for the filters' impulse responses
FREQS = np.fft.rfftfreq(NFFT, 1.0 / SAMPLE_RATE)
_Z1 = np.exp(-2j * np.pi * FREQS / SAMPLE_RATE).astype(np.complex64)
_Z2 = _Z1 * _Z1
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float32)
LOG2F = np.log2(np.maximum(FREQS, 20.0)).astype(np.float32)


def stft(x: np.ndarray, n_frames: int) -> np.ndarray:
    """Frames centred on t * HOP, Hann-windowed, zero-padded to NFFT: (frames, bins) complex64."""
    pad = np.zeros(n_frames * HOP + WIN, np.float32)
    pad[WIN // 2:WIN // 2 + len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(pad, WIN)[::HOP][:n_frames] * _WINDOW
    return np.fft.rfft(frames, NFFT, axis=1).astype(np.complex64, copy=False)


def istft(spec: np.ndarray, n_samples: int) -> np.ndarray:
    """Overlap-add of the NFFT-long frames (Hann at 1/4 overlap sums to 2)."""
    frames = np.fft.irfft(spec, NFFT, axis=1).astype(np.float32, copy=False)
    n_frames = frames.shape[0]
    k = NFFT // HOP
    blocks = frames.reshape(n_frames, k, HOP)
    out = np.zeros((n_frames + k, HOP), np.float32)
    for j in range(k):
        out[j:j + n_frames] += blocks[:, j]
    return out.reshape(-1)[WIN // 2:WIN // 2 + n_samples] / 2.0


def resonators(F: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cascade of 2nd-order resonators with unit gain at 0 Hz (Klatt 1980), on the FFT bins."""
    r = np.exp(-np.pi * B / SAMPLE_RATE).astype(np.float32)            # (frames, formants)
    c = (-2.0 * r * np.cos(2 * np.pi * F / SAMPLE_RATE)).astype(np.float32)
    r2 = r * r
    num = np.prod(1.0 + c + r2, axis=1, keepdims=True)
    den = np.ones((F.shape[0], FREQS.size), np.complex64)
    for k in range(F.shape[1]):
        den *= 1.0 + c[:, k:k + 1] * _Z1 + r2[:, k:k + 1] * _Z2
    return num / den


def fast_size(n: int) -> int:
    """The smallest 2**a * 3**b >= n: FFT lengths with large prime factors are very slow."""
    best = 1 << max(0, (n - 1).bit_length())
    three = 1
    while three < best:
        size = three << max(0, (-(-n // three) - 1).bit_length())
        best = min(best, size)
        three *= 3
    return best


def colored_noise(rng: np.random.Generator, n: int, tilt: float) -> np.ndarray:
    """Unit-variance noise with power falling as 1 / f**tilt (0 white, 1 pink, 2 brown)."""
    size = fast_size(n)
    spec = np.fft.rfft(rng.standard_normal(size).astype(np.float32))
    f = np.maximum(np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE), 20.0)
    x = np.fft.irfft(spec * (f ** (-tilt / 2)).astype(np.float32), size)[:n].astype(np.float32)
    return x / (np.std(x) + 1e-9)
