"""DET curves and score histograms against brute-force counts over a real score file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from engine.errors import SpkembError
from engine.layout import ValidationDir
from engine.validation.det import common_edges, det_curve, load_epoch, probit, probit_ticks, score_histograms, thinned
from engine.validation.score_files import write_scores


def trials(seed: int = 0, n_target: int = 60, n_nontarget: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """Scores rounded to 2 decimals, so that many trials tie (ties must move together)."""
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(0.6, 0.2, n_target), rng.normal(0.1, 0.2, n_nontarget)].round(2)
    return scores, np.r_[np.ones(n_target, bool), np.zeros(n_nontarget, bool)]


def brute_force(scores: np.ndarray, is_target: np.ndarray) -> list[tuple[float, float, float]]:
    """(threshold, P_miss, P_fa) by counting, trial by trial, at each distinct score and above all."""
    points = []
    for t in sorted(set(scores.tolist())) + [float("inf")]:
        misses = sum(1 for s, y in zip(scores, is_target, strict=True) if y and s < t)
        false_alarms = sum(1 for s, y in zip(scores, is_target, strict=True) if not y and s >= t)
        points.append((t, misses / is_target.sum(), false_alarms / (~is_target).sum()))
    return points


def test_det_points_match_brute_force_counts(tmp_path: Path) -> None:
    scores, is_target = trials()
    val = ValidationDir(tmp_path / "val")
    val.scores.mkdir(parents=True)
    write_scores(val.score_file(3), [(int(y), float(s), f"a{i}", f"b{i}")
                                     for i, (s, y) in enumerate(zip(scores, is_target, strict=True))])
    epoch = load_epoch(val, 3)
    curve = epoch.curve
    expected = brute_force(scores, is_target)
    assert len(curve.thresholds) == len(expected) < len(scores)  # ties grouped
    assert np.allclose(curve.thresholds[:-1], [t for t, _, _ in expected[:-1]])
    assert np.allclose(curve.p_miss, [m for _, m, _ in expected])
    assert np.allclose(curve.p_fa, [f for _, _, f in expected])
    assert (curve.n_target, curve.n_nontarget) == (60, 240)

    # the minDCF point is the brute-force minimum of the cost at P_target = 0.01
    costs = [(0.01 * m + 0.99 * f, m, f) for _, m, f in expected]
    best = min(costs)
    assert curve.min_dcf == pytest.approx(best[0] / 0.01)
    assert curve.min_dcf_point == pytest.approx((best[1], best[2]))
    # the EER lies between the miss and false-alarm rates of the points that bracket the crossing
    i = next(k for k, (_, m, f) in enumerate(expected) if m >= f)
    lo, hi = sorted([expected[i - 1][1], expected[i][1]])
    assert lo <= curve.eer <= hi

    # probit axes: the normal deviate, 0 and 1 moved half a trial inside
    assert np.allclose(curve.probit_miss(), norm.ppf(np.clip(curve.p_miss, 0.5 / 60, 1 - 0.5 / 60)))
    assert np.isfinite(curve.probit_fa()).all()


def test_histograms_count_every_trial_once_in_shared_bins() -> None:
    a, ya = trials(seed=1)
    b, yb = trials(seed=2, n_target=30, n_nontarget=90)
    edges = common_edges([a, b], bins=25)
    assert edges[0] == min(a.min(), b.min()) and edges[-1] == max(a.max(), b.max())
    h = score_histograms(a, ya, edges)
    assert h.target.sum() == pytest.approx(1.0) and h.nontarget.sum() == pytest.approx(1.0)
    k = 7
    in_bin = (a >= edges[k]) & (a < edges[k + 1])
    assert h.target[k] == pytest.approx(np.count_nonzero(in_bin & ya) / 60)
    assert h.nontarget[k] == pytest.approx(np.count_nonzero(in_bin & ~ya) / 240)
    assert len(h.centres) == 25


def test_thinned_keeps_the_ends_and_the_shape() -> None:
    scores, is_target = trials(n_target=3000, n_nontarget=30000)
    curve = det_curve(np.round(scores + np.random.default_rng(3).normal(0, 1e-3, scores.size), 4), is_target)
    x, y = curve.probit_fa(), curve.probit_miss()
    keep = thinned(x, y, cells=100)
    assert keep[0] == 0 and keep[-1] == len(x) - 1
    assert len(keep) < len(x) / 4
    # every point left out is within one cell of the kept point before it
    before = keep[np.searchsorted(keep, np.arange(len(x)), side="right") - 1]
    assert (np.abs(x - x[before]) <= (x.max() - x.min()) / 100 + 1e-9).all()
    assert (np.abs(y - y[before]) <= (y.max() - y.min()) / 100 + 1e-9).all()


def test_probit_ticks_are_labelled_in_percent() -> None:
    positions, labels = probit_ticks(float(probit(0.009, 10**6)), float(probit(0.5, 10**6)))
    assert labels == ["1", "2", "5", "10", "20", "40"]
    assert positions == pytest.approx(norm.ppf([0.01, 0.02, 0.05, 0.1, 0.2, 0.4]).tolist())


def test_missing_or_one_sided_score_file_names_the_fix(tmp_path: Path) -> None:
    val = ValidationDir(tmp_path / "val")
    with pytest.raises(SpkembError, match=r"0004\.txt does not exist: epoch 4 has not been scored"):
        load_epoch(val, 4)
    val.scores.mkdir(parents=True)
    write_scores(val.score_file(4), [(1, 0.5, "a", "b"), (1, 0.7, "a", "c")])
    with pytest.raises(SpkembError, match="both target and non-target"):
        load_epoch(val, 4)


def test_miss_rate_at_false_alarm_rates_against_counting():
    from engine.validation.det import miss_at_false_alarm

    scores, is_target = trials(5, n_target=300, n_nontarget=2000)
    curve = det_curve(scores, is_target)
    targets, nontargets = scores[is_target], scores[~is_target]
    for rate, found in zip((0.01, 0.001), miss_at_false_alarm(curve), strict=True):
        # the lowest threshold among the scores (and +inf) whose false alarms stay within the rate
        threshold = min(t for t in [*sorted(set(scores.tolist())), np.inf] if np.mean(nontargets >= t) <= rate)
        assert found == pytest.approx(np.mean(targets < threshold))
    # 240 non-target trials cannot measure 0.1 %
    assert miss_at_false_alarm(det_curve(*trials(0)))[1] is None
