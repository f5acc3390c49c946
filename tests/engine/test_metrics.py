"""EER, minDCF and the bootstrap interval against values computed by hand or by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from engine.validation.metrics import bootstrap_eer_ci, equal_error_rate, min_dcf, roc_curve


def brute_force_points(scores, is_target):
    """(P_miss, P_fa) for 'accept if score >= t' at every candidate t, by counting in Python."""
    scores = [float(s) for s in scores]
    targets = [s for s, t in zip(scores, is_target, strict=True) if t]
    nontargets = [s for s, t in zip(scores, is_target, strict=True) if not t]
    points = []
    for thr in sorted(set(scores)) + [float("inf")]:
        miss = sum(s < thr for s in targets) / len(targets)
        fa = sum(s >= thr for s in nontargets) / len(nontargets)
        points.append((miss, fa))
    return points


def brute_force_min_dcf(scores, is_target, p):
    costs = [p * m + (1 - p) * f for m, f in brute_force_points(scores, is_target)]
    return min(costs) / min(p, 1 - p)


def test_hand_computed_case():
    # targets 0.9 0.8 0.4, non-targets 0.7 0.3 0.2 0.1. Accepting >= 0.4 gives (miss, fa) =
    # (0, 1/4); >= 0.7 gives (1/3, 1/4). The curves cross 3/4 of the way: EER = 1/4,
    # threshold = 0.4 + 0.75 * 0.3.
    scores = [0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1]
    is_target = [1, 1, 1, 0, 0, 0, 0]
    eer, threshold = equal_error_rate(scores, is_target)
    assert eer == pytest.approx(0.25)
    assert threshold == pytest.approx(0.625)
    # p=0.05: best point is >= 0.8 with (1/3, 0): 0.05/3 / 0.05 = 1/3
    assert min_dcf(scores, is_target, 0.05) == pytest.approx(1 / 3)
    # p=0.5: best is miss + fa = 1/4
    assert min_dcf(scores, is_target, 0.5) == pytest.approx(0.25)


def test_perfect_separation_is_zero():
    scores = np.r_[np.linspace(1, 2, 50), np.linspace(-1, 0.5, 70)]
    is_target = np.r_[np.ones(50, bool), np.zeros(70, bool)]
    eer, threshold = equal_error_rate(scores, is_target)
    assert eer == 0.0
    assert 0.5 < threshold <= 1.0
    assert min_dcf(scores, is_target, 0.01) == 0.0
    assert min_dcf(scores, is_target, 0.05) == 0.0


def test_reversed_scores_give_one():
    scores = np.r_[np.zeros(10), np.ones(10)]
    is_target = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    assert equal_error_rate(scores, is_target)[0] == pytest.approx(1.0)
    assert min_dcf(scores, is_target, 0.01) == pytest.approx(1.0)


def test_identical_distributions_give_one_half():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=40_000)
    is_target = rng.random(40_000) < 0.5
    eer, _ = equal_error_rate(scores, is_target)
    assert eer == pytest.approx(0.5, abs=0.01)
    assert min_dcf(scores, is_target, 0.01) == pytest.approx(1.0, abs=0.02)


def test_all_equal_scores_give_one_half():
    assert equal_error_rate(np.zeros(6), [1, 0, 1, 0, 0, 0])[0] == pytest.approx(0.5)


def test_ties_move_together_whatever_the_order():
    # one target and one non-target share score 1.0: no threshold separates them, so the
    # crossing is at miss = fa = 1/2. Breaking the tie by position would claim 1/4.
    scores = [1.0, 0.5, 1.0, 0.0]
    eer_a, _ = equal_error_rate([1.0, 1.0, 0.5, 0.0], [1, 0, 1, 0])
    eer_b, _ = equal_error_rate([1.0, 1.0, 0.5, 0.0], [0, 1, 1, 0])
    assert eer_a == eer_b == pytest.approx(0.5)
    assert min_dcf(scores, [1, 1, 0, 0], 0.5) == pytest.approx(
        brute_force_min_dcf(scores, [1, 1, 0, 0], 0.5))


def test_roc_and_min_dcf_match_brute_force_on_random_quantised_scores():
    rng = np.random.default_rng(7)
    is_target = rng.random(300) < 0.3
    scores = np.round(rng.normal(size=300) + 1.2 * is_target, 1)  # many ties
    thresholds, p_miss, p_fa = roc_curve(scores, is_target)
    assert np.isinf(thresholds[-1])
    assert np.allclose(np.c_[p_miss, p_fa], brute_force_points(scores, is_target))
    for p in (0.01, 0.05, 0.3):
        assert min_dcf(scores, is_target, p) == pytest.approx(brute_force_min_dcf(scores, is_target, p))
    eer, _ = equal_error_rate(scores, is_target)
    # where the segment between the two bracketing brute-force points meets miss == fa
    points = brute_force_points(scores, is_target)
    k = next(i for i, (m, f) in enumerate(points) if m >= f)
    (m0, f0), (m1, f1) = points[k - 1], points[k]
    w = (f0 - m0) / ((f0 - m0) - (f1 - m1))
    assert eer == pytest.approx(m0 + w * (m1 - m0))
    assert eer == pytest.approx(f0 + w * (f1 - f0))
    assert m0 <= eer <= m1 and f1 <= eer <= f0


def test_bootstrap_equals_a_loop_over_resampled_trials():
    rng = np.random.default_rng(3)
    is_target = rng.random(200) < 0.4
    scores = np.round(rng.normal(size=200) + 1.5 * is_target, 2)
    low, high = bootstrap_eer_ci(scores, is_target, n=200, seed=11)

    # the same draws, one replicate at a time through equal_error_rate (equal scores: non-targets first)
    order = np.lexsort((is_target, scores))
    s, t = scores[order], is_target[order]
    draws = np.random.default_rng(11).integers(0, 200, size=(200, 200))
    eers = [equal_error_rate(s[d], t[d])[0] for d in draws]
    assert (low, high) == pytest.approx(tuple(np.percentile(eers, [2.5, 97.5])))

    eer, _ = equal_error_rate(scores, is_target)
    assert low < eer < high
    assert bootstrap_eer_ci(scores, is_target, n=200, seed=11) == (low, high)


def test_a_replicate_of_one_class_has_no_eer():
    """40 targets and 2 non-targets: about 1 replicate in 9 draws no non-target, whose rate is 0/0;
    it was read as an EER and pulled the interval down ([0, 7.69] % against [0, 7.88] %)."""
    rng = np.random.default_rng(4)
    is_target = np.r_[np.ones(40, bool), np.zeros(2, bool)]
    scores = np.round(rng.normal(size=42) + 1.0 * is_target, 2)
    order = np.lexsort((is_target, scores))
    s, t = scores[order], is_target[order]
    draws = np.random.default_rng(0).integers(0, 42, size=(1000, 42))
    both = [d for d in draws if t[d].any() and not t[d].all()]
    assert 50 < 1000 - len(both) < 200
    expected = np.percentile([equal_error_rate(s[d], t[d])[0] for d in both], [2.5, 97.5])
    assert bootstrap_eer_ci(scores, is_target, n=1000, seed=0) == pytest.approx(tuple(expected))


def test_the_interval_does_not_depend_on_the_order_of_the_lines():
    rng = np.random.default_rng(6)
    is_target = rng.random(300) < 0.3
    scores = np.round(rng.normal(size=300) + 1.0 * is_target, 1)  # many ties across the classes
    shuffled = rng.permutation(300)
    assert bootstrap_eer_ci(scores[shuffled], is_target[shuffled], n=300) == bootstrap_eer_ci(scores, is_target,
                                                                                              n=300)


def test_bootstrap_interval_narrows_with_more_trials():
    rng = np.random.default_rng(5)

    def width(n_trials):
        is_target = rng.random(n_trials) < 0.5
        scores = rng.normal(size=n_trials) + 2.0 * is_target
        low, high = bootstrap_eer_ci(scores, is_target, n=300)
        return high - low

    assert width(20_000) < width(500) / 3


def test_one_class_only_is_an_error():
    with pytest.raises(ValueError, match="both target and non-target"):
        equal_error_rate([0.1, 0.2], [1, 1])


def test_trials_separated_without_an_error_have_an_interval_wider_than_zero():
    """An EER of 0 on 24 + 24 trials was reported `[95 % CI 0.00, 0.00]`: every replicate of trials
    that no threshold misorders is itself error-free. The upper end is the exact binomial bound."""
    is_target = np.r_[np.ones(24, bool), np.zeros(30, bool)]
    scores = np.where(is_target, 1.0, -1.0) + np.linspace(0, 0.5, is_target.size)
    assert equal_error_rate(scores, is_target)[0] == 0.0
    low, high = bootstrap_eer_ci(scores, is_target, n=200)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 24))  # 0.142: of the 24 targets
    # one misordered trial: the bootstrap's own interval, unchanged
    scores[0] = -2.0
    low, high = bootstrap_eer_ci(scores, is_target, n=200)
    assert low == 0.0 and high > 0.0 and high != pytest.approx(1 - 0.025 ** (1 / 24))
