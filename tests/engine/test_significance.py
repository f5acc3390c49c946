"""The paired bootstrap against brute force: each replicate's figures on the trials it drew, written out
one copy per draw, and the interval against the exact bootstrap distribution enumerated over every draw."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine.compare.significance import (
    A_BETTER,
    B_BETTER,
    NO_DIFFERENCE,
    compare_files,
    draw_counts,
    draw_weights,
    paired_bootstrap,
    paired_bootstraps,
    paired_from_files,
    speaker_clusters,
    verdict,
)
from engine.errors import SpkembError
from engine.validation.metrics import equal_error_rate, min_dcf, weighted_errors
from engine.validation.score_files import write_scores


def tiny(seed: int, speakers: int = 4, per_speaker: int = 6, shift: float = 0.0):
    """Per speaker: half target trials, half non-target; system B separates them ``shift`` better."""
    rng = np.random.default_rng(seed)
    is_target = np.tile(np.r_[np.ones(per_speaker // 2, bool), np.zeros(per_speaker // 2, bool)], speakers)
    clusters = np.repeat(np.arange(speakers), per_speaker)
    a = np.where(is_target, 0.5, 0.0) + rng.normal(0, 0.4, is_target.size)
    b = a + np.where(is_target, shift, -shift) + rng.normal(0, 0.1, is_target.size)
    return a.round(3), b.round(3), is_target, clusters


def test_each_replicate_is_the_figure_of_the_trials_it_drew():
    a, _, t, clusters = tiny(0)
    for counts, weights in zip(draw_counts(clusters, t.size, 20, seed=3), draw_weights(clusters, t.size, 20, seed=3),
                               strict=True):
        eer, dcf = weighted_errors(a, t, weights, (0.01, 0.05))
        # weighing the speakers is weighing each of their trials
        by_speaker = weighted_errors(a, t, counts, (0.01, 0.05), clusters)
        np.testing.assert_allclose(by_speaker[0], eer)
        np.testing.assert_allclose(by_speaker[1], dcf)
        for row in range(weights.shape[0]):
            copies = weights[row].astype(int)
            sa, st = np.repeat(a, copies), np.repeat(t, copies)
            if st.all() or not st.any():
                assert np.isnan(eer[row])
                continue
            assert eer[row] == pytest.approx(equal_error_rate(sa, st)[0])
            assert dcf[row, 0] == pytest.approx(min_dcf(sa, st, 0.01))
            assert dcf[row, 1] == pytest.approx(min_dcf(sa, st, 0.05))


def test_speakers_are_drawn_whole():
    _, _, t, clusters = tiny(1)
    for weights in draw_weights(clusters, t.size, 50, seed=0):
        for row in weights:
            # every trial of a speaker weighs the same: the number of times that speaker was drawn
            per_speaker = [set(row[clusters == s].tolist()) for s in range(4)]
            assert all(len(w) == 1 for w in per_speaker)
            assert sum(w.pop() for w in per_speaker) == 4


def exact_distribution(a, b, t, clusters):
    """Every ordered draw of the speakers (each equally likely) and its EER difference."""
    speakers = int(clusters.max()) + 1
    out = []
    for draw in itertools.product(range(speakers), repeat=speakers):
        copies = np.bincount(np.asarray(draw), minlength=speakers)[clusters]
        sa, sb, st = np.repeat(a, copies), np.repeat(b, copies), np.repeat(t, copies)
        out.append(equal_error_rate(sa, st)[0] - equal_error_rate(sb, st)[0])
    return np.asarray(out)


def test_the_interval_is_that_of_the_exact_bootstrap_distribution():
    a, b, t, clusters = tiny(2, speakers=5, shift=0.3)
    exact = exact_distribution(a, b, t, clusters)   # 5^5 = 3125 draws
    d = paired_bootstrap(a, b, t, clusters, n=20000, seed=1)
    # the percentiles of 20,000 replicates fall between the exact distribution's nearby quantiles
    assert np.quantile(exact, 0.015) <= d.low <= np.quantile(exact, 0.035)
    assert np.quantile(exact, 0.965) <= d.high <= np.quantile(exact, 0.985)
    assert d.difference == pytest.approx(equal_error_rate(a, t)[0] - equal_error_rate(b, t)[0])
    assert d.unit == "speakers" and d.units == 5 and d.replicates == 20000


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    a, b, t, clusters = tiny(3, speakers=6)
    first = paired_bootstraps(a, b, t, clusters, n=300, seed=7)
    assert first == paired_bootstraps(a, b, t, clusters, n=300, seed=7)
    assert first != paired_bootstraps(a, b, t, clusters, n=300, seed=8)
    assert [d.metric for d in first] == ["eer", "mindcf_01", "mindcf_005"]


def test_the_verdict_names_the_better_system():
    a, b, t, clusters = tiny(4, speakers=8, per_speaker=40, shift=1.0)
    assert paired_bootstrap(a, b, t, clusters, n=400).verdict == B_BETTER
    assert paired_bootstrap(b, a, t, clusters, n=400).verdict == A_BETTER
    same = paired_bootstrap(a, a.copy(), t, clusters, n=200)
    assert same.verdict == NO_DIFFERENCE and same.low == same.high == 0
    assert verdict(-0.2, -0.1) == A_BETTER and verdict(0.1, 0.2) == B_BETTER and verdict(-0.1, 0.0) == NO_DIFFERENCE


def test_trials_are_drawn_when_the_uris_name_no_speaker():
    assert speaker_clusters(["a/x/1", "b/y/2", "c/z/3", "d/w/4", "e/v/5", "a/x/2"]).tolist() == [0, 1, 2, 3, 4, 0]
    assert speaker_clusters(["a/x/1", "b/y/2", "c/z/3", "d/w/4"]) is None       # fewer than 5 speakers
    assert speaker_clusters(["a1", "b/y/2", "c/z/3", "d/w/4", "e/v/5"]) is None  # a uri without speaker


def _write(path: Path, scores, is_target, uris):
    write_scores(path, ((int(r), float(s), u1, u2) for r, s, (u1, u2) in zip(is_target, scores, uris, strict=True)))


def test_score_files_are_paired_by_their_uris(tmp_path):
    a, b, t, clusters = tiny(5, speakers=6)
    uris = [(f"spk{c}/s/{i:05d}", f"spk{(c + 1) % 6}/s/{i:05d}") for i, c in enumerate(clusters)]
    _write(tmp_path / "a.txt", a, t, uris)
    order = np.random.default_rng(0).permutation(t.size)   # B lists the same trials in another order
    _write(tmp_path / "b.txt", b[order], t[order], [uris[i] for i in order])
    paired = paired_from_files(tmp_path / "a.txt", tmp_path / "b.txt")
    by_uris = sorted(range(t.size), key=lambda i: uris[i])  # paired in the uris' order, not a file's
    assert paired.unit == "speakers" and np.allclose(paired.scores_b, b[by_uris], atol=1e-6)
    assert paired.is_target.tolist() == t[by_uris].tolist()
    differences = compare_files(tmp_path / "a.txt", tmp_path / "b.txt", n=100)
    assert differences == paired_bootstraps(paired.scores_a, paired.scores_b, paired.is_target, paired.clusters,
                                            n=100)
    _write(tmp_path / "c.txt", b[:-1], t[:-1], uris[:-1])
    with pytest.raises(SpkembError, match="do not score the same trials"):
        paired_from_files(tmp_path / "a.txt", tmp_path / "c.txt")


def test_the_intervals_do_not_depend_on_the_order_of_a_files_lines(tmp_path):
    # uris that name no speaker: trials are drawn one by one, by their place in the pairing
    a, b, t, _ = tiny(7, speakers=6)
    uris = [(f"a{i}", f"b{i}") for i in range(t.size)]
    _write(tmp_path / "a.txt", a, t, uris)
    _write(tmp_path / "b.txt", b, t, uris)
    order = np.random.default_rng(1).permutation(t.size)
    _write(tmp_path / "a2.txt", a[order], t[order], [uris[i] for i in order])
    assert paired_from_files(tmp_path / "a.txt", tmp_path / "b.txt").unit == "trials"
    assert compare_files(tmp_path / "a2.txt", tmp_path / "b.txt", n=200) == compare_files(
        tmp_path / "a.txt", tmp_path / "b.txt", n=200)


@pytest.mark.parametrize("line", ["7 0.5 spk0/s/00000 spk1/s/00000", "1 nan spk0/s/00000 spk1/s/00000",
                                  "1 0.5 spk0/s/00000"])
def test_a_score_line_that_is_no_trial_is_named_by_file_and_line(tmp_path, line: str):
    """A reference of 7 was read as a non-target: 'one trial list changed' blamed the other file."""
    a, b, t, clusters = tiny(5, speakers=6)
    uris = [(f"spk{c}/s/{i:05d}", f"spk{(c + 1) % 6}/s/{i:05d}") for i, c in enumerate(clusters)]
    _write(tmp_path / "a.txt", a, t, uris)
    _write(tmp_path / "b.txt", b, t, uris)
    lines = (tmp_path / "b.txt").read_text().splitlines()
    (tmp_path / "b.txt").write_text("\n".join([*lines[:2], line, *lines[3:]]) + "\n")
    with pytest.raises(SpkembError, match=re.escape(f"b.txt:3: expected `reference score uri1 uri2` (reference 0 or "
                                                    f"1, a finite score), got {line!r}")):
        paired_from_files(tmp_path / "a.txt", tmp_path / "b.txt")


def test_groups_average_their_seeds_and_draw_them_too():
    from engine.compare.significance import group_bootstraps

    a1, b1, t, clusters = tiny(6, speakers=6, per_speaker=20, shift=0.6)
    a2, b2, _, _ = tiny(7, speakers=6, per_speaker=20, shift=0.6)
    a3 = a1 + np.random.default_rng(1).normal(0, 0.05, a1.size)
    (d,) = group_bootstraps([a1, a2, a3], [b1, b2], t, clusters, metrics=("eer",), n=300)
    mean_a = np.mean([equal_error_rate(s, t)[0] for s in (a1, a2, a3)])
    mean_b = np.mean([equal_error_rate(s, t)[0] for s in (b1, b2)])
    assert d.difference == pytest.approx(mean_a - mean_b) and d.seeds == (3, 2)
    # one run a side: exactly the paired bootstrap of the two runs
    assert group_bootstraps([a1], [b1], t, clusters, n=200) == paired_bootstraps(a1, b1, t, clusters, n=200)
    # seeds that all scored alike: whichever seeds a replicate draws, it is the runs' own replicate
    same = group_bootstraps([a1, a1, a1], [b1, b1], t, clusters, n=200)
    for grouped, single in zip(same, paired_bootstraps(a1, b1, t, clusters, n=200), strict=True):
        assert (grouped.low, grouped.high, grouped.difference) == pytest.approx((single.low, single.high,
                                                                                 single.difference))
    # seeds that differ: the interval holds their spread too, wider than that of one seed a side
    (alone,) = group_bootstraps([a1], [b1], t, clusters, metrics=("eer",), n=300)
    (spread,) = group_bootstraps([a1, a1 + 0.8 * t], [b1], t, clusters, metrics=("eer",), n=300)
    assert spread.high - spread.low > alone.high - alone.low


def test_a_replicate_without_a_non_target_has_no_eer():
    """P_fa is 0/0 then: the crossing still read an EER off it (0.0 here), kept in the interval."""
    eer, dcf = weighted_errors([1.0, 0.0], [True, False], [[2, 0], [0, 2], [1, 1]], (0.01,))
    assert np.isnan(eer[0]) and np.isnan(eer[1]) and eer[2] == 0.0
    assert np.isnan(dcf[0, 0]) and np.isnan(dcf[1, 0])


def test_a_pair_the_trial_list_repeats_counts_each_time(tmp_path):
    """The pairing kept one line per (uri1, uri2): with a pair listed 7 times, Compare's A was 0.35 where
    validate had recorded 0.3077 for the same file."""
    a, b, t, clusters = tiny(7, speakers=6)
    uris = [(f"spk{c}/s/{i:05d}", f"spk{(c + 1) % 6}/s/{i:05d}") for i, c in enumerate(clusters)]
    non_target = int(np.flatnonzero(~t)[0])
    repeat = [non_target] * 6
    rows = list(range(t.size)) + repeat
    _write(tmp_path / "a.txt", a[rows], t[rows], [uris[i] for i in rows])
    _write(tmp_path / "b.txt", b[rows], t[rows], [uris[i] for i in rows])
    paired = paired_from_files(tmp_path / "a.txt", tmp_path / "b.txt")
    assert paired.scores_a.size == len(rows)
    assert equal_error_rate(paired.scores_a, paired.is_target)[0] == pytest.approx(
        equal_error_rate(a[rows], t[rows])[0])


def _one_setup() -> tuple[np.ndarray, np.ndarray, Callable[[], np.ndarray]]:
    """Trials of 30 speakers (a fifth of them targets), and a training of one setup: each call a seed, with
    its own separation and its own errors."""
    speakers, per_speaker = 30, 40
    clusters = np.repeat(np.arange(speakers), per_speaker)
    t = np.arange(clusters.size) % 5 == 0
    rng = np.random.default_rng(123)

    def run() -> np.ndarray:
        return np.where(t, 2 + rng.normal(0, 0.25), 0.0) + rng.normal(0, 1, t.size)

    return t, clusters, run


def test_two_seeds_a_side_of_one_setup_are_rarely_called_different():
    """Identical setups whose seeds train unequally: drawing two seeds with replacement as the
    replicates did called one side better in about one comparison in five (the interval held half
    the spread between seeds). With Welch's part for the seeds it is one in twenty, at most."""
    from engine.compare.significance import group_bootstraps

    t, clusters, run = _one_setup()
    called = [group_bootstraps([run(), run()], [run(), run()], t, clusters, metrics=("eer",), n=200, seed=i)[0]
              for i in range(60)]
    assert sum(d.verdict != "no clear difference" for d in called) <= 4
    assert all(d.df is not None and 1 <= d.df for d in called)


def test_one_run_a_side_says_its_interval_holds_no_seeds_spread():
    """The trials' luck alone: one seed a side of one setup is called different far more often than one
    comparison in twenty (the line that says "A better" then says why to read it with care)."""
    from engine.compare.significance import group_bootstraps

    t, clusters, run = _one_setup()
    called = [group_bootstraps([run()], [run()], t, clusters, metrics=("eer",), n=200, seed=i)[0] for i in range(40)]
    assert sum(d.verdict != NO_DIFFERENCE for d in called) >= 8
    assert all(d.describe().endswith(f"speakers, one run a side: seeds not weighed): {d.verdict}") for d in called)
    (grouped,) = group_bootstraps([run(), run()], [run()], t, clusters, metrics=("eer",), n=200)
    assert "seeds (2 and 1, t on" in grouped.describe() and "one run a side" not in grouped.describe()


def test_speaker_names_as_clusters_draw_as_their_numbers_do():
    """The docs' `paired_bootstrap(scores_a, scores_b, is_target, clusters)` with speaker ids as text:
    numpy's `ufunc 'maximum' did not contain a loop` traceback."""
    a, b, t, clusters = tiny(3, speakers=6, per_speaker=20, shift=0.6)
    names = np.array([f"id1{c:04d}" for c in clusters])
    assert paired_bootstraps(a, b, t, names, n=200) == paired_bootstraps(a, b, t, clusters, n=200)
    with pytest.raises(ValueError, match="scores or clusters of another number of trials"):
        paired_bootstraps(a, b, t, names[:-1], n=10)
