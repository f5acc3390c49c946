"""Read embeddings written by ``spkemb-engine apply``, as pyannote.audio 1.x's ``Precomputed``.

torch-free: numpy, PyYAML and pyannote.core only, so notebooks and diarization pipelines can
read embeddings without the training stack.

``VAL_DIR/apply/{epoch}/`` holds one ``{uri}.npy`` per file (rows = windows, nested uris as
folders) and one ``metadata.yml`` describing the sliding window shared by every file::

    >>> from engine import Precomputed
    >>> precomputed = Precomputed(f"{VAL_DIR}/apply/{epoch}")
    >>> embeddings = precomputed(test_file)          # SlidingWindowFeature
    >>> fX = embeddings.crop(Segment(10, 20))        # windows overlapping [10 s, 20 s]
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pyannote.core import SlidingWindow, SlidingWindowFeature

from engine.console import listed
from engine.data.manifest import npy_header
from engine.errors import SpkembError, yaml_problem
from engine.layout import APPLY, EXTRACTION_DIR_SHAPE, METADATA, ExtractionDir
from engine.regular_files import NotRegularFile, open_regular

__all__ = ["Precomputed", "read_metadata", "embedding_path"]


def embedding_path(root: str | Path, uri: str) -> Path:
    """Where the embeddings of ``uri`` live under ``root`` (``a/b`` -> ``root/a/b.npy``)."""
    return ExtractionDir(Path(root)).embeddings(uri)


#: the longest window or hop, seconds: apply's windows last seconds; an hour is no extraction
MAX_WINDOW = 3600.0
#: the shortest hop, seconds: one sample at 1 MHz (apply's hop is at least one sample)
MIN_STEP = 1e-6
#: the first window starts at most this far from 0, seconds (apply writes 0)
MAX_START = 86400.0
#: the largest epoch number (``--to``'s bound)
MAX_EPOCH = 1_000_000
AGAIN = "run `spkemb-engine apply` again"


def read_metadata(root: str | Path) -> dict[str, Any]:
    """The ``metadata.yml`` of an extraction directory, with ``start``, ``duration``, ``step``.

    Also accepts pyannote.audio 1.x's nested ``sliding_window: {start, duration, step}``.

    Raises
    ------
    SpkembError
        No such file; not UTF-8, not YAML or not a mapping; a number that is missing, not finite
        or out of its bounds (named with its key): one line naming the file.
    """
    path = ExtractionDir(Path(root)).metadata
    metadata = _load(path, root)
    nested = isinstance(metadata.get("sliding_window"), dict)
    if "sliding_window" in metadata and not nested:
        raise SpkembError(f"{path} holds no sliding window: sliding_window: {metadata['sliding_window']!r} is "
                          f"no mapping of start, duration and step; {AGAIN}")
    window = metadata["sliding_window"] if nested else metadata
    missing = [k for k in ("duration", "step") if k not in window]
    if missing:
        raise SpkembError(f"{path} lacks {', '.join(missing)} (the sliding window); {AGAIN}")
    prefix = "sliding_window." if nested else ""
    seconds = {key: _number(path, prefix + key, window.get(key, 0.0), low, high)
               for key, low, high in (("start", -MAX_START, MAX_START), ("duration", MIN_STEP, MAX_WINDOW),
                                      ("step", MIN_STEP, MAX_WINDOW))}
    _check_whole(path, metadata)
    return {**metadata, **seconds}


def _extractions_in(folder: Path) -> list[Path]:
    """The extraction directories in ``folder`` or in its ``apply`` folder (a VAL_DIR given for one),
    among their first thousand entries: a big folder given by mistake is not read whole for a hint."""
    found = []
    for parent in (folder / APPLY, folder):
        try:
            found += sorted(p for p in itertools.islice(parent.iterdir(), 1000) if (p / METADATA).is_file())
        except OSError:  # no such folder, or not one to read
            continue
    return found


def _load(path: Path, root: str | Path) -> dict[str, Any]:
    """The mapping ``path`` holds."""
    try:
        metadata = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except FileNotFoundError as e:
        inside = _extractions_in(Path(root))
        if inside:  # a VAL_DIR, or its apply/ folder
            raise SpkembError(f"{root} is no extraction ({path.name} is not in it): pass one of the extractions "
                              f"in it: {listed(inside)}") from e
        raise SpkembError(f"{path} does not exist: is {root} an extraction directory written by "
                          f"`spkemb-engine apply` ({EXTRACTION_DIR_SHAPE})?") from e
    except UnicodeDecodeError as e:
        raise SpkembError(f"{path} is not UTF-8 text (byte {e.start}); {AGAIN}") from None
    except yaml.YAMLError as e:
        raise SpkembError(f"{path} is not valid YAML ({yaml_problem(e)}); {AGAIN}") from e
    except RecursionError:  # PyYAML recurses once per level: `[[[[…` thousands deep ends its stack
        raise SpkembError(f"{path} is nested too deeply to be an extraction's metadata; {AGAIN}") from None
    if not isinstance(metadata, dict):
        what = f"a {type(metadata).__name__}" if metadata is not None else "nothing"
        raise SpkembError(f"{path} holds no sliding window: {what}, not a mapping of start, duration and step; "
                          f"{AGAIN}")
    return metadata


def _number(path: Path, key: str, value: Any, low: float, high: float) -> float:
    """``value`` as seconds, refused unless a finite number within [low, high]."""
    # a bool is an int to Python, and `.nan`, `.inf` are floats to YAML: none is a length of time
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        number = math.nan
    else:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
    if not low <= number <= high:  # NaN fails every comparison
        raise SpkembError(f"{path}: {key}: {value!r} is not a number of seconds from {low:g} to {high:g}; {AGAIN}")
    return number


def _check_whole(path: Path, metadata: dict[str, Any]) -> None:
    """``dimension``, ``sample_rate`` and ``epoch``, where present: whole numbers in their bounds."""
    bounds = {"dimension": (1, None), "sample_rate": (1, None), "epoch": (0, MAX_EPOCH)}
    for key, (low, high) in bounds.items():
        value = metadata.get(key)
        if value is None or (key == "epoch" and isinstance(value, str)):  # averaged weights are named
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            within = f"from {low} to {high:,}" if high else f">= {low}"
            raise SpkembError(f"{path}: {key}: {value!r} is not a whole number {within}; {AGAIN}")


class Precomputed:
    """Embeddings precomputed by ``spkemb-engine apply``, read per file.

    Parameters
    ----------
    root : str or Path
        Extraction directory, e.g. ``VAL_DIR/apply/221``.

    Attributes
    ----------
    sliding_window : pyannote.core.SlidingWindow
        Window of every row (``start``, ``duration``, ``step`` in seconds).
    dimension : int or None
        Embedding dimension, when metadata.yml states it.
    metadata : dict
        The whole metadata.yml (epoch, checkpoint hash, mode, ...).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.metadata = read_metadata(self.root)
        self.sliding_window = SlidingWindow(start=self.metadata["start"],
                                            duration=self.metadata["duration"],
                                            step=self.metadata["step"])
        dimension = self.metadata.get("dimension")
        self.dimension = None if dimension is None else int(dimension)

    def __call__(self, file: Mapping[str, Any] | str) -> SlidingWindowFeature:
        """Embeddings of one file (a pyannote.database file with ``uri``, or a uri).

        Returns
        -------
        SlidingWindowFeature
            ``(windows, dimension)`` data on :attr:`sliding_window`.
        """
        uri = file if isinstance(file, str) else file["uri"]
        path = embedding_path(self.root, uri)
        try:
            data = _load_array(path)
        except FileNotFoundError as e:
            raise SpkembError(f"no embeddings for {uri!r}: {path} does not exist; extract this "
                              "file's protocol and subset with `spkemb-engine apply`") from e
        except NotRegularFile as e:  # a pipe would block the read, a device never end
            raise SpkembError(f"{path} is not a regular file (a pipe or a device): {AGAIN}") from e
        except (ValueError, EOFError) as e:  # not .npy, pickled objects, cut short
            raise SpkembError(f"{path} is not a numpy array file ({e}); extract it again") from e
        return SlidingWindowFeature(self._checked(path, data), self.sliding_window)

    def _checked(self, path: Path, data: Any) -> np.ndarray:
        """``data`` when it is ``(windows, dimension)`` finite real numbers, one window at least.

        A NaN would stop the clustering, and a file of no window would be scored as all speech
        missed: both are an extraction that went wrong, not a result.
        """
        if not isinstance(data, np.ndarray):  # an .npz archive loads as a mapping of arrays
            raise SpkembError(f"{path} holds a {type(data).__name__}, not one numpy array; {AGAIN}")
        if data.ndim != 2 or (self.dimension is not None and data.shape[1] != self.dimension):
            raise SpkembError(f"{path} has shape {data.shape}, expected (windows, "
                              f"{self.dimension}) as {METADATA} says; extract it again")
        if data.dtype.kind not in "fiu":
            raise SpkembError(f"{path} holds {data.dtype} values, not real numbers; {AGAIN}")
        if len(data) == 0:
            raise SpkembError(f"{path} holds no window (shape {data.shape}): {AGAIN} for this file")
        bad = np.count_nonzero(~np.isfinite(data).all(axis=1))
        if bad:
            raise SpkembError(f"{path}: {bad} of its {len(data)} windows hold NaN or infinite values; "
                              f"{AGAIN} (check the audio of this file, and the checkpoint)")
        return data

    def __repr__(self) -> str:
        return f"Precomputed({str(self.root)!r})"


def _load_array(path: Path) -> np.ndarray:
    """The array of the ``.npy`` file ``path``, its header held against the file's size before any
    of it is read: a 4 KB file whose header said (10^12, 128) asked numpy for 466 TiB (a traceback)."""
    with open(open_regular(path), "rb") as f:
        dtype, shape, _, offset = npy_header(f)
        if dtype.hasobject:
            raise ValueError("it holds pickled objects")
        size = os.fstat(f.fileno()).st_size
        if offset + math.prod(shape) * dtype.itemsize != size:
            raise ValueError(f"its header says {shape} of {dtype}, which its {size:,} bytes do not hold: "
                             "cut short, or not written by apply")
        f.seek(0)
        return np.load(f)
