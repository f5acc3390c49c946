"""DET curves and score histograms of a validated epoch, from its ``scores/{epoch}.txt`` file.

torch-free (numpy and scipy only): the TUI imports it to draw them.

A DET curve (Martin et al., "The DET curve in assessment of detection task performance",
Eurospeech 1997) plots the miss rate against the false-alarm rate over every threshold, both
on a normal-deviate (probit) scale, on which the two Gaussian score distributions give a
straight line. The operating points are those of :func:`engine.validation.metrics.roc_curve` (accept when
``score >= threshold``; one point per distinct score, plus "reject everything"); the EER and
minDCF points are the ones :mod:`engine.validation.metrics` reports for that epoch.

Probabilities 0 and 1 have no probit: they are drawn at ``0.5 / n`` and ``1 - 0.5 / n`` for
``n`` the trials of that class (half a trial beyond the smallest rate the trials can show).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtri

from engine.errors import SpkembError
from engine.layout import CheckpointName, ValidationDir
from engine.records import checkpoint_title
from engine.validation.metrics import equal_error_rate, roc_curve

#: the prior of a target trial of the minDCF point drawn on the curve (NIST SRE 2008-2010's 0.01)
P_TARGET = 0.01
#: DET axis ticks, as probabilities (0.1 %, 0.5 %, 1 %, 2 %, 5 %, ... 99.9 %)
TICKS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98,
         0.99, 0.995, 0.999, 0.9999)


@dataclass(frozen=True)
class DetCurve:
    """Operating points of one epoch, thresholds rising (P_miss rising, P_fa falling)."""

    thresholds: np.ndarray
    p_miss: np.ndarray
    p_fa: np.ndarray
    eer: float
    eer_threshold: float
    min_dcf: float
    #: (P_miss, P_fa) at the threshold of the minimum cost
    min_dcf_point: tuple[float, float]
    p_target: float
    n_target: int
    n_nontarget: int

    def probit_miss(self) -> np.ndarray:
        """P_miss on the probit scale (0 and 1 drawn half a target trial inside)."""
        return probit(self.p_miss, self.n_target)

    def probit_fa(self) -> np.ndarray:
        """P_fa on the probit scale (0 and 1 drawn half a non-target trial inside)."""
        return probit(self.p_fa, self.n_nontarget)


@dataclass(frozen=True)
class ScoreHistogram:
    """Target and non-target scores counted in the same bins, as fractions of their class."""

    edges: np.ndarray
    target: np.ndarray
    nontarget: np.ndarray

    @property
    def centres(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2


@dataclass(frozen=True)
class EpochScores:
    """One validated epoch's trials: what a DET view shows of it."""

    name: CheckpointName
    path: Path
    scores: np.ndarray
    is_target: np.ndarray
    curve: DetCurve


def probit(p: np.ndarray, n: int) -> np.ndarray:
    """Normal deviate of ``p``, with 0 and 1 moved half of one of ``n`` trials inside."""
    floor = 0.5 / max(n, 1)
    return ndtri(np.clip(np.asarray(p, dtype=np.float64), floor, 1.0 - floor))


def det_curve(scores: np.ndarray, is_target: np.ndarray, p_target: float = P_TARGET) -> DetCurve:
    """Every operating point of a set of trials, with the EER and minDCF points.

    Parameters
    ----------
    scores : array of float
        One score per trial; higher means "same speaker".
    is_target : array of bool
        True for target trials.
    p_target : float
        Prior of a target trial for the minDCF point (costs 1 and 1, normalised as
        :func:`engine.validation.metrics.min_dcf`).

    Returns
    -------
    DetCurve
    """
    thresholds, p_miss, p_fa = roc_curve(scores, is_target)
    eer, eer_threshold = equal_error_rate(scores, is_target)
    cost = p_target * p_miss + (1.0 - p_target) * p_fa
    best = int(np.argmin(cost))
    n_target = int(np.count_nonzero(is_target))
    return DetCurve(thresholds=thresholds, p_miss=p_miss, p_fa=p_fa, eer=eer, eer_threshold=eer_threshold,
                    min_dcf=float(cost[best] / min(p_target, 1.0 - p_target)),
                    min_dcf_point=(float(p_miss[best]), float(p_fa[best])), p_target=p_target,
                    n_target=n_target, n_nontarget=int(np.size(is_target)) - n_target)


#: the false-alarm rates at which the miss rate is tabled (1 %, 0.1 %)
FA_RATES = (0.01, 0.001)


def miss_at_false_alarm(curve: DetCurve, fa_rates: tuple[float, ...] = FA_RATES) -> tuple[float | None, ...]:
    """The miss rate at each false-alarm rate: that of the lowest threshold whose P_fa is at most
    the rate (an operating point the trials reach, not an interpolation). None for a rate below
    ``1 / n_nontarget``, which these trials cannot measure."""
    out: list[float | None] = []
    for rate in fa_rates:
        if rate * curve.n_nontarget < 1:
            out.append(None)
            continue
        # P_fa falls along the points: the first one at or below the rate has the fewest misses
        # (compared in counts of trials: 1 - 1980/2000 is a hair above 0.01 in floating point)
        false_alarms = np.rint(curve.p_fa * curve.n_nontarget)
        first = int(np.argmax(false_alarms <= rate * curve.n_nontarget + 1e-9))
        out.append(float(curve.p_miss[first]))
    return tuple(out)


def thinned(x: np.ndarray, y: np.ndarray, cells: int = 400) -> np.ndarray:
    """Indices of the points of a monotone curve to draw: the first of each run of consecutive
    points that fall in the same cell of a ``cells`` x ``cells`` grid over the curve's range,
    and the last point. A terminal shows a few hundred cells; VoxCeleb1-E has 580,000 trials."""
    def cell(v: np.ndarray) -> np.ndarray:
        span = float(v.max() - v.min()) or 1.0
        return np.floor((v - v.min()) / span * cells).astype(np.int64)

    cx, cy = cell(x), cell(y)
    keep = np.r_[True, (cx[1:] != cx[:-1]) | (cy[1:] != cy[:-1])]
    keep[-1] = True
    return np.flatnonzero(keep)


def probit_ticks(low: float, high: float, max_ticks: int = 8) -> tuple[list[float], list[str]]:
    """Probit positions and percent labels of the :data:`TICKS` between ``low`` and ``high`` (probits),
    every other one (or every third...) when more than ``max_ticks`` fall inside."""
    inside = [p for p in TICKS if low <= float(ndtri(p)) <= high]
    inside = inside[::-(-len(inside) // max(max_ticks, 1))] if inside else []
    return [float(ndtri(p)) for p in inside], [f"{100 * p:g}" for p in inside]


def score_histograms(scores: np.ndarray, is_target: np.ndarray, edges: np.ndarray) -> ScoreHistogram:
    """Target and non-target scores in the bins ``edges``, each as a fraction of its class."""
    scores, is_target = np.asarray(scores, dtype=np.float64), np.asarray(is_target, dtype=bool)
    target, _ = np.histogram(scores[is_target], bins=edges)
    nontarget, _ = np.histogram(scores[~is_target], bins=edges)
    return ScoreHistogram(edges=edges, target=target / max(int(is_target.sum()), 1),
                          nontarget=nontarget / max(int((~is_target).sum()), 1))


def common_edges(score_sets: list[np.ndarray], bins: int = 40) -> np.ndarray:
    """``bins + 1`` edges over the range of every set, so that overlaid histograms share bins."""
    low = min(float(s.min()) for s in score_sets)
    high = max(float(s.max()) for s in score_sets)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def read_trials(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(scores, is_target) of a ``reference score uri1 uri2`` file."""
    from engine.validation.score_files import read_scores

    is_target, scores = read_scores(path)
    return scores, is_target


def load_epoch(val_dir: ValidationDir, name: CheckpointName, p_target: float = P_TARGET) -> EpochScores:
    """The trials and DET curve of checkpoint ``name`` of ``val_dir``.

    Raises
    ------
    SpkembError
        When its score file is missing, unreadable, or holds only one kind of trial.
    """
    path = val_dir.score_file(name)
    if not path.is_file():
        raise SpkembError(f"{path} does not exist: {checkpoint_title(name)} has not been scored "
                          "in this validation; validate it first")
    try:
        scores, is_target = read_trials(path)
        curve = det_curve(scores, is_target, p_target)
    except OSError as e:
        raise SpkembError(f"{path} cannot be read ({e})") from e
    except ValueError as e:
        raise SpkembError(f"{path}: {e}; delete it and validate that epoch again") from e
    return EpochScores(name=name, path=path, scores=scores, is_target=is_target, curve=curve)
