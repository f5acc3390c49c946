"""The reads behind a comparison (``engine.compare.pivot``, ``spkemb-engine report``): for each compared
run, the validation it shows on each trial list, its diarization checks and, for the report's
figures, its loss and EER against epoch.

A training run is scored on a trial list (``PROTOCOL.SUBSET``) by its validate runs of that list;
the newest one that scored something speaks for it with the validations of its VAL_DIR (every validate
run of the folder up to it), at the checkpoint the folder picked (``params.yml``:
``runs.best_epoch``/``best_checkpoint``), else at its lowest EER. A validate run with no training
run in the database (a copied TRN_DIR) is compared by itself.

The figures of a calibrated back-end (``cllr``, ``min_cllr``, ``actual_dcf_01``,
``actual_dcf_005``) are read when the database has those columns: ``SELECT *`` brings whatever a
release recorded, and a figure the file does not hold reads as None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from engine.errors import StoreError
from engine.layout import APPLY, diarization_folder, parse_checkpoint_name
from engine.store.reads import StoreReads
from engine.store.runs import LIVE_STATUSES

#: the ``validations`` columns a comparison shows (beside the epoch and the scores file)
FIGURE_COLUMNS = ("eer", "mindcf_01", "mindcf_005", "eer_asnorm", "mindcf_01_asnorm", "mindcf_005_asnorm",
                  "cllr", "min_cllr", "actual_dcf_01", "actual_dcf_005")


@dataclass(frozen=True, kw_only=True)
class ScoredList:
    """The validation of one run on one trial list that a comparison shows."""

    protocol: str
    subset: str
    validate_run_id: int
    epoch: int
    #: averaged weights' name (``avg-top5``), None for an epoch
    checkpoint_name: str | None
    #: the validations columns of ``FIGURE_COLUMNS``, None where not recorded
    figures: Mapping[str, float | None]
    scores_path: str | None
    #: (epoch, EER) of every epoch this validate run scored, for the EER plot
    eer_by_epoch: tuple[tuple[int, float], ...] = ()
    #: trials scored (None: not recorded)
    n_trials: int | None = None
    #: said after the list's name where runs scored lists of other sizes under it (`` (400 trials)``)
    variant: str = ""

    @property
    def trials(self) -> str:
        return f"{self.protocol}.{self.subset}{self.variant}"


@dataclass(frozen=True, kw_only=True)
class DiarizedList:
    """The diarization error rate of one run's embeddings on one protocol subset."""

    protocol: str
    subset: str
    der: float
    collar: float
    skip_overlap: bool
    num_speakers: str
    #: the extracted checkpoint: ``2`` (an epoch) or ``avg-top5``
    checkpoint: str = ""
    #: where the embeddings and RTTMs are, under the VAL_DIR: ``apply/2``, ``apply/2-step0.5/rttm-collar0.5``
    extraction: str = ""
    #: of the extraction ``apply`` writes by default (the exact path, ``--step 0.1``), and the check's default
    #: setting (collar 0, overlap scored, oracle number of speakers)
    default: bool = True

    @property
    def trials(self) -> str:
        return f"{self.protocol}.{self.subset}"


@dataclass(frozen=True, kw_only=True)
class ComparedRun:
    """One run as a comparison sees it."""

    id: int
    kind: str
    name: str | None
    run_group: str | None
    seed: int | None
    #: ``completed``, or what keeps its figures from being its whole training's (``running``, ``failed``…)
    status: str
    #: a validate run of its own still scoring (its figures may change)
    validating: bool
    #: what its config names, for ``engine.config.networks.network_name``
    architecture: str | None
    front_end: str | None
    scored: tuple[ScoredList, ...]
    diarized: tuple[DiarizedList, ...]
    #: (epoch, mean training loss) of each epoch, for the loss plot (read with ``curves=True``)
    loss_by_epoch: tuple[tuple[int, float], ...] = ()


_RUN_COLUMNS = ("SELECT id, kind, name, status, parent_id, protocol, subset, out_dir, run_group, seed, best_epoch, "
                "best_checkpoint, "
                "CASE WHEN json_valid(config) THEN json_extract(config, '$.architecture.name') END AS architecture, "
                "CASE WHEN json_valid(config) THEN json_extract(config, '$.feature_extraction.name') END "
                "AS front_end FROM runs")


def compared_runs(store: StoreReads, run_ids: Iterable[int], *, curves: bool = False) -> list[ComparedRun]:
    """The runs ``run_ids`` (training or validate runs), in that order.

    Raises
    ------
    StoreError
        A run is not in the database, or is an apply run (it has no figures of its own).
    """
    out = []
    for run_id in run_ids:
        rows = store._read(f"{_RUN_COLUMNS} WHERE id = ?", (run_id,))
        if not rows:
            raise StoreError(f"no run {run_id} in the runs database: `spkemb-engine runs` lists the run ids")
        run = rows[0]
        if run["kind"] == "apply":
            raise StoreError(f"run {run_id} is an apply run, which has no figures of its own: compare the "
                             f"run it extracted from ({run['parent_id']}) or its training run instead")
        out.append(_compared(store, run, curves))
    return out


def group_run_ids(store: StoreReads, group: str) -> list[int]:
    """The runs of ``group`` a comparison averages: its training runs, and its validate runs that
    have no training run (their parent's group is the group of the others)."""
    rows = store._read("SELECT id FROM runs WHERE run_group = ? AND (kind = 'train' OR "
                       "(kind = 'validate' AND parent_id IS NULL)) ORDER BY id", (group,))
    return [int(r["id"]) for r in rows]


def sweep_group(store: StoreReads, group: str) -> bool:
    """Whether ``group`` is a sweep's: its trials differ in their settings, so they are no seeds of one setup."""
    (row,) = store._read("SELECT EXISTS (SELECT 1 FROM sweeps WHERE run_group = ?) AS sweep", (group,))
    return bool(row["sweep"])


def _compared(store: StoreReads, run: dict[str, Any], curves: bool) -> ComparedRun:
    if run["kind"] == "train":
        validators = store._read(f"{_RUN_COLUMNS} WHERE parent_id = ? AND kind = 'validate' ORDER BY id DESC",
                                 (run["id"],))
    else:
        validators = [run]
    scored: dict[str, ScoredList] = {}
    for validator in validators:  # newest first: the newest validation of a list speaks for it
        key = f"{validator['protocol']}.{validator['subset']}"
        if key in scored:
            continue
        found = _scored(store, validator, curves)
        if found is not None:
            scored[key] = found
    loss: tuple[tuple[int, float], ...] = ()
    if curves and run["kind"] == "train":
        loss = tuple((int(r["epoch"]), float(r["loss"])) for r in store._read(
            "SELECT epoch, loss FROM train_epochs WHERE run_id = ? AND loss IS NOT NULL ORDER BY epoch",
            (run["id"],)))
    return ComparedRun(id=int(run["id"]), kind=run["kind"], name=run["name"], run_group=run["run_group"],
                       seed=run["seed"], status=run["status"],
                       validating=any(v["status"] in LIVE_STATUSES for v in validators if v["id"] != run["id"]),
                       architecture=run["architecture"], front_end=run["front_end"],
                       scored=tuple(sorted(scored.values(), key=lambda s: s.trials)),
                       diarized=_diarized(store, [int(run["id"])] + [int(v["id"]) for v in validators]),
                       loss_by_epoch=loss)


def _scored(store: StoreReads, validator: dict[str, Any], curves: bool) -> ScoredList | None:
    """What ``validator``'s VAL_DIR shows as of that run: the validations of every validate run of the
    folder up to it (the newest row of a checkpoint scored twice: a ``validate --from N`` scores only
    later epochs, while the pick may be an earlier one), at the folder's pick."""
    rows = store._read("SELECT v.* FROM validations AS v JOIN runs AS r ON r.id = v.run_id WHERE v.eer IS NOT NULL "
                       "AND (r.id = ? OR (r.kind = 'validate' AND r.out_dir = ? AND r.id < ?)) ORDER BY r.id, v.id",
                       (validator["id"], validator["out_dir"], validator["id"]))
    if not rows:
        return None
    # one list: rows of another size (a list edited between two validations of the folder) are left out
    size = rows[-1].get("n_trials")
    rows = [r for r in rows if size is None or r.get("n_trials") in (size, None)]
    newest = {(r["epoch"], r.get("checkpoint_name")): r for r in rows}
    rows = sorted(newest.values(), key=lambda r: (r["epoch"], r["id"]))
    epoch, name = _pick(store, validator)
    picked = [r for r in rows if r["epoch"] == epoch and r.get("checkpoint_name") == name]
    row = picked[-1] if picked else min(rows, key=lambda r: (r["eer"], r["epoch"]))
    by_epoch = tuple((int(r["epoch"]), float(r["eer"])) for r in rows if r.get("checkpoint_name") is None)
    return ScoredList(protocol=validator["protocol"] or "", subset=validator["subset"] or "",
                      validate_run_id=int(validator["id"]), epoch=int(row["epoch"]),
                      checkpoint_name=row.get("checkpoint_name"),
                      figures={c: None if row.get(c) is None else float(row[c]) for c in FIGURE_COLUMNS},
                      scores_path=row.get("scores_path"), eer_by_epoch=by_epoch if curves else (),
                      n_trials=row.get("n_trials"))


def _pick(store: StoreReads, validator: dict[str, Any]) -> tuple[int | None, str | None]:
    """The checkpoint ``validator``'s VAL_DIR points at as of that run (``params.yml``): the pick of the
    newest of the folder's validate runs up to it that picked one."""
    if validator["best_epoch"] is not None or validator["out_dir"] is None:
        return validator["best_epoch"], validator["best_checkpoint"]
    rows = store._read("SELECT best_epoch, best_checkpoint FROM runs WHERE kind = 'validate' AND out_dir = ? "
                       "AND id < ? AND best_epoch IS NOT NULL ORDER BY id DESC LIMIT 1",
                       (validator["out_dir"], validator["id"]))
    return (rows[0]["best_epoch"], rows[0]["best_checkpoint"]) if rows else (None, None)


def _diarized(store: StoreReads, parents: list[int]) -> tuple[DiarizedList, ...]:
    """The diarization checks of the apply runs under ``parents``: the newest of each protocol subset,
    of the checkpoint the validate run picks now (a check of an extraction since replaced by another
    pick would put another network's DER beside this one's EER), of the extraction ``apply`` writes by
    default (exact path, ``--step 0.1``: a coarser step's DER is another figure) and of the default
    setting (collar 0, overlap scored, oracle number of speakers), where there are such checks."""
    marks = ", ".join("?" * len(parents))
    # the pick is the newest validate run's of the VAL_DIR (as the figures and stale_extractions read it)
    rows = store._read(f"SELECT d.*, e.epoch AS extracted_epoch, e.checkpoint_name AS extracted_name, "
                       f"cur.best_epoch, cur.best_checkpoint FROM diarizations AS d JOIN runs AS a ON a.id = d.run_id "
                       f"JOIN runs AS v ON v.id = a.parent_id LEFT JOIN runs AS cur ON cur.id = (SELECT MAX(id) FROM "
                       f"runs WHERE kind = 'validate' AND out_dir = v.out_dir AND best_epoch IS NOT NULL) "
                       f"LEFT JOIN extractions AS e ON e.id = d.extraction_id "
                       f"WHERE a.parent_id IN ({marks}) ORDER BY d.id DESC", tuple(parents))
    chosen: dict[tuple[str, str], tuple[tuple[bool, bool, bool], dict[str, Any]]] = {}
    for row in rows:  # newest first: a row replaces a newer one only when it ranks higher
        key = (row["protocol"] or "", row["subset"] or "")
        picked = (row["extracted_name"] == row["best_checkpoint"]
                  and (row["extracted_name"] is not None or row["extracted_epoch"] == row["best_epoch"]))
        rank = (picked, _default_extraction(row), _default_setting(row))
        if key not in chosen or rank > chosen[key][0]:
            chosen[key] = (rank, row)
    return tuple(DiarizedList(protocol=p, subset=s, der=float(r["der"]), collar=float(r["collar"] or 0),
                              skip_overlap=bool(r["skip_overlap"]), num_speakers=str(r["num_speakers"]),
                              checkpoint=_checkpoint(r),
                              extraction=_extraction_path(r), default=all(rank[1:]))
                 for (p, s), (rank, r) in sorted(chosen.items()))


def _checkpoint(row: Mapping[str, Any]) -> str:
    """``2`` or ``avg-top5``: the extraction's checkpoint, else the epoch the check recorded."""
    for key in ("extracted_name", "extracted_epoch", "epoch"):
        if row[key] is not None:
            return str(row[key])
    return ""


def _default_extraction(row: Mapping[str, Any]) -> bool:
    """Whether a check's extraction is in the folder ``apply`` gives its checkpoint by default, named by the
    checkpoint alone (``apply/2``, not ``apply/2-step0.5``)."""
    return parse_checkpoint_name(PurePath(row["out_dir"] or "").name) is not None


def _default_setting(row: Mapping[str, Any]) -> bool:
    return (row["collar"] or 0) == 0 and not row["skip_overlap"] and row["num_speakers"] == "oracle"


def _extraction_path(row: Mapping[str, Any]) -> str:
    """``apply/2-step0.5``, then the setting's RTTM folder where it is not the default one."""
    setting = diarization_folder(collar=float(row["collar"] or 0), skip_overlap=bool(row["skip_overlap"]),
                                 num_speakers=str(row["num_speakers"]))
    return str(PurePath(APPLY, PurePath(row["out_dir"] or "").name, setting))
