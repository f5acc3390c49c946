"""Agglomerative clustering of one file's window embeddings (scipy), in cosine geometry.

Rows are scaled to unit length, so that the Euclidean distance between two of them,
``sqrt(2 (1 - cos))``, is a monotone function of their cosine distance, then merged with Ward's
linkage (``scipy.cluster.hierarchy.linkage(X, "ward")``). Ward rather than average linkage:
measured on the demo meetings (bench/diarize_der.py), average linkage on cosine distance cut into
the oracle number of speakers leaves one giant cluster and a few outlier windows (DER 59 % for
the trained demo network), Ward gives clusters of speaker size (36 %). The tree is cut either
into a given number of clusters (``maxclust``: the oracle number of speakers) or at a merge
height (``distance``: a threshold tuned on a development subset). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from engine.config.footprint import Memory
from engine.errors import SpkembError

LINKAGE = "ward"
METRIC = "unit-norm"
#: what Ward's linkage holds at once, per square of its rows, as measured (1.3 GB for 9,000 rows; an
#: hour of AMI peaked at 5.3 GB): scipy's condensed distances (8 bytes a pair of rows) and the
#: copies it merges in
BYTES_PER_SQUARE = 16


@dataclass(frozen=True)
class Tree:
    """The merge tree of one file's embeddings (``Z`` of scipy; None for fewer than two rows)."""

    n: int
    merges: np.ndarray | None

    def heights(self) -> np.ndarray:
        """Merge heights (where the tree can be cut)."""
        return np.empty(0) if self.merges is None else self.merges[:, 2]

    def cut(self, *, n_clusters: int | None = None, threshold: float | None = None) -> np.ndarray:
        """Cluster index (0, 1, ...) of each row: ``n_clusters`` clusters, or merges below ``threshold``.

        Exactly one of ``n_clusters`` and ``threshold`` is given.
        """
        if (n_clusters is None) == (threshold is None):
            raise ValueError("cut(): give n_clusters or threshold, not both or neither")
        if self.merges is None:
            return np.zeros(self.n, dtype=np.int64)
        if n_clusters is not None:
            labels = fcluster(self.merges, t=max(1, n_clusters), criterion="maxclust")
        else:
            labels = fcluster(self.merges, t=threshold, criterion="distance")
        return labels.astype(np.int64) - 1


def clustering_bytes(rows: int) -> int:
    """The memory Ward's linkage of ``rows`` embeddings holds at once (it grows with their square)."""
    return BYTES_PER_SQUARE * rows * rows


def check_clustering_memory(uri: str, rows: int, memory: Memory | None) -> None:
    """Refuse a file whose clustering would not fit in the memory available now (None: not known).

    An hour of meeting at a 0.2 s hop is 18,000 windows and about 5 GB; three hours, 47 GB: the
    kernel killed the process without a word, or scipy raised ``MemoryError``.
    """
    if memory is not None and clustering_bytes(rows) > memory.available:
        free = f"more than the {memory.available / 2**30:.1f} GiB {memory.available_as}"
        raise SpkembError(_too_large(uri, rows, free))


def _too_large(uri: str, rows: int, than: str) -> str:
    return (f"file {uri}: clustering its {rows:,} windows needs about {clustering_bytes(rows) / 2**30:.1f} GiB at once "
            f"(it grows with their square), {than}: diarize it where more memory is free, or extract it with "
            "a larger step (`apply --step 0.2` makes half the windows of 0.1, a quarter of the memory)")


def build_tree(embeddings: np.ndarray, uri: str = "") -> Tree:
    """Ward tree of ``embeddings`` ``(rows, dimension)`` scaled to unit length.

    Rows of zeros (a dead network) have no direction and stay at the origin, at distance 1 of
    every unit row.

    Raises
    ------
    SpkembError
        The linkage ran out of memory (named by ``uri``).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (rows, dimension), got shape {x.shape}")
    if len(x) < 2:
        return Tree(len(x), None)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.maximum(norms, 1e-12)
    try:
        return Tree(len(x), linkage(x, method=LINKAGE))
    except MemoryError:
        raise SpkembError(_too_large(uri, len(x), "more than could be had")) from None
