"""Calibration of verification scores into log-likelihood ratios, and the figures of calibrated scores.

torch-free (numpy and scipy only): the TUI and ``engine.compare`` import it.

A cosine score says which trial is more likely a target than another, not how likely: it is no
log-likelihood ratio (LLR), and a threshold on it means nothing on another trial list. Calibration
maps it to one, ``llr = scale * score + offset``, fitted on a *calibration* trial list (another
list than the one evaluated) by logistic regression: the prior-weighted cross-entropy at a target
prior of 0.5, which is Cllr itself (Brümmer & du Preez 2006; BOSARIS ``train_llr_fusion``).
The plain score is the only feature: WeSpeaker's ``score_calibration`` adds quality measures (the
durations of the two files, the mean of their top cohort scores) to the same regression; those are
not used here.

Figures of the calibrated LLRs of the evaluated list:

* **actual DCF** at a target prior ``p``: the cost of the Bayes decision ``accept when
  llr >= log((1 - p) / p)``, ``p P_miss + (1 - p) P_fa``, normalised by ``min(p, 1 - p)``
  as minDCF is: its gap to minDCF is what miscalibration costs at that prior.
* **Cllr** (bits): ``1 / (2 ln 2) * (mean over targets of ln(1 + e^-llr) + mean over
  non-targets of ln(1 + e^llr))``; 0 for a perfect system, 1 for one that always says ``llr = 0``.
* **minCllr**: the Cllr of the best monotonic (hence best calibrated) mapping of the raw scores,
  found by pool-adjacent-violators (the ROC convex hull): the scores' ranking alone fixes it, so it
  needs no calibration list; ``Cllr - minCllr`` is the calibration loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: what the regression reads of a trial
FEATURES = "score"
#: the target prior the regression weighs the two classes by (that of Cllr)
TRAINING_PRIOR = 0.5


@dataclass(frozen=True)
class Calibration:
    """``llr = scale * score + offset``, fitted on the trials of ``trained_on``."""

    scale: float
    offset: float
    trained_on: str = ""
    features: str = FEATURES

    def llr(self, scores: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(scores, dtype=np.float64) + self.offset


@dataclass(frozen=True)
class CalibratedFigures:
    """What calibration adds to a validation: actual DCF at the minDCF priors, Cllr and minCllr."""

    min_cllr: float
    cllr: float | None = None
    actual_dcf_01: float | None = None
    actual_dcf_005: float | None = None
    calibration_list: str | None = None


def _split(scores, is_target) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    is_target = np.asarray(is_target, dtype=bool).ravel()
    if scores.shape != is_target.shape:
        raise ValueError(f"{scores.size} scores but {is_target.size} target flags")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite (NaN or inf found)")
    if is_target.all() or not is_target.any():
        raise ValueError("the trials need both target and non-target pairs")
    return scores[is_target], scores[~is_target]


def logistic_loss(llr_target: np.ndarray, llr_nontarget: np.ndarray, prior: float = TRAINING_PRIOR) -> float:
    """Prior-weighted cross-entropy (nats) of LLRs: what calibration minimises."""
    shift = np.log(prior / (1.0 - prior))
    return float(prior * np.logaddexp(0.0, -(llr_target + shift)).mean()
                 + (1.0 - prior) * np.logaddexp(0.0, llr_nontarget + shift).mean())


def train_calibration(scores, is_target, trained_on: str = "", prior: float = TRAINING_PRIOR) -> Calibration:
    """The affine map of scores to LLRs of least :func:`logistic_loss` on these trials.

    The loss is convex in (scale, offset); it is minimised by BFGS with its exact gradient,
    from (1, 0). Trials that one threshold separates perfectly have no minimum (the scale grows
    without bound): the scale reached when the loss stops falling is kept.
    """
    from scipy.optimize import minimize  # imported when used: seconds on a loaded machine

    target, nontarget = _split(scores, is_target)
    shift = np.log(prior / (1.0 - prior))

    def expit(x: np.ndarray) -> np.ndarray:
        return 0.5 * (1.0 + np.tanh(0.5 * x))   # the logistic function, without overflow

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        scale, offset = theta
        lt, ln = scale * target + offset + shift, scale * nontarget + offset + shift
        loss = prior * np.logaddexp(0.0, -lt).mean() + (1.0 - prior) * np.logaddexp(0.0, ln).mean()
        dt, dn = -prior * expit(-lt) / lt.size, (1.0 - prior) * expit(ln) / ln.size
        return float(loss), np.array([dt @ target + dn @ nontarget, dt.sum() + dn.sum()])

    found = minimize(loss_and_gradient, np.array([1.0, 0.0]), jac=True, method="BFGS",
                     options={"gtol": 1e-10, "maxiter": 1000})
    return Calibration(scale=float(found.x[0]), offset=float(found.x[1]), trained_on=trained_on)


def cllr(llr, is_target) -> float:
    """Cllr in bits (see the module docstring) of LLRs in nats (infinite ones allowed: PAV's)."""
    llr, is_target = np.asarray(llr, dtype=np.float64).ravel(), np.asarray(is_target, dtype=bool).ravel()
    if llr.shape != is_target.shape or np.isnan(llr).any() or is_target.all() or not is_target.any():
        raise ValueError("Cllr needs one LLR (not NaN) per trial, and both target and non-target trials")
    return float((np.logaddexp(0.0, -llr[is_target]).mean() + np.logaddexp(0.0, llr[~is_target]).mean())
                 / (2 * np.log(2)))


def pav_llr(scores, is_target) -> np.ndarray:
    """The LLR of each trial under the best monotonic mapping of its score (PAV).

    Equal scores are pooled first (no mapping can separate them); the isotonic regression of
    the target flags on the scores gives the posterior of a target at the list's own prior,
    whose log-odds minus the prior's are the LLRs (infinite at the ends that hold one class only).
    """
    from scipy.optimize import isotonic_regression

    scores = np.asarray(scores, dtype=np.float64).ravel()
    is_target = np.asarray(is_target, dtype=bool).ravel()
    _split(scores, is_target)
    distinct, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    targets = np.bincount(inverse, weights=is_target.astype(np.float64), minlength=distinct.size)
    posterior = isotonic_regression(targets / counts, weights=counts.astype(np.float64), increasing=True).x
    n_target = int(is_target.sum())
    prior_odds = np.log(n_target / (is_target.size - n_target))
    with np.errstate(divide="ignore"):
        log_odds = np.log(posterior) - np.log1p(-posterior)
    return (log_odds - prior_odds)[inverse]


def min_cllr(scores, is_target) -> float:
    """Cllr (bits) after the best monotonic mapping of the scores: the calibration-free part of Cllr."""
    return cllr(pav_llr(scores, is_target), is_target)


def actual_dcf(llr, is_target, p_target: float) -> float:
    """Normalised cost of the Bayes decisions of LLRs at ``p_target`` (costs 1 and 1)."""
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    target, nontarget = _split(llr, is_target)
    threshold = np.log((1.0 - p_target) / p_target)
    p_miss = float(np.mean(target < threshold))
    p_fa = float(np.mean(nontarget >= threshold))
    return (p_target * p_miss + (1.0 - p_target) * p_fa) / min(p_target, 1.0 - p_target)


def calibrated_figures(scores, is_target, calibration: Calibration | None) -> CalibratedFigures:
    """minCllr of the scores, and with ``calibration`` the Cllr and actual DCFs (priors 0.01 and 0.05,
    those of minDCF) of the LLRs it gives them."""
    low = min_cllr(scores, is_target)
    if calibration is None:
        return CalibratedFigures(min_cllr=low)
    llr = calibration.llr(scores)
    return CalibratedFigures(min_cllr=low, cllr=cllr(llr, is_target), actual_dcf_01=actual_dcf(llr, is_target, 0.01),
                             actual_dcf_005=actual_dcf(llr, is_target, 0.05),
                             calibration_list=calibration.trained_on or None)
