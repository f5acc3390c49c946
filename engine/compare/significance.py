"""Paired bootstrap of the difference of EER and minDCF between two systems on the same trials.

torch-free (numpy and scipy): the TUI's Compare and ``spkemb-engine report`` import it.

Two systems (runs, epochs, back-ends) scored on one trial list make *paired* measurements: the same trials, hard or
easy for both. The difference ``A - B`` of a figure is resampled with the pairing kept (Bisani & Ney 2004, "Bootstrap
estimates for confidence intervals in ASR performance evaluation"): each replicate draws the same units for both
systems.

The units are **speakers** when the trial list names them: the trials of a speaker are not independent (one bad
recording spoils all of them), so they are drawn together, as clusters (Poh & Bengio's speaker-level bootstrap). A
trial belongs to the speaker of its enrolment file (``uri1``), the first part of its uri
(``id10270/x6uYqmx31kE/00001``: ``id10270``, VoxCeleb's convention, and the demo corpus's). When a uri has no ``/``
or the list has fewer than :data:`MIN_SPEAKERS` enrolment speakers, the **trials** are drawn one by one instead, and
the result says so (``unit``).

A system may be a **group** of runs that differ only by seed: its figure is then the mean over its seeds, and the
interval holds the spread between seeds too: the replicates draw speakers, and each half of their interval is widened
in quadrature by Welch's part S for the seeds (each group's variance of its runs' figures over its runs; a single run
takes its rival group's), Student's t on the Welch-Satterthwaite df: ``D - low`` becomes ``sqrt((t/z)^2 (D - low)^2 +
t^2 S)``. Drawing the seeds with replacement instead called one of two identical setups better in one comparison in
five with two seeds a side (k draws of k seeds hold (k-1)/k of their variance).

The 95 % interval is the percentile interval of the replicates' differences; the verdict is "A better" when it lies
below 0 (a lower EER or cost), "B better" above 0, "no clear difference" when it holds 0 — the words of the
averaged-weights verdict of the run detail. Seeded: the same inputs give the same interval.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import SpkembError
from engine.validation.metrics import equal_error_rate, min_dcf, weighted_errors
from engine.validation.score_files import trial_fields

#: fewer enrolment speakers than this make too few clusters for a percentile interval: trials then
MIN_SPEAKERS = 5
#: the figures compared, each with the target prior of its cost (None for the EER)
METRICS: dict[str, float | None] = {"eer": None, "mindcf_01": 0.01, "mindcf_005": 0.05}
A_BETTER, B_BETTER, NO_DIFFERENCE = "A better", "B better", "no clear difference"


@dataclass(frozen=True)
class Difference:
    """``A - B`` of one figure, its interval and what it says (lower is better for every figure)."""

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    #: what was resampled: "speakers" or "trials"
    unit: str
    #: how many of them (the clusters of one replicate)
    units: int
    replicates: int
    verdict: str
    #: the runs (seeds) averaged on each side: (1, 1) for two runs
    seeds: tuple[int, int] = (1, 1)
    #: the degrees of freedom of the seeds' part (Welch-Satterthwaite), None where there is none
    #: (one run a side, or seeds that all scored alike)
    df: float | None = None

    def describe(self) -> str:
        """``EER A - B = -0.42 [-0.71, -0.12] pp (1000 replicates over 40 speakers): A better``, in the
        report's digits (a difference of EERs in % is in percentage points, pp); over the seeds too where
        a side is a group (``over 40 speakers and seeds (1 and 3)``)."""
        name = {"eer": "EER", "mindcf_01": "minDCF(0.01)", "mindcf_005": "minDCF(0.05)"}.get(self.metric, self.metric)
        low, difference, high = (figure_text(v, self.metric, "+") for v in (self.low, self.difference, self.high))
        return (f"{name} A − B = {difference} [{low}, {high}]{' pp' if self.metric == 'eer' else ''} "
                f"({self.replicates} replicates over {self.units} {self.unit}{seeds_said(self)}): {self.verdict}")


def figure_text(value: float, metric: str, sign: str = "") -> str:
    """A figure (or a difference) as the report and the TUI show it: EER in %, 2 decimals; DCF 3 (``sign``: "+")."""
    return f"{100 * value:{sign}.2f}" if metric == "eer" else f"{value:{sign}.3f}"


@dataclass(frozen=True)
class PairedTrials:
    """Two systems' scores of the same trials, in the same order, and the unit each trial belongs to."""

    scores_a: np.ndarray
    scores_b: np.ndarray
    is_target: np.ndarray
    #: the cluster of each trial (an index), None to draw trials one by one
    clusters: np.ndarray | None
    unit: str


@dataclass(frozen=True)
class ScoredSystems:
    """Several systems' scores of the same trials (each system one run or a group's runs), in one order."""

    groups: tuple[tuple[np.ndarray, ...], ...]
    is_target: np.ndarray
    clusters: np.ndarray | None
    unit: str


def seeds_said(d: Difference) -> str:
    """`` and seeds (2 and 3, t on 2.4 df)`` where a side is a group, else that no seed's luck is weighed."""
    if max(d.seeds) == 1:
        return ", one run a side: seeds not weighed"
    df = "" if d.df is None else f", t on {d.df:.2g} df"
    return f" and seeds ({d.seeds[0]} and {d.seeds[1]}{df})"


def verdict(low: float, high: float) -> str:
    """What an interval of ``A - B`` (lower is better) says."""
    if high < 0:
        return A_BETTER
    if low > 0:
        return B_BETTER
    return NO_DIFFERENCE


def speaker_of(uri: str) -> str | None:
    """The speaker a uri names (its first part), or None when it names none."""
    head, sep, _ = uri.partition("/")
    return head if sep and head else None


def speaker_clusters(enrolment_uris: list[str]) -> np.ndarray | None:
    """The cluster index of each trial from its enrolment uri; None when the uris name no speaker
    or fewer than :data:`MIN_SPEAKERS`."""
    speakers = [speaker_of(u) for u in enrolment_uris]
    if any(s is None for s in speakers):
        return None
    _, index = np.unique(np.asarray(speakers), return_inverse=True)
    return index if index.max() + 1 >= MIN_SPEAKERS else None


def draw_counts(clusters: np.ndarray | None, n_trials: int, n: int, seed: int,
                chunk_elements: int = 2_000_000) -> Iterator[np.ndarray]:
    """Bootstrap draws of the units, ``(rows, units)`` per chunk, ``n`` rows in all: how many times
    each unit (speaker, or trial when ``clusters`` is None) was drawn, drawing with replacement as
    many times as there are units."""
    n_units = n_trials if clusters is None else int(np.max(clusters)) + 1
    rng = np.random.default_rng(seed)
    # a chunk's curves are (rows, distinct scores): at most about chunk_elements numbers
    rows_per_chunk = max(1, min(n, chunk_elements // max(n_trials, 1)))
    for first in range(0, n, rows_per_chunk):
        rows = min(rows_per_chunk, n - first)
        drawn = rng.integers(0, n_units, size=(rows, n_units))
        yield np.bincount((drawn + n_units * np.arange(rows)[:, None]).ravel(),
                          minlength=rows * n_units).reshape(rows, n_units).astype(np.float64)


def draw_weights(clusters: np.ndarray | None, n_trials: int, n: int, seed: int) -> Iterator[np.ndarray]:
    """The draws of :func:`draw_counts` as weights of the trials, ``(rows, n_trials)``: a trial
    weighs as many times as its unit was drawn."""
    owner = np.arange(n_trials) if clusters is None else np.asarray(clusters)
    for counts in draw_counts(clusters, n_trials, n, seed):
        yield counts[:, owner]


def _figure(scores: np.ndarray, is_target: np.ndarray, metric: str) -> float:
    p = METRICS[metric]
    return equal_error_rate(scores, is_target)[0] if p is None else min_dcf(scores, is_target, p)


def paired_bootstraps(scores_a, scores_b, is_target, clusters: np.ndarray | None = None, *,
                      metrics: tuple[str, ...] = tuple(METRICS), n: int = 1000, seed: int = 0,
                      alpha: float = 0.05) -> tuple[Difference, ...]:
    """The :class:`Difference` of each of ``metrics`` ("eer", "mindcf_01", "mindcf_005"), all
    from the same replicates.

    Parameters
    ----------
    scores_a, scores_b : array-like of float
        The two systems' scores of the same trials, in the same order.
    is_target : array-like of bool
        True for target trials.
    clusters : array-like, optional
        The unit (speaker) of each trial: any labels (``id10270``, 0…); None: trials are drawn one by one.
    n, seed, alpha
        Replicates, seed of their draws, and 1 - the confidence level.
    """
    return group_bootstraps([scores_a], [scores_b], is_target, clusters, metrics=metrics, n=n, seed=seed,
                            alpha=alpha)


def group_bootstraps(group_a: list, group_b: list, is_target, clusters: np.ndarray | None = None, *,
                     metrics: tuple[str, ...] = tuple(METRICS), n: int = 1000, seed: int = 0,
                     alpha: float = 0.05) -> tuple[Difference, ...]:
    """As :func:`paired_bootstraps`, for two groups of runs (seeds) scored on the same trials: each
    side's figure is the mean over its seeds, whose spread widens the interval (module docstring).

    Parameters
    ----------
    group_a, group_b : lists of array-like of float
        The scores of each run of each group, every one of the same trials in the same order.
    is_target, clusters, n, seed, alpha
        As :func:`paired_bootstraps`.
    """
    t = np.asarray(is_target, dtype=bool).ravel()
    sides = [[np.asarray(s, dtype=np.float64).ravel() for s in group] for group in (group_a, group_b)]
    if not sides[0] or not sides[1]:
        raise ValueError("each side needs the scores of at least one run")
    if any(s.shape != t.shape for side in sides for s in side) or (clusters is not None and len(clusters) != t.size):
        raise ValueError(f"scores or clusters of another number of trials than the {t.size} target flags")
    # labels (speaker names) as the units' numbers from 0, which the draws count
    clusters = None if clusters is None else np.unique(np.asarray(clusters), return_inverse=True)[1].ravel()
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}: choose among {list(METRICS)}")
    priors = tuple(p for p in METRICS.values() if p is not None)
    diffs: list[np.ndarray] = []
    owner = np.arange(t.size) if clusters is None else np.asarray(clusters)
    for counts in draw_counts(clusters, t.size, n, seed):
        # each side's mean over its runs of (replicates, figures): the EER and minDCFs under each draw
        means = [np.mean([np.column_stack(weighted_errors(s, t, counts, priors, owner)) for s in side], axis=0)
                 for side in sides]
        diffs.append(means[0] - means[1])
    every = np.concatenate(diffs)
    columns = {"eer": 0, "mindcf_01": 1, "mindcf_005": 2}
    unit = "trials" if clusters is None else "speakers"
    units = t.size if clusters is None else int(np.max(clusters)) + 1
    out = []
    for metric in metrics:
        column = every[:, columns[metric]]
        column = column[np.isfinite(column)]   # a replicate with no target (or non-target) trial
        low, high = (float(v) for v in np.percentile(column, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
        runs = [[_figure(s, t, metric) for s in side] for side in sides]
        fa, fb = (float(np.mean(r)) for r in runs)
        low, high, df = _with_seeds(fa - fb, low, high, runs, alpha)
        out.append(Difference(metric=metric, a=fa, b=fb, difference=fa - fb, low=low, high=high, unit=unit,
                              units=units, replicates=int(column.size), verdict=verdict(low, high),
                              seeds=(len(sides[0]), len(sides[1])), df=df))
    return tuple(out)


def _with_seeds(difference: float, low: float, high: float, runs: list[list[float]],
                alpha: float) -> tuple[float, float, float | None]:
    """``[low, high]`` widened by the spread between each side's seeds (see the module docstring), and its df."""
    from scipy import stats

    sizes = [len(r) for r in runs]
    if max(sizes) == 1:
        return low, high, None
    # (a variance's share of the difference's, its df): a single run is one draw of its seeds too,
    # whose variance only the other side's runs tell
    if min(sizes) == 1:
        k = max(sizes)
        terms = [(float(np.var(runs[sizes.index(k)], ddof=1)) * (1 + 1 / k), k - 1)]
    else:
        terms = [(float(np.var(r, ddof=1)) / len(r), len(r) - 1) for r in runs]
    seeds = sum(share for share, _ in terms)
    if not np.isfinite(seeds) or seeds == 0:  # seeds that all scored alike
        return low, high, None
    z = float(stats.norm.ppf(1 - alpha / 2))
    df = (((high - low) / (2 * z)) ** 2 + seeds) ** 2 / sum(share**2 / df for share, df in terms)
    q = float(stats.t.ppf(1 - alpha / 2, df))
    half = [float(np.sqrt((q / z * max(h, 0.0)) ** 2 + q**2 * seeds)) for h in (difference - low, high - difference)]
    return difference - half[0], difference + half[1], df


def paired_bootstrap(scores_a, scores_b, is_target, clusters: np.ndarray | None = None, *, metric: str = "eer",
                     n: int = 1000, seed: int = 0, alpha: float = 0.05) -> Difference:
    """The :class:`Difference` of one figure (see :func:`paired_bootstraps`)."""
    return paired_bootstraps(scores_a, scores_b, is_target, clusters, metrics=(metric,), n=n, seed=seed,
                             alpha=alpha)[0]


def _read(path: Path) -> dict[tuple[str, str, int], tuple[bool, float]]:
    """Each line's (reference, score), keyed by its two uris and how many times the pair came before: a
    pair a trial list repeats counts each time, as in the EER validate records."""
    trials: dict[tuple[str, str, int], tuple[bool, float]] = {}
    seen: Counter[tuple[str, str]] = Counter()
    try:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                ref, score = trial_fields(fields)
                if ref is None or score is None or len(fields) < 4:
                    # another reference (a 7) was a non-target, said as a trial list that changed
                    raise SpkembError(f"{path}:{number}: expected `reference score uri1 uri2` (reference 0 or 1, "
                                      f"a finite score), got {line.strip()[:80]!r}; validate that epoch again")
                pair = (fields[2], fields[3])
                trials[(*pair, seen[pair])] = (ref == 1, score)
                seen[pair] += 1
    except OSError as e:
        raise SpkembError(f"{path} cannot be read ({e})") from e
    except ValueError as e:
        raise SpkembError(f"{path}: a score is not a number ({e}); validate that epoch again") from e
    return trials


def read_systems(*systems: list[Path]) -> ScoredSystems:
    """The score files of several systems (each a run, or a group's runs), paired by their two uris.

    Raises
    ------
    SpkembError
        The files do not score the same trial list (a pair one of them lacks), or disagree on a
        trial's reference.
    """
    paths = [Path(p) for system in systems for p in system]
    if not paths:
        raise SpkembError("no score file to compare: validate the runs first")
    read = [_read(p) for p in paths]
    first, keys = paths[0], sorted(read[0])  # not the first file's line order: a bootstrap draws by position
    for path, trials in zip(paths[1:], read[1:], strict=True):
        if trials.keys() != read[0].keys():
            only = next(iter((trials.keys() - read[0].keys()) or (read[0].keys() - trials.keys())))
            raise SpkembError(f"{first} and {path} do not score the same trials ({len(read[0])} and {len(trials)}; "
                              f"{only[0]} {only[1]} is in one only): compare systems validated on one trial list")
        if any(trials[k][0] != read[0][k][0] for k in keys):
            raise SpkembError(f"{first} and {path} disagree on which trials are targets: one trial list "
                              "changed between them; validate both again")
    scores = iter([np.array([trials[k][1] for k in keys]) for trials in read])
    clusters = speaker_clusters([k[0] for k in keys])
    return ScoredSystems(groups=tuple(tuple(next(scores) for _ in system) for system in systems),
                         is_target=np.array([read[0][k][0] for k in keys], dtype=bool), clusters=clusters,
                         unit="trials" if clusters is None else "speakers")


def paired_from_files(path_a: str | Path, path_b: str | Path) -> PairedTrials:
    """The trials two score files (``reference score uri1 uri2``) share, paired by their two uris
    (see :func:`read_systems`)."""
    both = read_systems([Path(path_a)], [Path(path_b)])
    return PairedTrials(scores_a=both.groups[0][0], scores_b=both.groups[1][0], is_target=both.is_target,
                        clusters=both.clusters, unit=both.unit)


def compare_files(path_a: str | Path, path_b: str | Path, *, n: int = 1000, seed: int = 0) -> tuple[Difference, ...]:
    """EER and minDCF differences of two score files of the same trial list (see the module docstring)."""
    return compare_groups([Path(path_a)], [Path(path_b)], n=n, seed=seed)


def compare_groups(files_a: list[Path], files_b: list[Path], *, n: int = 1000,
                   seed: int = 0, alpha: float = 0.05) -> tuple[Difference, ...]:
    """EER and minDCF differences of two systems, each the score files of one run or of a group's runs
    (``alpha``: 1 - the confidence level of the intervals)."""
    both = read_systems(files_a, files_b)
    try:
        return group_bootstraps(list(both.groups[0]), list(both.groups[1]), both.is_target, both.clusters,
                                n=n, seed=seed, alpha=alpha)
    except ValueError as e:
        raise SpkembError(f"{files_a[0]} and {files_b[0]}: {e}") from e
