"""Adaptive symmetric score normalisation (AS-norm) of cosine trial scores.

Matejka et al., "Analysis of score normalization in multilingual speaker recognition",
Interspeech 2017, as WeSpeaker computes it (``wespeaker/bin/score_norm.py``): each side of a
trial is scored against a cohort (here the mean embedding of each training speaker), the
``top_n`` highest cohort scores of that side give a mean and a (population) standard deviation,
and the trial score ``s`` becomes::

    s_norm = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)

where ``e`` is the first file of the trial (enrolment) and ``t`` the second (test). Cosine
scores throughout: embeddings and cohort are unit-normalised first. torch-free.
"""

from __future__ import annotations

import numpy as np

from engine.requests.validation import MIN_COHORT_SIZE


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def top_cohort_stats(embeddings: np.ndarray, cohort: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the ``top_n`` highest cosine scores of each row against the cohort.

    Parameters
    ----------
    embeddings : (n, d) array
    cohort : (m, d) array, m >= top_n
    top_n : int

    Returns
    -------
    mean, std : (n,) arrays
    """
    if not MIN_COHORT_SIZE <= top_n <= len(cohort):
        raise ValueError(f"top_n must be in [{MIN_COHORT_SIZE}, {len(cohort)}], got {top_n}")
    scores = _unit(embeddings) @ _unit(cohort).T                      # (n, m)
    # the top_n largest of each row, in no particular order: mean and std do not care
    top = np.partition(scores, len(cohort) - top_n, axis=1)[:, len(cohort) - top_n:]
    return top.mean(axis=1), top.std(axis=1)


def asnorm_scores(embeddings: dict[str, np.ndarray], cohort: np.ndarray, trials: list[tuple[int, str, str]],
                  scores: np.ndarray, top_n: int) -> np.ndarray:
    """AS-norm of the raw ``scores`` of ``trials`` (``(reference, uri1, uri2)``), see the module doc."""
    uris = sorted({u for _, u1, u2 in trials for u in (u1, u2)})
    row = {u: i for i, u in enumerate(uris)}
    mean, std = top_cohort_stats(np.stack([embeddings[u] for u in uris]), cohort, top_n)
    std = np.maximum(std, 1e-12)  # a cohort of identical scores would divide by zero
    e = np.array([row[u1] for _, u1, _ in trials])
    t = np.array([row[u2] for _, _, u2 in trials])
    scores = np.asarray(scores, dtype=np.float64)
    return 0.5 * ((scores - mean[e]) / std[e] + (scores - mean[t]) / std[t])
