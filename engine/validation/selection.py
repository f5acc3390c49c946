"""The best epoch of a validation directory: params.yml, score files and ``spkemb-engine pick``.

torch-free (the TUI's "pick this epoch" runs it). ``VAL_DIR/params.yml`` always names one
validated epoch (or, picked by hand, validated averaged weights: ``epoch: avg-top5``)::

    epoch: 221
    equal_error_rate: 0.0436
    min_dcf_0.01: 0.41
    min_dcf_0.05: 0.27
    eer_ci_95: [0.041, 0.046]

It is replaced atomically (temporary file, fsync, rename, fsync of the folder), so a reader
(``apply``, the TUI) sees the old file or the new one, never half of one.

The per-epoch results come from the runs database (``validations`` rows of the validate
run whose ``out_dir`` is VAL_DIR) or, when there is none (event-file mode, a copied
folder), are recomputed from ``VAL_DIR/scores/{epoch:04d}.txt``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from engine.atomic import atomic_write_text
from engine.console import out
from engine.errors import SpkembError
from engine.layout import VAL_DIR_SHAPE, CheckpointName, ValidationDir, parse_checkpoint_name
from engine.requests import PickRequest

KEYS = ("epoch", "equal_error_rate", "min_dcf_0.01", "min_dcf_0.05", "eer_ci_95")


def params_path(val_dir: str | Path) -> Path:
    return ValidationDir(Path(val_dir)).params


def scores_path(val_dir: str | Path, epoch: CheckpointName) -> Path:
    """``VAL_DIR/scores/{epoch:04d}.txt`` (``scores/avg-top5.txt`` for averaged weights)."""
    return ValidationDir(Path(val_dir)).score_file(epoch)


def read_params(val_dir: str | Path) -> dict[str, Any] | None:
    """The content of ``VAL_DIR/params.yml``, or None when there is none yet."""
    path = params_path(val_dir)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None
    except yaml.YAMLError as e:
        raise SpkembError(f"{path} is not valid YAML ({e}); rewrite it with "
                          f"`spkemb-engine pick {val_dir}`") from e
    if not isinstance(params, dict) or parse_checkpoint_name(str(params.get("epoch", ""))) is None:
        raise SpkembError(f"{path} names no epoch; rewrite it with `spkemb-engine pick {val_dir}`")
    params["epoch"] = parse_checkpoint_name(str(params["epoch"]))
    return params


def chosen_checkpoint(val_dir: str | Path, epoch: CheckpointName | None) -> CheckpointName:
    """``epoch`` when given (``--epoch``), else what ``VAL_DIR/params.yml`` names (an epoch, or
    averaged weights such as ``avg-top5``)."""
    if epoch is not None:
        return epoch
    params = read_params(val_dir)
    if params is None:
        raise SpkembError(f"{params_path(val_dir)} does not exist: validate first "
                          "(`spkemb-engine validate TRN_DIR PROTOCOL`), or pass --epoch")
    return params["epoch"]


def write_params(val_dir: str | Path, result: dict[str, Any]) -> Path:
    """Point ``VAL_DIR/params.yml`` at one epoch's result (keys :data:`KEYS`), atomically."""
    epoch = result["epoch"]
    params = {"epoch": epoch if isinstance(epoch, str) else int(epoch),
              "equal_error_rate": float(result["equal_error_rate"])}
    for key in ("min_dcf_0.01", "min_dcf_0.05"):
        if result.get(key) is not None:
            params[key] = float(result[key])
    if result.get("eer_ci_95") is not None:
        params["eer_ci_95"] = [float(v) for v in result["eer_ci_95"]]
    return atomic_write_text(params_path(val_dir), yaml.safe_dump(params, sort_keys=False))


def write_scores(path: str | Path, rows: Iterable[tuple[int, float, str, str]]) -> Path:
    """Write ``reference score uri1 uri2`` lines (reference 1 = target trial) atomically."""
    text = "".join(f"{int(ref)} {score:.6f} {uri1} {uri2}\n" for ref, score, uri1, uri2 in rows)
    return atomic_write_text(path, text)


def read_scores(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(is_target, scores) of a scores file written by :func:`write_scores`."""
    refs, scores = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                refs.append(int(fields[0]))
                scores.append(float(fields[1]))
            except (ValueError, IndexError) as e:
                raise SpkembError(f"{path}:{n}: expected `reference score uri1 uri2`, got "
                                  f"{line.strip()!r}; delete the file and validate again") from e
    return np.asarray(refs, dtype=bool), np.asarray(scores, dtype=np.float64)


def result_from_scores(epoch: CheckpointName, is_target: np.ndarray, scores: np.ndarray,
                       n_bootstrap: int = 1000, source: str | Path | None = None) -> dict[str, Any]:
    """Every figure of one epoch: EER (+ threshold, 95 % interval), minDCF at 0.01 and 0.05.

    Scores no EER can be computed from (NaN, trials of one kind) raise ``SpkembError`` naming
    ``source`` (the scores file).
    """
    from engine.validation.metrics import bootstrap_eer_ci, equal_error_rate, min_dcf

    try:
        eer, threshold = equal_error_rate(scores, is_target)
        return {"epoch": epoch if isinstance(epoch, str) else int(epoch), "equal_error_rate": eer,
                "threshold": threshold,
                "min_dcf_0.01": min_dcf(scores, is_target, 0.01),
                "min_dcf_0.05": min_dcf(scores, is_target, 0.05),
                "eer_ci_95": list(bootstrap_eer_ci(scores, is_target, n=n_bootstrap)),
                "n_trials": int(scores.size)}
    except ValueError as e:
        where = source if source is not None else f"the scores of epoch {epoch}"
        raise SpkembError(f"{where}: no EER can be computed: {e} — check the trial list, then delete "
                          "the scores file and validate that epoch again") from e


def results_from_scores(val_dir: str | Path) -> list[dict[str, Any]]:
    """One result per ``VAL_DIR/scores/*.txt`` file (epochs, then averaged weights), recomputed."""
    folder = ValidationDir(Path(val_dir)).scores
    names = [(parse_checkpoint_name(p.stem), p) for p in folder.glob("*.txt")] if folder.is_dir() else []
    found = sorted(((n, p) for n, p in names if n is not None), key=lambda np_: _order(np_[0]))
    return [result_from_scores(name, *read_scores(path), source=path) for name, path in found]


def _order(name: CheckpointName) -> tuple[int, int, str]:
    """Epochs in order, then named checkpoints by name."""
    return (0, name, "") if isinstance(name, int) else (1, 0, name)


def _row_to_result(row: dict[str, Any]) -> dict[str, Any]:
    ci = None if row.get("eer_low") is None else [row["eer_low"], row["eer_high"]]
    result = {"epoch": row.get("checkpoint_name") or int(row["epoch"]), "last_epoch": int(row["epoch"]),
              "equal_error_rate": float(row["eer"]),
              "min_dcf_0.01": row.get("mindcf_01"), "min_dcf_0.05": row.get("mindcf_005"),
              "eer_ci_95": ci, "threshold": row.get("threshold"), "n_trials": row.get("n_trials")}
    if row.get("eer_asnorm") is not None:
        low, high = row.get("eer_asnorm_low"), row.get("eer_asnorm_high")
        result["asnorm"] = {"cohort_size": row.get("cohort_size"), "equal_error_rate": row["eer_asnorm"],
                            "eer_ci_95": None if low is None else [low, high],
                            "min_dcf_0.01": row.get("mindcf_01_asnorm"),
                            "min_dcf_0.05": row.get("mindcf_005_asnorm"),
                            "threshold": row.get("threshold_asnorm")}
    return result


def validate_runs(store: Any, val_dir: str | Path) -> list[dict[str, Any]]:
    """Validate runs recorded for VAL_DIR, newest first (matched on the resolved path)."""
    wanted = {str(Path(val_dir)), str(Path(val_dir).resolve())}
    runs = [r for r in store.runs(kind="validate") if r.get("out_dir") in wanted]
    return sorted(runs, key=lambda r: r["id"], reverse=True)


def results_from_store(store: Any, val_dir: str | Path) -> list[dict[str, Any]]:
    """The validations of every validate run of VAL_DIR (epochs, then averaged weights); for one
    validated twice, the latest."""
    by_name: dict[CheckpointName, dict[str, Any]] = {}
    for run in reversed(validate_runs(store, val_dir)):
        for row in store.validations(run["id"]):
            result = _row_to_result(row)
            by_name[result["epoch"]] = result
    return [by_name[e] for e in sorted(by_name, key=_order)]


def choose(results: list[dict[str, Any]], epoch: CheckpointName | None = None) -> dict[str, Any]:
    """The result of ``epoch`` (a number or a name such as ``avg-top5``), or the lowest-EER epoch
    (the earlier on a tie; averaged weights are chosen by name only)."""
    epochs = [r for r in results if isinstance(r["epoch"], int)]
    if epoch is None and not epochs:
        raise SpkembError("no validated epoch yet: run `spkemb-engine validate TRN_DIR PROTOCOL` first")
    if epoch is None:
        return min(epochs, key=lambda r: (r["equal_error_rate"], r["epoch"]))
    for result in results:
        if result["epoch"] == epoch:
            return result
    validated = ", ".join(str(r["epoch"]) for r in results)
    raise SpkembError(f"epoch {epoch} has not been validated (validated: {validated}); "
                      "pick one of those, or validate it first")


def pick_best(val_dir: str | Path, epoch: CheckpointName | None = None, store: Any = None) -> dict[str, Any]:
    """Point ``VAL_DIR/params.yml`` at ``epoch`` (default: the lowest EER) and return its result.

    Parameters
    ----------
    val_dir : str or Path
        Validation directory.
    epoch : int or str, optional
        A validated epoch, or validated averaged weights (``avg-top5``), to choose by hand.
    store : engine.store.Store, optional
        Runs database; its validations are used when it has any for VAL_DIR, the score files
        otherwise.

    Returns
    -------
    dict
        The chosen epoch's result (the keys of params.yml, plus threshold and n_trials).
    """
    results = results_from_store(store, val_dir) if store is not None else []
    if not results:
        results = results_from_scores(val_dir)
    result = choose(results, epoch)
    write_params(val_dir, result)
    return result


def cmd_pick(args: PickRequest) -> int:
    """``spkemb-engine pick [--epoch E] VAL_DIR``."""
    from engine.store import default_db_path, open_store

    val_dir = Path(args.val_dir)
    if not val_dir.is_dir():
        raise SpkembError(f"{val_dir} is not a directory: pass the VAL_DIR that "
                          f"`spkemb-engine validate` wrote ({VAL_DIR_SHAPE})")
    db = default_db_path(args.db)
    store = open_store(db) if db.exists() else None
    result = pick_best(val_dir, args.epoch, store=store)
    if store is not None:
        runs = validate_runs(store, val_dir)
        if runs:
            named = isinstance(result["epoch"], str)
            store.set_best(runs[0]["id"], epoch=result.get("last_epoch") if named else result["epoch"],
                           eer=result["equal_error_rate"], how="lowest-eer" if args.epoch is None else "manual",
                           checkpoint=result["epoch"] if named else None)
    out(f"{params_path(val_dir)}: epoch {result['epoch']}, "
        f"EER {100 * result['equal_error_rate']:.2f} %")
    return 0
