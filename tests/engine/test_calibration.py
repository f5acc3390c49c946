"""Calibration against a brute-force search of the logistic loss, Cllr against its definition, minCllr
against the best of every monotonic step mapping, and the actual DCF against counted decisions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from engine.validation.calibration import (
    Calibration,
    actual_dcf,
    calibrated_figures,
    cllr,
    logistic_loss,
    min_cllr,
    pav_llr,
    train_calibration,
)
from engine.validation.metrics import min_dcf


def trials(seed: int = 0, n_target: int = 40, n_nontarget: int = 120, scale: float = 0.2):
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(0.6, scale, n_target), rng.normal(0.1, scale, n_nontarget)].round(3)
    return scores, np.r_[np.ones(n_target, bool), np.zeros(n_nontarget, bool)]


def test_cllr_is_its_definition_trial_by_trial():
    llr = [2.0, -0.5, 0.3, -3.0, 1.5, 0.0]
    is_target = [True, True, True, False, False, False]
    targets = [math.log2(1 + math.exp(-x)) for x, t in zip(llr, is_target, strict=True) if t]
    nontargets = [math.log2(1 + math.exp(x)) for x, t in zip(llr, is_target, strict=True) if not t]
    assert cllr(llr, is_target) == pytest.approx((sum(targets) / 3 + sum(nontargets) / 3) / 2)
    assert cllr([0.0] * 6, is_target) == pytest.approx(1.0)   # an uninformative system: 1 bit


def test_calibration_is_the_minimum_of_the_logistic_loss_found_by_brute_force():
    scores, is_target = trials(1)
    fitted = train_calibration(scores, is_target, trained_on="Demo.development")
    t, n = scores[is_target], scores[~is_target]

    def loss(scale, offset):
        return logistic_loss(scale * t + offset, scale * n + offset)

    # a grid around the optimum, refined twice: no point beats the fit
    centre, step = (0.0, 0.0), (20.0, 10.0)
    for _ in range(3):
        grid = [(centre[0] + i * step[0] / 20, centre[1] + j * step[1] / 20)
                for i, j in itertools.product(range(-20, 21), repeat=2)]
        centre = min(grid, key=lambda p: loss(*p))
        step = (step[0] / 10, step[1] / 10)
    assert fitted.scale == pytest.approx(centre[0], abs=0.02)
    assert fitted.offset == pytest.approx(centre[1], abs=0.01)
    assert loss(fitted.scale, fitted.offset) <= loss(*centre) + 1e-9
    # at prior 0.5 the loss is Cllr in nats: the calibrated LLRs of the training list have the least Cllr
    assert cllr(fitted.llr(scores), is_target) == pytest.approx(loss(fitted.scale, fitted.offset) / math.log(2))
    assert fitted.trained_on == "Demo.development" and fitted.features == "score"


def best_step_mapping_cllr(scores, is_target):
    """minCllr by brute force: every monotonic mapping is constant on blocks of consecutive distinct
    scores; for fixed blocks the best LLR of each is its log target/non-target ratio over the prior's.
    The least Cllr over every partition into consecutive blocks that makes the LLRs non-decreasing."""
    distinct = np.unique(scores)
    tc = np.array([np.sum(is_target & (scores == s)) for s in distinct], dtype=float)
    nc = np.array([np.sum(~is_target & (scores == s)) for s in distinct], dtype=float)
    prior = np.log(tc.sum() / nc.sum())
    best = math.inf
    for cuts in itertools.product([False, True], repeat=distinct.size - 1):
        edges = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [distinct.size]
        blocks = [(tc[a:b].sum(), nc[a:b].sum()) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        with np.errstate(divide="ignore"):
            llrs = [np.log(bt) - np.log(bn) - prior for bt, bn in blocks]
        if any(x > y for x, y in zip(llrs[:-1], llrs[1:], strict=True)):
            continue
        total_t = sum(bt * np.logaddexp(0, -x) for (bt, _), x in zip(blocks, llrs, strict=True) if bt)
        total_n = sum(bn * np.logaddexp(0, x) for (_, bn), x in zip(blocks, llrs, strict=True) if bn)
        best = min(best, (total_t / tc.sum() + total_n / nc.sum()) / (2 * math.log(2)))
    return best


def test_min_cllr_is_the_best_monotonic_mapping_found_by_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(5):
        scores = rng.integers(0, 9, 24).astype(float)          # ties included: 9 distinct scores at most
        is_target = rng.random(24) < 0.5 + scores / 40
        if is_target.all() or not is_target.any():
            continue
        assert min_cllr(scores, is_target) == pytest.approx(best_step_mapping_cllr(scores, is_target))


def test_min_cllr_is_at_most_cllr_and_ignores_monotonic_maps():
    scores, is_target = trials(3)
    fitted = train_calibration(scores, is_target)
    assert min_cllr(scores, is_target) <= cllr(fitted.llr(scores), is_target) + 1e-12
    for mapped in (np.exp(3 * scores), scores ** 3 - 7, np.arctan(scores)):
        assert min_cllr(mapped, is_target) == pytest.approx(min_cllr(scores, is_target))
    ranked = pav_llr(scores, is_target)[np.argsort(scores)]
    assert np.all(ranked[1:] >= ranked[:-1])   # infinite at the ends: no differences taken


def test_actual_dcf_counts_the_bayes_decisions_and_is_at_least_min_dcf():
    scores, is_target = trials(4)
    cal = Calibration(scale=8.0, offset=-3.0)
    llr = cal.llr(scores)
    for p in (0.01, 0.05, 0.3):
        threshold = math.log((1 - p) / p)
        misses = sum(1 for x, t in zip(llr, is_target, strict=True) if t and x < threshold) / is_target.sum()
        fas = sum(1 for x, t in zip(llr, is_target, strict=True) if not t and x >= threshold) / (~is_target).sum()
        assert actual_dcf(llr, is_target, p) == pytest.approx((p * misses + (1 - p) * fas) / min(p, 1 - p))
        assert actual_dcf(llr, is_target, p) >= min_dcf(scores, is_target, p) - 1e-12


def test_figures_without_a_calibration_list_hold_min_cllr_only():
    scores, is_target = trials(5)
    assert calibrated_figures(scores, is_target, None).cllr is None
    figures = calibrated_figures(scores, is_target, train_calibration(*trials(6), trained_on="X.development"))
    assert figures.calibration_list == "X.development"
    assert figures.min_cllr <= figures.cllr
    assert None not in (figures.actual_dcf_01, figures.actual_dcf_005)
