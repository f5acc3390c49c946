"""AMI-like meetings: turns of held-out speakers with pauses and some overlap, headset mix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.demo.spectral import SAMPLE_RATE, colored_noise
from engine.demo.voice import Voice, random_channel, synthesize


@dataclass(frozen=True)
class Turn:
    """One stretch of speech of a meeting (seconds)."""

    speaker: str
    start: float
    end: float


def meeting(rng: np.random.Generator, voices: dict[str, Voice], n_samples: int) -> tuple[np.ndarray, list[Turn]]:
    """A meeting of ``voices`` lasting ``n_samples``: waveform (peak 0.8) and speech turns.

    Each speaker has a headset channel and a level; speakers take turns of 1-6 s separated
    by pauses, sometimes starting before the previous one ends (overlap, as in AMI, Carletta
    2007); a little room noise is added to the mix.
    """
    names = sorted(voices)
    channels = {s: random_channel(rng, strength=0.5) for s in names}
    levels = {s: 10 ** (rng.uniform(-6, 0) / 20) for s in names}
    x = np.zeros(n_samples, np.float32)
    turns: list[Turn] = []
    cursor, previous, prev_start = rng.uniform(0.3, 1.5), None, 0.0
    while True:
        speaker = names[rng.integers(len(names))]
        if speaker == previous and rng.random() < 0.85:
            continue
        seconds = float(np.exp(rng.uniform(np.log(1.0), np.log(6.0))))
        start = max(prev_start + 0.5, cursor + float(np.clip(rng.normal(0.4, 0.5), -1.0, 1.5)))
        a = int(round(start * 1000)) * 16
        n = int(round(seconds * 1000)) * 16
        if a + n > n_samples - SAMPLE_RATE // 2:
            break
        wave, spans = synthesize(rng, voices[speaker], channels[speaker], n, background=False)
        wave *= levels[speaker] / (np.sqrt(np.mean(wave ** 2)) + 1e-9) * 0.1
        x[a:a + n] += wave
        turns += [Turn(speaker, round(start + s, 3), round(start + e, 3)) for s, e in spans]
        cursor, previous, prev_start = start + seconds, speaker, start
    speech = np.sqrt(np.mean(x[x != 0] ** 2)) if np.any(x) else 0.1
    x += speech * 10 ** (-rng.uniform(20, 30) / 20) * colored_noise(rng, n_samples, rng.uniform(0.5, 1.5))
    return (0.8 * x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32), turns
