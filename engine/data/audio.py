"""Reading audio with soundfile: random crops that read only their frames, and whole files.

Real corpora (VoxCeleb, AMI, MUSAN) are 16 kHz mono wav/flac, so the hot path is a seek and
one ``read`` into a float32 buffer on a file handle kept open by the worker. Other rates are
resampled (``engine.data.resample``: torchaudio, imported only then, so that importing this module
stays torch-free, or in bounded blocks where torchaudio's filters would not fit in memory),
other channel counts are averaged to mono, and unreadable files raise ``AudioError`` naming
the path. What a file holds (``audio_info``) and the check of every listed file are
``engine.data.audio_checks``'s.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from engine.data.audio_checks import audio_info, changed_error, missing_error, unreadable_error, unusable_error
from engine.data.resample import resample

#: open SoundFile handles kept per process; a worker crops from a few hundred files at a time
HANDLES_PER_PROCESS = 128

_INT16_SCALE = np.float32(1.0 / 32768.0)
#: the subtypes whose samples may be NaN or infinite (integer PCM cannot)
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


@dataclass(frozen=True)
class Indexed:
    """What the training index saw of a file: a read that finds it otherwise raises ``AudioError``.

    Files change after indexing (a copy cut short, a disk that lost blocks, a file rewritten):
    the index's regions then point at audio that is no longer there, or no longer the same.
    """

    frames: int
    samplerate: int
    size: int
    mtime_ns: int


def _check_unchanged(path: str, indexed: Indexed) -> None:
    """The file's size and mtime are still those the index saw (one stat: cheap beside a read)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise unusable_error(path, "cannot be found any more", e) from e
    if st.st_size != indexed.size:
        raise changed_error(path, f"{st.st_size:,} bytes, {indexed.size:,} when indexed")
    if st.st_mtime_ns != indexed.mtime_ns:
        raise changed_error(path, "modified since")


class _Handles:
    """A small LRU of open SoundFile handles, private to one process.

    A DataLoader worker forked from a parent that already held handles must not share their
    file offsets with it: the cache is emptied whenever the process id changes.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.pid = os.getpid()
        self.files: OrderedDict[str, sf.SoundFile] = OrderedDict()
        self._scratch = np.empty((0, 1), dtype=np.int16)

    def get(self, path: str) -> sf.SoundFile:
        if self.pid != os.getpid():
            # inherited from the parent by fork: forget without closing (the parent owns them)
            self.files = OrderedDict()
            self.pid = os.getpid()
        handle = self.files.get(path)
        if handle is not None:
            self.files.move_to_end(path)
            return handle
        try:
            handle = sf.SoundFile(path)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            if not os.path.exists(path):
                raise missing_error(path) from e
            raise unreadable_error(path, e) from e
        self.files[path] = handle
        if len(self.files) > self.size:
            _, oldest = self.files.popitem(last=False)
            oldest.close()
        return handle

    def scratch(self, frames: int, channels: int) -> np.ndarray:
        """A reusable (frames, channels) int16 buffer."""
        if self._scratch.shape[0] < frames or self._scratch.shape[1] != channels:
            self._scratch = np.empty((max(frames, self._scratch.shape[0]), channels), dtype=np.int16)
        return self._scratch[:frames]

    def close(self) -> None:
        if self.pid == os.getpid():
            for handle in self.files.values():
                handle.close()
        self.files = OrderedDict()


_HANDLES = _Handles(HANDLES_PER_PROCESS)


def close_handles() -> None:
    """Close the file handles this process keeps open (tests, end of a command)."""
    _HANDLES.close()


def _read_frames(path: str, start: int, frames: int, out: np.ndarray | None = None,
                 indexed: Indexed | None = None) -> np.ndarray:
    """Read ``frames`` frames from ``start`` as (frames,) mono float32; zero-padded past the end
    (past the end the index saw, with ``indexed``: a file cut short since raises)."""
    handle = _HANDLES.get(path)
    if out is None:
        out = np.empty(frames, dtype=np.float32)
    try:
        handle.seek(start)
        if handle.subtype == "PCM_16":
            # libsndfile's own int16 -> float32 conversion is ~3x slower than reading the
            # integers and scaling them with numpy by the same 1/32768
            scratch = _HANDLES.scratch(frames, handle.channels)
            data = handle.read(frames, dtype="int16", always_2d=True, out=scratch)
            n = len(data)
            if handle.channels == 1:
                np.multiply(data[:, 0], _INT16_SCALE, out=out[:n])
            else:
                # downmix by averaging channels (as pyannote.audio's RawAudio(mono=True))
                np.multiply(data.mean(axis=1, dtype=np.float32), _INT16_SCALE, out=out[:n])
        elif handle.channels == 1:
            # straight into the caller's buffer: no intermediate copy
            n = len(handle.read(frames, dtype="float32", out=out[:frames]))
        else:
            data = handle.read(frames, dtype="float32", always_2d=True)
            n = len(data)
            np.mean(data, axis=1, out=out[:n])
    except (sf.LibsndfileError, RuntimeError) as e:
        raise unusable_error(path, f"could not be read at frame {start}", e) from e
    # only floating-point files can hold them; one would make every embedding of the file NaN
    if handle.subtype in _FLOAT_SUBTYPES and not np.isfinite(out[:n]).all():
        raise unusable_error(path, f"holds NaN or infinite samples (frames {start:,} to {start + n:,})")
    if n < frames:
        if indexed is not None and start + n < min(indexed.frames, start + frames):
            raise changed_error(path, f"it ends at frame {start + n:,}, {indexed.frames:,} when indexed")
        out[n:frames] = 0.0
    return out


def num_samples(duration_s: float, sample_rate: int) -> int:
    """Number of samples of a chunk of ``duration_s`` seconds (rounded, as everywhere here)."""
    return int(round(duration_s * sample_rate))


def read_crop(path: str | os.PathLike, start_s: float, duration_s: float, sample_rate: int,
              out: np.ndarray | None = None, indexed: Indexed | None = None) -> np.ndarray:
    """Read ``duration_s`` seconds from ``start_s`` as mono float32 at ``sample_rate``.

    Only the frames of the crop are read (seek + read on a handle kept open by this process).
    Multi-channel files are averaged to mono; other sample rates are resampled with
    ``engine.data.resample.resample``. Parts of the crop past the end of the file are zeros.

    Parameters
    ----------
    path : str or PathLike
        Audio file.
    start_s, duration_s : float
        Crop start and duration, in seconds.
    sample_rate : int
        Sample rate of the returned waveform.
    out : np.ndarray, optional
        (num_samples(duration_s, sample_rate),) float32 buffer to fill instead of allocating.
    indexed : Indexed, optional
        What the training index saw of the file: a file of another size, mtime, length or
        rate now raises instead of being read.

    Returns
    -------
    np.ndarray
        (num_samples(duration_s, sample_rate),) float32 waveform.

    Raises
    ------
    AudioError
        When the file is missing or unreadable, or (``indexed``) changed; the message names the path.
    """
    key = str(path)
    n = num_samples(duration_s, sample_rate)
    if indexed is not None:
        _check_unchanged(key, indexed)
    # the rate from the open handle, not from audio_info: a worker cropping from a million
    # files would otherwise keep a growing per-path cache for the whole run
    handle = _HANDLES.get(key)
    rate = handle.samplerate
    if indexed is not None and (handle.frames != indexed.frames or rate != indexed.samplerate):
        raise changed_error(key, f"{handle.frames:,} frames at {rate} Hz, {indexed.frames:,} at "
                            f"{indexed.samplerate} Hz when indexed")
    if rate == sample_rate:
        start = max(0, int(round(start_s * sample_rate)))
        return _read_frames(key, start, n, out, indexed)
    native_start = max(0, int(math.floor(start_s * rate)))
    native_n = int(math.ceil(duration_s * rate))
    native = _read_frames(key, native_start, native_n, indexed=indexed)
    resampled = resample(native, rate, sample_rate)
    if out is None:
        out = np.zeros(n, dtype=np.float32)
    m = min(n, len(resampled))
    out[:m] = resampled[:m]
    out[m:n] = 0.0
    return out


def read_file(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Read a whole file as mono float32 at ``sample_rate``.

    Parameters
    ----------
    path : str or PathLike
        Audio file.
    sample_rate : int
        Sample rate of the returned waveform (other rates are resampled).

    Returns
    -------
    np.ndarray
        (samples,) float32 waveform.
    """
    key = str(path)
    info = audio_info(key)
    native = _read_frames(key, 0, info.frames)
    if info.samplerate == sample_rate:
        return native
    return resample(native, info.samplerate, sample_rate)

