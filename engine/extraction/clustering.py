"""Agglomerative clustering of one file's window embeddings (scipy), on cosine distance.

Average linkage on cosine distance (``scipy.cluster.hierarchy.linkage(X, "average", "cosine")``):
the usual choice for speaker embeddings (centroid and Ward linkage assume Euclidean geometry,
which a cosine-scored embedding does not have). The tree is cut either into a given number of
clusters (``maxclust``: the oracle number of speakers) or at a cosine distance threshold
(``distance``: tuned on a development subset). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

LINKAGE = "average"
METRIC = "cosine"


@dataclass(frozen=True)
class Tree:
    """The merge tree of one file's embeddings (``Z`` of scipy; None for fewer than two rows)."""

    n: int
    merges: np.ndarray | None

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


def build_tree(embeddings: np.ndarray) -> Tree:
    """Average-linkage tree of ``embeddings`` ``(rows, dimension)`` on cosine distance.

    Rows of zeros (a dead network) have no direction; they are nudged by a tiny constant so
    that the cosine distance stays defined (every such row is then at distance 0 of the others).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (rows, dimension), got shape {x.shape}")
    if len(x) < 2:
        return Tree(len(x), None)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.where(norms > 1e-12, x, x + 1e-6)
    return Tree(len(x), linkage(x, method=LINKAGE, metric=METRIC))
