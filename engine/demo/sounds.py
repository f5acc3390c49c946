"""MUSAN-like background noises and music for the AddNoise augmentation (Snyder et al. 2015)."""

from __future__ import annotations

import numpy as np

from engine.demo.spectral import SAMPLE_RATE, colored_noise, fast_size

NOISE_KINDS = ("white", "pink", "brown", "hum", "fan", "rain", "beeps", "traffic")


def _lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    size = fast_size(x.size)
    spec = np.fft.rfft(x, size)
    f = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
    return np.fft.irfft(spec / (1 + (f / cutoff) ** 4), size)[:x.size].astype(np.float32)


def _highpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    return (x - _lowpass(x, cutoff)).astype(np.float32)


def _slow(rng: np.random.Generator, n: int, hz: float) -> np.ndarray:
    """A smooth random envelope in [0, 1] changing about ``hz`` times per second."""
    k = max(2, int(n / SAMPLE_RATE * hz) + 2)
    return np.interp(np.arange(n), np.linspace(0, n, k), rng.uniform(0, 1, k)).astype(np.float32)


def noise(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """One background noise of ``kind`` (one of NOISE_KINDS), ``n`` samples, peak 0.5."""
    t = np.arange(n) / SAMPLE_RATE
    if kind in ("white", "pink", "brown"):
        x = colored_noise(rng, n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind])
        x *= 0.6 + 0.4 * _slow(rng, n, 0.5)
    elif kind == "hum":
        base = rng.choice([50.0, 60.0, 100.0, 120.0])
        x = sum(rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * base * h * t + rng.uniform(0, 6.3))
                for h in range(1, 8)).astype(np.float32)
        x += 0.05 * colored_noise(rng, n, 1.0)
    elif kind == "fan":
        x = _lowpass(colored_noise(rng, n, 0.5), rng.uniform(600, 2500))
        x *= 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(2, 15) * t)
    elif kind == "rain":
        drops = np.zeros(n, np.float32)
        where = rng.integers(0, n, int(rng.uniform(50, 400) * n / SAMPLE_RATE))
        drops[where] = rng.uniform(-1, 1, where.size)
        x = _highpass(drops, 1500) + 0.2 * colored_noise(rng, n, 1.0)
    elif kind == "beeps":
        x = 0.02 * colored_noise(rng, n, 1.0)
        on = (np.sin(2 * np.pi * rng.uniform(0.5, 3) * t) > rng.uniform(0.0, 0.8)).astype(np.float32)
        x += on * np.sin(2 * np.pi * rng.uniform(400, 3000) * t)
    else:                                               # traffic: rumble with passing swells
        x = _lowpass(colored_noise(rng, n, 2.0), rng.uniform(200, 800)) * (0.3 + _slow(rng, n, 0.3))
    x = np.asarray(x, np.float32)
    return (0.5 * x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)


def _hz(midi: float) -> float:
    """The frequency of a MIDI note number (A4 = 69 = 440 Hz, twelve-tone equal temperament)."""
    return 440.0 * 2 ** ((midi - 69) / 12)


def _note(rng: np.random.Generator, freq: float, n: int, timbre: str) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    if timbre == "piano":          # decaying harmonics
        env = np.exp(-t * rng.uniform(2, 6))
        partials = [(h, 0.7 ** h) for h in range(1, 7)]
    elif timbre == "organ":        # sustained, odd harmonics
        env = np.minimum(1.0, t / 0.03) * np.minimum(1.0, (t[-1] - t + 1e-3) / 0.05)
        partials = [(h, 1.0 / h) for h in (1, 3, 5, 7)]
    else:                          # pluck: bright and short
        env = np.exp(-t * rng.uniform(6, 12))
        partials = [(h, 1.0 / h) for h in range(1, 10)]
    x = sum(a * np.sin(2 * np.pi * freq * h * t) for h, a in partials if freq * h < SAMPLE_RATE / 2)
    return (env * x).astype(np.float32)


def music(rng: np.random.Generator, n: int) -> np.ndarray:
    """A few bars of synthetic music (melody, bass, drums) in a random key and tempo, peak 0.5."""
    x = np.zeros(n, np.float32)
    beat = int(SAMPLE_RATE * 60.0 / rng.uniform(70, 150))
    root = 48 + int(rng.integers(0, 12))
    scale = np.array([0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.5 else [0, 2, 3, 5, 7, 8, 10])
    timbre = str(rng.choice(["piano", "organ", "pluck"]))
    step = 0
    for start in range(0, n, beat // 2):           # melody on eighth notes
        if rng.random() < 0.75:
            step = int(np.clip(step + rng.integers(-2, 3), -3, 10))
            midi = root + 12 + 12 * (step // 7) + scale[step % 7]
            length = min(n - start, beat * int(rng.integers(1, 3)))
            x[start:start + length] += 0.5 * _note(rng, _hz(midi), length, timbre)
    for start in range(0, n, beat * 2):            # bass on every other beat
        length = min(n - start, beat * 2)
        x[start:start + length] += 0.6 * _note(rng, _hz(root - 12 + scale[rng.integers(0, 7)]), length, "organ")
    if rng.random() < 0.7:                         # drums: kick on beats, hi-hat on off-beats
        for start in range(0, n, beat):
            length = min(n - start, beat // 2)
            t = np.arange(length) / SAMPLE_RATE
            x[start:start + length] += 0.8 * np.sin(2 * np.pi * (60 + 60 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
            h = start + beat // 2
            if h < n:
                m = min(n - h, 800)
                click = _highpass(rng.standard_normal(m).astype(np.float32), 6000)
                x[h:h + m] += 0.2 * click * np.exp(-np.arange(m) / 200)
    return (0.5 * x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)
