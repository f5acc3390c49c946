"""Speaker-verification metrics: ROC, equal error rate, minDCF, a bootstrap interval of the EER, and
the EER and minDCF of weighted trials (the replicates of ``engine.compare.significance``).

numpy (and scipy.sparse, imported by ``weighted_errors``), no torch: the TUI and
``engine.validation.selection`` import it.

Conventions
-----------
A trial is accepted when its score is ``>= threshold``. The ROC is evaluated at every
distinct score (equal scores move together: a threshold cannot separate them) plus the
"reject everything" point, giving operating points from (P_miss, P_fa) = (0, 1) to (1, 0).

* **EER**: the miss curve rises and the false-alarm curve falls along these points; the EER
  is where the two cross, found by linear interpolation between the two consecutive
  operating points that bracket the crossing.
* **minDCF**: ``min over points of C_miss * P_miss * p + C_fa * P_fa * (1 - p)``, normalised
  by ``min(C_miss * p, C_fa * (1 - p))`` -- the cost of the best trivial system -- as
  NIST SRE and Kaldi's ``compute_min_dcf.py`` do.
* **EER interval**: trials resampled with replacement (percentile bootstrap, Efron &
  Tibshirani 1993), all replicates computed on the same sorted scores by counting how many
  times each trial was drawn.
"""

from __future__ import annotations

import numpy as np

__all__ = ["roc_curve", "equal_error_rate", "min_dcf", "bootstrap_eer_ci", "weighted_errors"]


def _as_arrays(scores, is_target) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    is_target = np.asarray(is_target).astype(bool).ravel()
    if scores.shape != is_target.shape:
        raise ValueError(f"{scores.size} scores but {is_target.size} target flags")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite (NaN or inf found)")
    n_target = int(is_target.sum())
    if n_target == 0 or n_target == is_target.size:
        raise ValueError("the trials need both target and non-target pairs "
                         f"({n_target} target of {is_target.size})")
    return scores, is_target


def _grouped(scores: np.ndarray, is_target: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort once and group equal scores: (order, group start indices, distinct scores, group id).

    Equal scores are ordered by class, non-targets first, rather than by where their lines stand:
    the bootstrap draws positions in this order, so the same trials listed in another order get
    the same interval.
    """
    order = np.lexsort((is_target, scores))
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    group = np.cumsum(np.r_[False, sorted_scores[1:] != sorted_scores[:-1]])
    return order, starts, sorted_scores[starts], group


def _curves(target_counts: np.ndarray, nontarget_counts: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """P_miss and P_fa at each distinct score then at +inf, from (replicates, groups) weights.

    At the threshold of group k, the trials of groups < k are rejected: misses among the
    targets; the others are accepted: false alarms among the non-targets.
    """
    zeros = np.zeros(target_counts.shape[:-1] + (1,))
    cum_t = np.concatenate([zeros, np.cumsum(target_counts, axis=-1)], axis=-1)
    cum_n = np.concatenate([zeros, np.cumsum(nontarget_counts, axis=-1)], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_miss = cum_t / cum_t[..., -1:]
        p_fa = 1.0 - cum_n / cum_n[..., -1:]
    return p_miss, p_fa


def _crossing(p_miss: np.ndarray, p_fa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index i of the first point with P_miss >= P_fa, interpolation weight and EER, per row."""
    d = p_fa - p_miss                      # falls from +1 (accept all) to -1 (reject all)
    i = np.argmax(d <= 0, axis=-1)         # >= 1 since d[0] = 1
    i = np.maximum(i, 1)
    rows = np.arange(d.shape[0])
    d0, d1 = d[rows, i - 1], d[rows, i]
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(d0 - d1 > 0, d0 / (d0 - d1), 1.0)
    m0, m1 = p_miss[rows, i - 1], p_miss[rows, i]
    return i, alpha, m0 + alpha * (m1 - m0)


def roc_curve(scores, is_target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Operating points of a verification system over all thresholds.

    Parameters
    ----------
    scores : array-like of float
        One score per trial; higher means "same speaker".
    is_target : array-like of bool
        True for target (same-speaker) trials.

    Returns
    -------
    thresholds, p_miss, p_fa : np.ndarray
        ``len(distinct scores) + 1`` points; the last threshold is ``+inf`` (reject all).
        Accepting means ``score >= threshold``.
    """
    scores, is_target = _as_arrays(scores, is_target)
    order, starts, distinct, _ = _grouped(scores, is_target)
    t = is_target[order].astype(np.float64)
    tc = np.add.reduceat(t, starts)
    nc = np.add.reduceat(1.0 - t, starts)
    p_miss, p_fa = _curves(tc[None], nc[None])
    return np.r_[distinct, np.inf], p_miss[0], p_fa[0]


def equal_error_rate(scores, is_target) -> tuple[float, float]:
    """Equal error rate and the threshold where it is reached.

    Parameters
    ----------
    scores : array-like of float
        One score per trial; higher means "same speaker".
    is_target : array-like of bool
        True for target trials.

    Returns
    -------
    eer : float
        Where the miss and false-alarm curves cross, linearly interpolated between the two
        operating points that bracket the crossing (0 for a perfect separation, 0.5 when
        all scores are equal).
    threshold : float
        The threshold interpolated the same way (accept when ``score >= threshold``).
    """
    thresholds, p_miss, p_fa = roc_curve(scores, is_target)
    first, weight, eer = _crossing(p_miss[None], p_fa[None])
    i, alpha = int(first[0]), float(weight[0])
    t0 = thresholds[i - 1]
    t1 = thresholds[i] if np.isfinite(thresholds[i]) else np.nextafter(t0, np.inf)
    return float(eer[0]), float(t0 + alpha * (t1 - t0))


def min_dcf(scores, is_target, p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised minimum detection cost (NIST SRE, Kaldi ``compute_min_dcf.py``).

    Parameters
    ----------
    scores, is_target : array-like
        Trial scores and target flags.
    p_target : float
        Prior of a target trial, e.g. 0.01 or 0.05.
    c_miss, c_fa : float
        Costs of a miss and of a false alarm.

    Returns
    -------
    float
        ``min_t (c_miss p P_miss(t) + c_fa (1-p) P_fa(t)) / min(c_miss p, c_fa (1-p))``, in [0, 1].
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    _, p_miss, p_fa = roc_curve(scores, is_target)
    cost = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return float(cost.min() / min(c_miss * p_target, c_fa * (1.0 - p_target)))


def bootstrap_eer_ci(scores, is_target, n: int = 1000, seed: int = 0,
                     alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the EER.

    The trials are resampled with replacement ``n`` times (numpy ``default_rng(seed)``), the
    EER of each replicate computed exactly as :func:`equal_error_rate` does, and the
    ``alpha/2`` and ``1 - alpha/2`` percentiles returned. Scores are sorted once; a replicate
    is the number of times each trial was drawn, so the whole bootstrap is a few array
    operations per chunk of replicates. Replicates that drew no target (or no non-target)
    trial have no EER and are left out.

    Where every target trial scores above every non-target one, every replicate's EER is 0 too,
    and the percentile interval would be [0, 0] whatever the number of trials. The upper end is
    then Clopper and Pearson's exact bound for no error among the smaller class's trials,
    ``1 - (alpha/2) ** (1/m)`` (24 of each: 0.142).

    Parameters
    ----------
    scores, is_target : array-like
        Trial scores and target flags.
    n : int
        Number of bootstrap replicates (default 1000).
    seed : int
        Seed of the resampling, so that the interval of an epoch is reproducible.
    alpha : float
        1 - confidence level (0.05 for a 95 % interval).

    Returns
    -------
    (low, high) : tuple of float
    """
    scores, is_target = _as_arrays(scores, is_target)
    order, starts, _, group = _grouped(scores, is_target)
    t = is_target[order]
    n_trials, n_groups = scores.size, starts.size
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n, 2_000_000 // max(n_trials, 1)))
    per_chunk: list[np.ndarray] = []
    for first in range(0, n, chunk):
        rows = min(chunk, n - first)
        drawn = rng.integers(0, n_trials, size=(rows, n_trials))
        # drawn indices are positions in the sorted order: only their group and class matter
        key = group[drawn] * 2 + t[drawn] + (np.arange(rows)[:, None] * (2 * n_groups))
        counts = np.bincount(key.ravel(), minlength=rows * 2 * n_groups).reshape(rows, n_groups, 2)
        p_miss, p_fa = _curves(counts[..., 1].astype(np.float64), counts[..., 0].astype(np.float64))
        _, _, eer = _crossing(p_miss, p_fa)
        # a replicate of one class: a rate is 0/0, which the crossing would still read as an EER
        one_class = (counts[..., 0].sum(axis=-1) == 0) | (counts[..., 1].sum(axis=-1) == 0)
        per_chunk.append(np.where(one_class, np.nan, eer))
    eers = np.concatenate(per_chunk)
    eers = eers[np.isfinite(eers)]
    low, high = np.percentile(eers, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    if scores[is_target].min() > scores[~is_target].max():  # no error to resample
        high = 1.0 - (alpha / 2) ** (1.0 / min(int(is_target.sum()), int((~is_target).sum())))
    return float(low), float(high)


def weighted_errors(scores, is_target, weights: np.ndarray, p_targets: tuple[float, ...] = (0.01,),
                    clusters: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """EER and minDCF of the same trials under several weightings, one row of ``weights`` each.

    A bootstrap replicate is a weighting: how many times each trial was drawn (or each
    speaker, every trial of it then weighing that much). Computed exactly as
    :func:`equal_error_rate` and :func:`min_dcf` are (weights of 1 give their figures), on scores
    sorted once.

    Parameters
    ----------
    scores, is_target : array-like
        Trial scores and target flags (n trials).
    weights : array of shape (R, n), or (R, C) with ``clusters``
        Non-negative weight of each trial (or of each cluster) in each of R weightings.
    p_targets : tuple of float
        Target priors of the minDCFs (costs 1 and 1, normalised).
    clusters : array of int, optional
        The cluster (0 to C - 1) of each trial, whose weight it takes.

    Returns
    -------
    eer : array of shape (R,)
        NaN for a weighting that leaves no target (or no non-target) trial.
    min_dcf : array of shape (R, len(p_targets))
    """
    from scipy.sparse import csr_matrix

    scores, is_target = _as_arrays(scores, is_target)
    order, starts, _, group = _grouped(scores, is_target)
    owner = (np.arange(scores.size) if clusters is None else np.asarray(clusters))[order]
    w = np.asarray(weights, dtype=np.float64)
    t = is_target[order]
    shape = (starts.size, w.shape[1])
    # (distinct scores x clusters) counts of each class: a replicate's counts at each score are one
    # sparse product, never an (R, n) array of per-trial weights
    counts = [csr_matrix((np.ones(int(np.count_nonzero(m))), (group[m], owner[m])), shape=shape) for m in (t, ~t)]
    target_counts, nontarget_counts = ((c @ w.T).T for c in counts)
    p_miss, p_fa = _curves(np.ascontiguousarray(target_counts), np.ascontiguousarray(nontarget_counts))
    _, _, eer = _crossing(p_miss, p_fa)
    # no non-target: P_fa is 0/0 everywhere, which the crossing would still read as an EER
    eer = np.where(np.asarray(nontarget_counts).sum(axis=-1) > 0, eer, np.nan)
    dcfs = np.stack([(p * p_miss + (1.0 - p) * p_fa).min(axis=-1) / min(p, 1.0 - p) for p in p_targets], axis=-1)
    return eer, dcfs
