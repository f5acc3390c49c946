"""What soundfile says about audio files: their frames, rate and channels, read once, and the
check of every listed file, each unusable one a ``Problem`` named by path.

The errors of a file found unusable (``unusable_error``; ``missing_error`` and ``unreadable_error``
when it is not there or soundfile cannot open it, each naming the fix of a known cause) or changed
since the training index saw it (``changed_error``) are spelled here, for the checks and the reads
(``engine.data.audio``) alike.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import soundfile as sf

from engine.errors import AudioError

#: threads checking files with soundfile.info
CHECK_THREADS = 8
#: data-chunk sizes that writers to a pipe leave in a WAV header, the length unknown: none, ffmpeg's
#: and others' 0xFFFFFFFF, and SoX's 0x7FFFF000
OPEN_SIZES = (0, 0x7FFFF000, 0xFFFFFFFF)
#: the sample rates a recording can have (Hz): a header outside them is damaged or forged, and
#: resampling from it would take without bound (1 Hz to 16 kHz is 16,000 samples per frame)
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000


@dataclass(frozen=True)
class AudioInfo:
    """What soundfile says about one file, read once per path and process."""

    frames: int
    samplerate: int
    channels: int

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.frames / self.samplerate


@dataclass(frozen=True)
class Problem:
    """One unusable thing (a file, or a speaker of a file), named by path with the reason."""

    path: str
    problem: str
    fatal: bool = False
    kind: str = "file"  # or "speaker": a readable file, one of whose speakers is unusable


_INFO: dict[str, AudioInfo] = {}


#: the end of an unusable file's line where a protocol lists the file (``verify``'s recordings are listed by none)
FROM_THE_PROTOCOL = ", or remove it from the protocol"


def unusable_error(path: str, what: str, error: BaseException | None = None) -> AudioError:
    """The error of a file that is missing, unreadable or empty, naming its path and what to do."""
    reason = f": {error}" if error is not None else ""
    return AudioError(f"audio file {path} {what}{reason} — fix or replace the file{FROM_THE_PROTOCOL}", path=path)


def missing_error(path: str) -> AudioError:
    """The error of a file that does not exist; a list whose uris carry the extension that the audio
    template adds again (VoxCeleb's own trial lists name ``id10270/x6uYqmx31kE/00001.wav``) is said so."""
    stem, suffix = os.path.splitext(path)
    if suffix and stem.endswith(suffix) and os.path.exists(stem):
        return AudioError(f"audio file {path} does not exist, but {stem} does: the list names its uris with "
                          f"their {suffix} extension (as VoxCeleb's own trial lists do) and the audio path "
                          f"template in database.yml adds {suffix} again — strip it from the list (e.g. "
                          f"`sed -E 's/\\r$//; s/\\{suffix}( |$)/\\1/g' LIST > LIST.uris`) and point the protocol at "
                          "that list", path=path)
    # a missing folder holds no sibling either: one stat, not one for each extension (a whole corpus missing);
    # the template's own extension in the other case too (`.flac` for files named `.FLAC`)
    others = [*_OTHER_AUDIO, *dict.fromkeys((suffix.lower(), suffix.upper()))]
    sibling = next((f"{stem}{other}" for other in others if other != suffix and os.path.exists(f"{stem}{other}")),
                   None) if os.path.isdir(os.path.dirname(path) or ".") else None
    if sibling is not None:  # a corpus in another format than the template names (VoxCeleb2's .m4a)
        head = _head(sibling)
        known = None if head is None else _undecodable(head)
        fix = (f"convert the corpus to wav (e.g. `{known[1]}`) and point the template at the converted files"
               if known is not None else f"point the audio path template in database.yml at the {sibling[len(stem):]} "
               "files")
        return AudioError(f"audio file {path} does not exist, but {sibling} does — {fix}", path=path)
    return unusable_error(path, "does not exist")


def _head(path: str) -> bytes | None:
    """The first KiB of ``path`` (None when it cannot be read): enough to name its container."""
    try:
        with open(path, "rb") as f:
            return f.read(1024)
    except OSError:
        return None


#: other extensions a corpus's audio may have, looked for beside a missing file
_OTHER_AUDIO = (".m4a", ".flac", ".wav", ".sph", ".ogg", ".mp3", ".aac", ".opus")


def unreadable_error(path: str, error: BaseException) -> AudioError:
    """The error of a file soundfile cannot open: a container it cannot decode is named with the
    conversion that makes it readable; anything else is a damaged or foreign file."""
    head = _head(path)
    known = None if head is None else _undecodable(head)
    head = b"?" if head is None else head
    if not head:  # libsndfile names the descriptor it was given: `Error opening 9: Format not recognised`
        return unusable_error(path, "is empty (0 bytes)")
    if known is not None:
        what, converter = known
        return AudioError(f"audio file {path} is {what}, which soundfile cannot decode — convert the corpus to "
                          f"wav or flac (e.g. `{converter}`) and point the audio path template in database.yml "
                          "at the converted files", path=path)
    # libsndfile names the descriptor it was given (`Error opening 3: Format not recognised`): the path
    # is in the line already, and `3` read as part of the file's name
    reason = re.sub(r"^Error opening \d+: ", "", str(error))
    return unusable_error(path, "cannot be read as audio", RuntimeError(reason))


def _undecodable(head: bytes) -> tuple[str, str] | None:
    """What a file is and a command converting it, from its first bytes, when it is a container
    soundfile cannot decode: VoxCeleb2 ships as AAC in .m4a, and the LDC's .sph (SRE, Switchboard,
    Fisher) are mostly shorten-compressed."""
    if head[4:8] == b"ftyp":
        return "AAC audio in an MP4 container (as VoxCeleb2's .m4a)", "ffmpeg -i IN.m4a -ac 1 -ar 16000 OUT.wav"
    if head.startswith(b"NIST_1A") and b"shorten" in head:
        return "shorten-compressed NIST SPHERE (the LDC's .sph)", "sph2pipe -f wav IN.sph OUT.wav"
    return None


def changed_error(path: str, what: str) -> AudioError:
    """The error of a file whose size, mtime, length or rate is not what the training index saw."""
    return AudioError(f"audio file {path} changed since the training index was built ({what}) — restore it, "
                      "or run train with --reindex to check every file again", path=path)


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Frames, sample rate and channels of an audio file (cached per path).

    Parameters
    ----------
    path : str or PathLike
        Audio file readable by soundfile (wav, flac, ogg, ...).

    Returns
    -------
    AudioInfo

    Raises
    ------
    AudioError
        When the file is missing, unreadable or empty; the message names the path.
    """
    key = str(path)
    info = _INFO.get(key)
    if info is None:
        info = _INFO[key] = probe(key)
    return info


def probe(path: str) -> AudioInfo:
    """``audio_info`` without its cache: for checking a million files once, keeping nothing.

    Raises
    ------
    AudioError
        When the file is missing, unreadable or empty; the message names the path.
    """
    key = path
    try:
        # O_NONBLOCK: a named pipe given as a file must not block the open; a regular file ignores it
        fd = os.open(key, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise missing_error(key) from None
    except OSError as e:
        raise unreadable_error(key, e) from e
    try:
        frames, samplerate, channels = _probe_open(key, fd)
    finally:
        os.close(fd)
    if frames <= 0:
        raise unusable_error(key, "holds no audio frames")
    if samplerate <= 0 or channels <= 0:
        raise unusable_error(key, f"has an unusable format ({samplerate} Hz, {channels} channels)")
    if not sane_rate(samplerate):
        raise unusable_error(key, f"has a sample rate of {samplerate:,} Hz in its header, outside "
                                  f"{MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz (a damaged header)")
    return AudioInfo(frames=frames, samplerate=samplerate, channels=channels)


def sane_rate(samplerate: int) -> bool:
    """Whether ``samplerate`` is one a recording can have (``MIN_SAMPLE_RATE`` to ``MAX_SAMPLE_RATE``)."""
    return MIN_SAMPLE_RATE <= samplerate <= MAX_SAMPLE_RATE


def _probe_open(path: str, fd: int) -> tuple[int, int, int]:
    """(frames, rate, channels) of the open file ``fd``: a regular file, whole as its header says."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        # a device such as /dev/zero would be read without end, a folder or pipe is no recording
        raise unusable_error(path, "is not a regular file (a device, pipe or folder)")
    missing = wav_shortfall(os.pread(fd, 4096, 0), st.st_size)
    if missing:
        raise unusable_error(path, f"is cut short: its WAV header counts {missing} more bytes of audio than "
                                   "the file holds (a copy or download that did not finish)")
    try:
        # what soundfile.info reads, without the log text it also asks libsndfile for (1.4x faster)
        with sf.SoundFile(fd, closefd=False) as raw:
            return int(raw.frames), int(raw.samplerate), int(raw.channels)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise unreadable_error(path, e) from e


def wav_shortfall(head: bytes, size: int) -> int:
    """Bytes of audio a RIFF/WAVE file's ``data`` chunk counts beyond the file's ``size``; 0 when it
    is whole, when it is no RIFF/WAVE, or when its writer left the size open (``OPEN_SIZES``, as
    writers to a pipe do). libsndfile reads a cut file as a shorter one, so it would be scored on
    what is left."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    offset = 12
    while offset + 8 <= len(head):
        name, length = head[offset:offset + 4], int.from_bytes(head[offset + 4:offset + 8], "little")
        if name == b"data":
            if length in OPEN_SIZES:
                return 0
            return max(0, length - (size - offset - 8))
        offset += 8 + length + (length & 1)  # chunks are padded to an even length
    return 0


def check_files(paths: Iterable[str | os.PathLike], advance: Callable[[int], None] | None = None) -> list[Problem]:
    """Check every file once with soundfile.info: exists, readable, frames > 0, rate, channels.

    Parameters
    ----------
    paths : iterable of str or PathLike
        Audio files; duplicates are checked once, by ``CHECK_THREADS`` threads (libsndfile
        releases the GIL, and on network filesystems the open latency dominates).
    advance : callable, optional
        Called with 1 as each file's check is done, in order (a progress phase's ``advance``).

    Returns
    -------
    list of Problem
        One per unusable file, named by path, in the order first seen; empty when all are fine.
    """
    unique = list(dict.fromkeys(str(p) for p in paths))
    problems = []
    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
        for problem in pool.map(_problem, unique, chunksize=256):
            if advance is not None:
                advance(1)
            if problem is not None:
                problems.append(problem)
    return problems


def _problem(path: str) -> Problem | None:
    try:
        audio_info(path)
    except AudioError as e:
        return Problem(path=path, problem=str(e))
    return None
