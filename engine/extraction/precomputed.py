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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pyannote.core import SlidingWindow, SlidingWindowFeature

from engine.errors import SpkembError, yaml_problem
from engine.layout import EXTRACTION_DIR_SHAPE, METADATA, ExtractionDir

__all__ = ["Precomputed", "read_metadata", "embedding_path"]


def embedding_path(root: str | Path, uri: str) -> Path:
    """Where the embeddings of ``uri`` live under ``root`` (``a/b`` -> ``root/a/b.npy``)."""
    return ExtractionDir(Path(root)).embeddings(uri)


def read_metadata(root: str | Path) -> dict[str, Any]:
    """The ``metadata.yml`` of an extraction directory, with ``start``, ``duration``, ``step``.

    Also accepts pyannote.audio 1.x's nested ``sliding_window: {start, duration, step}``.
    """
    path = ExtractionDir(Path(root)).metadata
    try:
        metadata = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as e:
        raise SpkembError(f"{path} does not exist: is {root} an extraction directory written "
                          f"by `spkemb-engine apply` ({EXTRACTION_DIR_SHAPE})?") from e
    except yaml.YAMLError as e:
        raise SpkembError(f"{path} is not valid YAML ({yaml_problem(e)}); run `spkemb-engine apply` again") from e
    window = metadata.get("sliding_window", metadata) if isinstance(metadata, dict) else None
    if not isinstance(window, dict):
        raise SpkembError(f"{path} holds no sliding window (duration, step); run `spkemb-engine apply` again")
    missing = [k for k in ("duration", "step") if k not in window]
    if missing:
        raise SpkembError(f"{path} lacks {', '.join(missing)}; run `spkemb-engine apply` again")
    try:
        sliding = {"start": float(window.get("start", 0.0)), "duration": float(window["duration"]),
                   "step": float(window["step"])}
    except (TypeError, ValueError):
        raise SpkembError(f"{path}: the sliding window's start, duration and step must be numbers; "
                          "run `spkemb-engine apply` again") from None
    if sliding["duration"] <= 0 or sliding["step"] <= 0:
        raise SpkembError(f"{path}: the sliding window's duration and step must be > 0; "
                          "run `spkemb-engine apply` again")
    return {**metadata, **sliding}


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
            data = np.load(path)
        except FileNotFoundError as e:
            raise SpkembError(f"no embeddings for {uri!r}: {path} does not exist; extract this "
                              "file's protocol and subset with `spkemb-engine apply`") from e
        except ValueError as e:
            raise SpkembError(f"{path} is not a numpy array file ({e}); extract it again") from e
        if data.ndim != 2 or (self.dimension is not None and data.shape[1] != self.dimension):
            raise SpkembError(f"{path} has shape {data.shape}, expected (windows, "
                              f"{self.dimension}) as {METADATA} says; extract it again")
        return SlidingWindowFeature(data, self.sliding_window)

    def __repr__(self) -> str:
        return f"Precomputed({str(self.root)!r})"
