"""The AS-norm cohort a validation normalised a checkpoint's scores with, kept for ``verify``.

``validate --score-norm asnorm`` writes ``scores/{epoch:04d}.cohort.npz`` beside the normalised
scores: ``means`` (float32, the mean embedding of each training speaker of the cohort), ``top_n`` (the
``--cohort-size``) and ``cohort`` (a digest of the files and speakers the means are of: a later
validation reuses the scores only with the same cohort). ``verify --score-norm asnorm`` reads it back
as data (no pickle; shape, type, size and finiteness checked) and normalises its scores as that
validation did. torch-free.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.npyio import NpzFile

from engine.atomic import atomic_write
from engine.errors import SpkembError
from engine.regular_files import FileTooLarge, NotRegularFile, read_regular
from engine.requests.validation import MIN_COHORT_SIZE

#: 100,000 speakers of 512 floats is 200 MB: no cohort of a real corpus is larger
SIZE_LIMIT = 256 * 2**20
#: what a refusal of a cohort file asks for
_FIX = "validate VAL_DIR again with --score-norm asnorm (it scores that checkpoint again and keeps one)"


@dataclass(frozen=True)
class CohortMeans:
    """Each cohort speaker's mean embedding, and how many of the highest scores against them count."""

    means: np.ndarray
    top_n: int
    #: what the cohort is made of (``Cohort.key``); None in a file written before it was kept
    key: str | None = None

    def check_dimension(self, dimension: int, path: Path) -> None:
        """Refuse a cohort (read from ``path``) of embeddings of another size than the network's."""
        if self.means.shape[1] != dimension:
            raise SpkembError(f"{path} holds a cohort of {self.means.shape[1]}-dimensional embeddings, and the "
                              f"checkpoint makes {dimension}-dimensional ones; {_FIX}")


def write_cohort_means(path: Path, cohort: CohortMeans) -> None:
    arrays: dict[str, np.ndarray] = {"means": cohort.means.astype(np.float32), "top_n": np.asarray(cohort.top_n,
                                                                                                 np.int64)}
    if cohort.key is not None:
        arrays["cohort"] = np.asarray(cohort.key)
    atomic_write(path, lambda f: np.savez(f, **arrays), mode="wb")  # type: ignore[arg-type]  # numpy stubs: allow_pickle


def read_cohort_means(path: Path) -> CohortMeans:
    """The cohort of ``path``; SpkembError, in one line, for anything else."""
    try:
        data = read_regular(path, SIZE_LIMIT)
    except FileNotFoundError:
        raise SpkembError(f"{path} is not there: its validation kept no AS-norm cohort; {_FIX}") from None
    except (IsADirectoryError, NotRegularFile, FileTooLarge) as e:
        raise SpkembError(f"{path} is no AS-norm cohort file ({e.strerror}); {_FIX}") from None
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)  # data, never code
        if not isinstance(loaded, NpzFile):  # a bare array, or a pickle it did not load
            raise ValueError("not an .npz archive")
        with loaded:
            means, top_n = np.asarray(loaded["means"]), np.asarray(loaded["top_n"])
            key = np.asarray(loaded["cohort"]) if "cohort" in loaded.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise SpkembError(f"{path} is damaged ({type(e).__name__}); {_FIX}") from None
    if means.dtype != np.float32 or means.ndim != 2 or not means.size or not np.isfinite(means).all():
        raise SpkembError(f"{path} holds no cohort of embeddings (float32 rows, finite): {means.dtype} "
                          f"{means.shape}; {_FIX}")
    if top_n.shape != () or top_n.dtype.kind not in "iu" or not MIN_COHORT_SIZE <= int(top_n) <= len(means):
        raise SpkembError(f"{path}: its top_n is no count of {MIN_COHORT_SIZE} to {len(means)} cohort speakers; "
                          f"{_FIX}")
    if key is not None and (key.shape != () or key.dtype.kind != "U" or len(str(key)) > 64):
        raise SpkembError(f"{path}: its cohort is no digest of a cohort's files; {_FIX}")
    return CohortMeans(means, int(top_n), None if key is None else str(key))
