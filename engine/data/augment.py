"""Data augmentation of training chunks: additive noise at a random SNR, optional reverberation.

``AddNoise`` is pyannote.audio 1.x's ``augmentation.noise.AddNoise``: noise files of MUSAN-like
``Collection`` protocols, each piece normalised to unit RMS, concatenated until the chunk is
covered, mixed at an SNR drawn uniformly in [snr_min, snr_max] dB. One difference: 1.x
returned ``normalize(original) + alpha * noise``; here the noise is scaled to the original's
RMS instead, so the chunk keeps its level and the SNR is still exactly the one drawn.

Both augmentations are callables ``(waveform (samples,), rng) -> waveform``: every random
choice comes from the numpy Generator they are given, so a batch is reproducible.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.data.audio import read_crop, read_file
from engine.data.audio_checks import Problem, audio_info, check_files
from engine.errors import AudioError, ConfigError, ProtocolError

#: guards the RMS normalisations against silent pieces
EPSILON = 1e-8


def _rms(x: np.ndarray) -> float:
    # a dot product: no temporary array, and float32 accumulation is ample for one chunk
    return float(np.sqrt(np.dot(x, x) / max(1, len(x))))


def _usable(paths: Sequence[str | os.PathLike], what: str) -> tuple[list[str], list[Problem]]:
    names = [str(p) for p in paths]
    problems = check_files(names)
    bad = {p.path for p in problems}
    good = [p for p in dict.fromkeys(names) if p not in bad]
    if not good:
        raise AudioError(f"none of the {len(paths)} {what} file(s) can be read"
                         + (f" (first: {problems[0].problem})" if problems else "")
                         + " — fix the collection in database.yml or the data_augmentation section")
    return good, problems


class AddNoise:
    """Add noise from a list of files at an SNR drawn uniformly in [snr_min, snr_max] dB.

    Parameters
    ----------
    paths : sequence of str or PathLike
        Noise files (e.g. ``file['audio']`` of ``MUSAN.Collection.BackgroundNoise``);
        unreadable ones are left out and listed in ``problems``.
    snr_min, snr_max : float
        SNR range in dB.
    sample_rate : int
        Sample rate of the chunks.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], *, snr_min: float, snr_max: float,
                 sample_rate: int) -> None:
        if snr_max < snr_min:
            raise ConfigError(f"snr_max={snr_max} is below snr_min={snr_min} — swap them",
                              key="data_augmentation.params.snr_max")
        self.paths, self.problems = _usable(paths, "noise")
        self.snr_min, self.snr_max = float(snr_min), float(snr_max)
        self.sample_rate = sample_rate
        # length of each file in samples at the chunks' rate
        lengths = [audio_info(p).frames * sample_rate // audio_info(p).samplerate for p in self.paths]
        self.paths = [p for p, n in zip(self.paths, lengths, strict=True) if n > 0]
        self.lengths = np.array([n for n in lengths if n > 0], dtype=np.int64)
        if not self.paths:
            raise AudioError("every noise file is shorter than one sample — check the collection")

    def noise(self, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``samples`` of unit-RMS noise: random files, random offsets, reading only what is needed."""
        out = np.empty(samples, dtype=np.float32)
        done = 0
        while done < samples:
            i = int(rng.integers(len(self.paths)))
            left = samples - done
            take = int(min(left, self.lengths[i]))
            if take <= 0:
                continue
            offset = int(rng.integers(self.lengths[i] - take + 1))
            piece = out[done:done + take]
            read_crop(self.paths[i], offset / self.sample_rate, take / self.sample_rate,
                      self.sample_rate, out=piece)
            piece /= _rms(piece) + EPSILON
            done += take
        return out

    def __call__(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return ``waveform`` + noise at a random SNR (same shape, float32)."""
        snr = self.snr_min + (self.snr_max - self.snr_min) * rng.random()
        noise = self.noise(len(waveform), rng)
        # alpha = 10^(-snr/20): amplitude ratio of noise to signal (1.x's exp(-log(10) snr / 20))
        alpha = 10.0 ** (-snr / 20.0) * _rms(waveform)
        return (waveform + alpha * noise).astype(np.float32, copy=False)


class AddReverb:
    """Convolve with a random room impulse response, with probability ``probability``.

    The impulse response is aligned on its direct path (its peak) so that the chunk does not
    move in time, and the result is scaled back to the original RMS so the level is kept.

    Parameters
    ----------
    paths : sequence of str or PathLike
        Room impulse responses (e.g. a ``Collection`` of RIR wav files).
    probability : float
        Chance that a chunk is reverberated.
    sample_rate : int
        Sample rate of the chunks.
    """

    #: impulse responses kept in memory per process (they are short)
    CACHE = 256

    def __init__(self, paths: Sequence[str | os.PathLike], *, probability: float,
                 sample_rate: int) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ConfigError(f"probability={probability} is not in [0, 1]",
                              key="data_augmentation.params.reverb.probability")
        self.paths, self.problems = _usable(paths, "impulse response")
        self.probability = float(probability)
        self.sample_rate = sample_rate
        self._rirs: OrderedDict[str, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_rirs"] = OrderedDict()
        return state

    def _rir(self, path: str) -> np.ndarray:
        rir = self._rirs.get(path)
        if rir is None:
            rir = read_file(path, self.sample_rate).astype(np.float64)
            rir = rir[int(np.argmax(np.abs(rir))):]
            rir /= np.sqrt(np.sum(rir ** 2)) + EPSILON
            self._rirs[path] = rir
            if len(self._rirs) > self.CACHE:
                self._rirs.popitem(last=False)
        return rir

    def __call__(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the reverberated ``waveform`` (or itself, with probability 1 - p)."""
        if rng.random() >= self.probability:
            return waveform
        rir = self._rir(self.paths[int(rng.integers(len(self.paths)))])
        n = len(waveform)
        size = 1 << int(np.ceil(np.log2(n + len(rir) - 1)))
        wet = np.fft.irfft(np.fft.rfft(waveform, size) * np.fft.rfft(rir, size), size)[:n]
        wet *= _rms(waveform) / (_rms(wet) + EPSILON)
        return wet.astype(np.float32)


class Chain:
    """Apply augmentations in order (reverberation first, then noise: noisy reverberant rooms)."""

    def __init__(self, steps: Sequence[Any]) -> None:
        self.steps = list(steps)

    @property
    def problems(self) -> list[Problem]:
        """Unreadable files left out by every step."""
        return [p for step in self.steps for p in getattr(step, "problems", [])]

    def __call__(self, waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for step in self.steps:
            waveform = step(waveform, rng)
        return waveform


def collection_paths(names: Sequence[str], database: str | os.PathLike | None = None) -> list[str]:
    """Audio paths of every file of the given Collection protocols."""
    from engine.data.protocols import load_protocol

    paths: list[str] = []
    for name in names:
        protocol = load_protocol(name, database)
        try:
            paths.extend(str(file["audio"]) for file in protocol.files())
        except FileNotFoundError as e:
            raise ProtocolError(f"collection {name}: {e} — fix its list path in database.yml") from e
    return paths


def build_augmentation(augmentation: Any, *, sample_rate: int,
                       database: str | os.PathLike | None = None) -> Chain | None:
    """The augmentation of a config's ``data_augmentation`` section (None when it has none).

    Parameters
    ----------
    augmentation : engine.config.AugmentationConfig or None
        ``collection`` (noise is added when it is not empty), ``snr_min``, ``snr_max`` and an
        optional ``reverb`` (``collection``, ``probability``).
    sample_rate : int
        Sample rate of the chunks.
    database : str or PathLike, optional
        database.yml resolving the collections.
    """
    if augmentation is None:
        return None
    steps: list[Any] = []
    reverb = getattr(augmentation, "reverb", None)
    if reverb is not None:
        steps.append(AddReverb(collection_paths(reverb.collection, database),
                               probability=reverb.probability, sample_rate=sample_rate))
    if augmentation.collection:
        steps.append(AddNoise(collection_paths(augmentation.collection, database),
                              snr_min=augmentation.snr_min, snr_max=augmentation.snr_max,
                              sample_rate=sample_rate))
    return Chain(steps) if steps else None
