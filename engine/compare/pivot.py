"""The comparison table: systems x trial lists x score back-end -> EER, minDCF, actual DCF, Cllr, DER.

A system is one run, or a group whose runs differ only by seed (``runs.run_group``): a group's
figure is the mean ± sample standard deviation over its runs that have it. Every network is compared
the same way: the table names each system's network (``engine.config.networks``) and nothing else
depends on it.

The back-ends of one validation: ``raw`` (cosine scores), ``as-norm`` (adaptive S-norm, when
validated with a cohort) and ``calibrated`` (a logistic-regression calibration, when the database
records its Cllr and actual DCF). A calibration is an increasing affine map of the scores, so the
calibrated row repeats the EER and minDCF of the scores it calibrates. DER goes with the raw row of
the protocol subset that was diarized. Torch-free: the TUI shows this table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.config.networks import network_name
from engine.errors import StoreError
from engine.store.pivot import ComparedRun, ScoredList, compared_runs, group_run_ids, sweep_group
from engine.store.reads import StoreReads

BACKENDS = ("raw", "as-norm", "calibrated")


@dataclass(frozen=True)
class Stat:
    """One figure of a system: the value of a run, or a group's mean ± sample std (n - 1; None for one
    value, which has no spread)."""

    mean: float
    std: float | None = None
    n: int = 1

    @classmethod
    def of(cls, values: Sequence[float], *, group: bool) -> Stat | None:
        if not values:
            return None
        mean = math.fsum(values) / len(values)
        if not group:
            return cls(mean)
        if len(values) < 2:
            return cls(mean, None, 1)
        var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
        return cls(mean, math.sqrt(var), len(values))

    def text(self, scale: float = 1.0, digits: int = 2, pm: str = " ± ") -> str:
        value = f"{self.mean * scale:.{digits}f}"
        return value if self.std is None else f"{value}{pm}{self.std * scale:.{digits}f}"


@dataclass(frozen=True, kw_only=True)
class System:
    """A row label of the table: one run, or a group of runs differing by seed."""

    label: str
    network: str
    run_ids: tuple[int, ...]
    group: str | None = None


@dataclass(frozen=True, kw_only=True)
class PivotCell:
    """The figures of one system on one trial list with one back-end (None: not recorded)."""

    system: System
    trials: str
    backend: str
    #: the runs that gave a figure here (a group's seeds)
    runs: int
    eer: Stat | None = None
    mindcf_01: Stat | None = None
    mindcf_005: Stat | None = None
    actual_dcf_01: Stat | None = None
    actual_dcf_005: Stat | None = None
    cllr: Stat | None = None
    min_cllr: Stat | None = None
    der: Stat | None = None


@dataclass(frozen=True)
class Column:
    """A column of the table: its key (a ``PivotCell`` field), its title, and how its figure reads."""

    key: str
    title: str
    #: what a figure is multiplied by when shown (100: a percentage)
    scale: float = 1.0
    digits: int = 3

    @property
    def figure(self) -> bool:
        return self.key in METRICS


LABEL_COLUMNS = (Column("system", "system"), Column("network", "network"), Column("trials", "trials"),
                 Column("backend", "back-end"), Column("runs", "runs"))
METRIC_COLUMNS = (Column("eer", "EER (%)", 100.0, 2), Column("mindcf_01", "minDCF 0.01"),
                  Column("mindcf_005", "minDCF 0.05"), Column("actual_dcf_01", "actDCF 0.01"),
                  Column("actual_dcf_005", "actDCF 0.05"), Column("cllr", "Cllr (bits)"),
                  Column("min_cllr", "minCllr (bits)"), Column("der", "DER (%)", 100.0, 2))
COLUMNS = LABEL_COLUMNS + METRIC_COLUMNS
METRICS = tuple(c.key for c in METRIC_COLUMNS)

#: the ``validations`` column of each figure, by back-end (calibration keeps EER and minDCF)
_SOURCES: dict[str, dict[str, str]] = {
    "raw": {"eer": "eer", "mindcf_01": "mindcf_01", "mindcf_005": "mindcf_005", "min_cllr": "min_cllr"},
    "as-norm": {"eer": "eer_asnorm", "mindcf_01": "mindcf_01_asnorm", "mindcf_005": "mindcf_005_asnorm"},
    "calibrated": {"eer": "eer", "mindcf_01": "mindcf_01", "mindcf_005": "mindcf_005", "cllr": "cllr",
                   "min_cllr": "min_cllr", "actual_dcf_01": "actual_dcf_01", "actual_dcf_005": "actual_dcf_005"},
}
#: the figures without which a back-end has no row (the raw one always has one; minCllr is a
#: figure of the raw scores, which every validation records: only a calibration list gives the rest)
_PRESENT = {"raw": ("eer",), "as-norm": ("eer_asnorm",),
            "calibrated": ("cllr", "actual_dcf_01", "actual_dcf_005")}


@dataclass(frozen=True)
class Pivot:
    """The table: one ``PivotCell`` per system, trial list and back-end, in ``cells`` order."""

    systems: tuple[System, ...]
    cells: tuple[PivotCell, ...]
    #: every run read, by id (a report draws their curves)
    runs: dict[int, ComparedRun]

    def named(self) -> tuple[list[int], list[str]]:
        """The runs and groups that make this table's systems (``build_pivot``'s arguments)."""
        return ([s.run_ids[0] for s in self.systems if s.group is None],
                [s.group for s in self.systems if s.group is not None])

    def sorted_by(self, key: str, *, descending: bool = False) -> Pivot:
        """The same table sorted on one column; a figure not recorded sorts last either way."""
        column = next((c for c in COLUMNS if c.key == key), None)
        if column is None:
            raise ValueError(f"no column {key!r}: use one of {', '.join(c.key for c in COLUMNS)}")
        if column.figure:
            def figure_key(cell: PivotCell) -> tuple[bool, float]:
                stat = getattr(cell, key)
                return stat is None, 0.0 if stat is None else (-stat.mean if descending else stat.mean)
            cells = sorted(self.cells, key=figure_key)
        else:
            cells = sorted(self.cells, key=lambda c: str(cell_value(c, key)) if key != "runs" else f"{c.runs:09d}",
                           reverse=descending)
        return dataclasses.replace(self, cells=tuple(cells))

    @property
    def trial_lists(self) -> list[str]:
        return sorted({c.trials for c in self.cells})


def cell_value(cell: PivotCell, key: str) -> str | int:
    """A label column's value (``system``, ``network``, ``trials``, ``backend``, ``runs``)."""
    if key == "system":
        return cell.system.label
    if key == "network":
        return cell.system.network
    value: str | int = getattr(cell, key)
    return value


def cell_text(cell: PivotCell, column: Column, *, missing: str = "—", pm: str = " ± ") -> str:
    """A cell as tables show it: a figure in the column's unit, "—" where none was recorded."""
    if column.key == "runs" and cell.system.group is not None and cell.runs < len(cell.system.run_ids):
        # a back-end some seeds lack (AS-norm scored on one): its mean is over fewer runs than the row above
        return f"{cell.runs} of {len(cell.system.run_ids)}"
    if not column.figure:
        return str(cell_value(cell, column.key))
    stat: Stat | None = getattr(cell, column.key)
    return missing if stat is None else stat.text(column.scale, column.digits, pm)


def build_pivot(store: StoreReads, run_ids: Sequence[int] = (), groups: Sequence[str] = (), *,
                curves: bool = False) -> Pivot:
    """The table of the runs ``run_ids`` (one system each) and the groups ``groups`` (one each).

    Raises
    ------
    StoreError
        Nothing to compare, an unknown run, an apply run, or a group with no run.
    """
    if not run_ids and not groups:
        raise StoreError("nothing to compare: name runs (RUN_ID ...) or groups (--group G)")
    members: list[tuple[str | None, list[ComparedRun]]] = [
        (None, [run]) for run in compared_runs(store, dict.fromkeys(run_ids), curves=curves)]
    for group in dict.fromkeys(groups):
        if sweep_group(store, group):
            raise StoreError(f"group {group!r} is a sweep's: its trials differ in their settings, so a mean ± std "
                             "over them is no spread of one setup — name its runs instead (`spkemb-engine runs "
                             f"--group {group}` lists them)")
        ids = group_run_ids(store, group)
        if not ids:
            raise StoreError(f"group {group!r} has no training run: `spkemb-engine runs --group {group}` "
                             "lists its runs; `spkemb-engine tag RUN_ID --group G` puts a run in one")
        members.append((group, compared_runs(store, ids, curves=curves)))
    members = _lists_apart(members)
    systems: list[System] = []
    cells: list[PivotCell] = []
    runs: dict[int, ComparedRun] = {}
    for named, of_system in members:
        system = _system(named, of_system)
        systems.append(system)
        runs.update({r.id: r for r in of_system})
        cells += _cells(system, of_system, grouped=named is not None)
    return Pivot(tuple(systems), tuple(cells), runs)


def _lists_apart(members: list[tuple[str | None, list[ComparedRun]]]) -> list[tuple[str | None, list[ComparedRun]]]:
    """Runs that scored lists of other sizes under one name (a list edited between validations) have
    each list's size said after its name: they are other trials, never one row, curve or mean."""
    sizes: dict[str, set[int]] = {}
    for _, runs in members:
        for scored in (s for r in runs for s in r.scored):
            if scored.n_trials is not None:
                sizes.setdefault(scored.trials, set()).add(scored.n_trials)
    split = {name for name, found in sizes.items() if len(found) > 1}
    if not split:
        return members

    def apart(s: ScoredList) -> ScoredList:
        if s.trials not in split or s.n_trials is None:
            return s
        return dataclasses.replace(s, variant=f" ({s.n_trials:,} trials)")

    return [(group, [dataclasses.replace(r, scored=tuple(apart(s) for s in r.scored)) for r in runs])
            for group, runs in members]


def sweeps_as_runs(store: StoreReads, run_ids: Sequence[int], groups: Sequence[str]) -> tuple[list[int], list[str]]:
    """``run_ids`` and ``groups`` with each sweep's group replaced by its runs, each a system of its own
    (Compare's view by group: a sweep's trials are no seeds of one setup)."""
    runs, kept = list(run_ids), []
    for group in groups:
        if sweep_group(store, group):
            runs += group_run_ids(store, group)
        else:
            kept.append(group)
    return list(dict.fromkeys(runs)), kept


def _system(group: str | None, runs: list[ComparedRun]) -> System:
    networks = dict.fromkeys(network_name(r.architecture, r.front_end) for r in runs)
    network = " / ".join(n for n in networks if n)
    if group is None:
        run = runs[0]
        return System(label=f"#{run.id} {run.name or ''}".strip(), network=network, run_ids=(run.id,))
    return System(label=f"{group} ({len(runs)} run{'s' if len(runs) != 1 else ''})", network=network,
                  run_ids=tuple(r.id for r in runs), group=group)


def _cells(system: System, runs: list[ComparedRun], *, grouped: bool) -> Iterable[PivotCell]:
    lists = sorted({s.trials for r in runs for s in r.scored} | {d.trials for r in runs for d in r.diarized})
    for trials in lists:
        scored = [s for r in runs for s in r.scored if s.trials == trials]
        for backend in BACKENDS:
            present = [s for s in scored if any(s.figures.get(c) is not None for c in _PRESENT[backend])]
            der = ([d.der for r in runs for d in r.diarized if d.trials == trials]
                   if backend == "raw" else [])
            if not present and not der:
                continue
            figures = {key: Stat.of([v for s in present if (v := s.figures.get(source)) is not None],
                                    group=grouped)
                       for key, source in _SOURCES[backend].items()}
            yield PivotCell(system=system, trials=trials, backend=backend, runs=max(len(present), len(der)),
                            der=Stat.of(der, group=grouped), **figures)


def scored_of(pivot: Pivot, system: System, trials: str) -> list[tuple[ComparedRun, ScoredList]]:
    """The validations of each run of ``system`` on ``trials`` (a report's DET curves and histograms)."""
    return [(pivot.runs[run_id], s) for run_id in system.run_ids for s in pivot.runs[run_id].scored
            if s.trials == trials]
