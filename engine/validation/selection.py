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
from engine.errors import SpkembError, yaml_problem
from engine.layout import VAL_DIR_SHAPE, CheckpointName, ValidationDir, parse_checkpoint_name
from engine.records import Figures, ValidationResult
from engine.requests import PickRequest

#: params.yml's key of each figure of a :class:`ValidationResult` (the file's own words)
PARAMS_KEYS = {"eer": "equal_error_rate", "mindcf_01": "min_dcf_0.01", "mindcf_005": "min_dcf_0.05"}


def params_path(val_dir: str | Path) -> Path:
    return ValidationDir(Path(val_dir)).params


def scores_path(val_dir: str | Path, epoch: CheckpointName) -> Path:
    """``VAL_DIR/scores/{epoch:04d}.txt`` (``scores/avg-top5.txt`` for averaged weights)."""
    return ValidationDir(Path(val_dir)).score_file(epoch)


def read_params(val_dir: str | Path) -> ValidationResult | None:
    """What ``VAL_DIR/params.yml`` names and its figures, or None when there is none yet."""
    path = params_path(val_dir)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None
    except yaml.YAMLError as e:
        raise SpkembError(f"{path} is not valid YAML ({yaml_problem(e)}); rewrite it with "
                          f"`spkemb-engine pick {val_dir}`") from e
    name = parse_checkpoint_name(str(params.get("epoch", ""))) if isinstance(params, dict) else None
    if name is None:
        raise SpkembError(f"{path} names no epoch; rewrite it with `spkemb-engine pick {val_dir}`")
    try:
        figures: dict[str, Any] = {field: float(params[key]) for field, key in PARAMS_KEYS.items()
                                   if params.get(key) is not None}
        low, high = (float(v) for v in params["eer_ci_95"]) if params.get("eer_ci_95") else (None, None)
        return ValidationResult(epoch=name if isinstance(name, int) else None,
                                checkpoint_name=name if isinstance(name, str) else None,
                                eer_low=low, eer_high=high, **figures)
    except (TypeError, ValueError) as e:
        raise SpkembError(f"{path}: its figures are not numbers ({e}); rewrite it with "
                          f"`spkemb-engine pick {val_dir}`") from e


def chosen_checkpoint(val_dir: str | Path, epoch: CheckpointName | None) -> CheckpointName:
    """``epoch`` when given (``--epoch``), else what ``VAL_DIR/params.yml`` names (an epoch, or
    averaged weights such as ``avg-top5``)."""
    if epoch is not None:
        return epoch
    params = read_params(val_dir)
    if params is None:
        raise SpkembError(f"{params_path(val_dir)} does not exist: validate first "
                          "(`spkemb-engine validate TRN_DIR PROTOCOL`), or pass --epoch")
    return params.checkpoint


def write_params(val_dir: str | Path, result: ValidationResult) -> Path:
    """Point ``VAL_DIR/params.yml`` at one checkpoint's result, atomically."""
    params: dict[str, Any] = {"epoch": result.checkpoint}
    for field, key in PARAMS_KEYS.items():
        if getattr(result, field) is not None:
            params[key] = float(getattr(result, field))
    if result.eer_ci_95 is not None:
        params["eer_ci_95"] = [float(v) for v in result.eer_ci_95]
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


def figures_from_scores(is_target: np.ndarray, scores: np.ndarray, n_bootstrap: int = 1000,
                        source: str | Path | None = None) -> Figures:
    """Every figure of one list of scores: EER (+ threshold, 95 % interval), minDCF at 0.01 and 0.05.

    Scores no EER can be computed from (NaN, trials of one kind) raise ``SpkembError`` naming
    ``source`` (the scores file).
    """
    from engine.validation.metrics import bootstrap_eer_ci, equal_error_rate, min_dcf

    try:
        eer, threshold = equal_error_rate(scores, is_target)
        low, high = bootstrap_eer_ci(scores, is_target, n=n_bootstrap)
        return Figures(eer=eer, eer_low=low, eer_high=high, threshold=threshold,
                       mindcf_01=min_dcf(scores, is_target, 0.01), mindcf_005=min_dcf(scores, is_target, 0.05))
    except ValueError as e:
        where = source if source is not None else "the scores"
        raise SpkembError(f"{where}: no EER can be computed: {e} — check the trial list, then delete "
                          "the scores file and validate that epoch again") from e


def result_from_scores(name: CheckpointName, is_target: np.ndarray, scores: np.ndarray, n_bootstrap: int = 1000,
                       source: str | Path | None = None, last_epoch: int | None = None) -> ValidationResult:
    """The result of the checkpoint ``name`` (an epoch, or averaged weights ending at ``last_epoch``)."""
    figures = figures_from_scores(is_target, scores, n_bootstrap, source or f"the scores of epoch {name}")
    named = isinstance(name, str)
    return ValidationResult(**vars(figures), epoch=last_epoch if named else int(name),
                            checkpoint_name=name if isinstance(name, str) else None, n_trials=int(scores.size),
                            scores_path=None if source is None else str(source))


def results_from_scores(val_dir: str | Path) -> list[ValidationResult]:
    """One result per ``VAL_DIR/scores/*.txt`` file (epochs, then averaged weights), recomputed."""
    folder = ValidationDir(Path(val_dir)).scores
    names = [(parse_checkpoint_name(p.stem), p) for p in folder.glob("*.txt")] if folder.is_dir() else []
    found = sorted(((n, p) for n, p in names if n is not None), key=lambda np_: _order(np_[0]))
    return [result_from_scores(name, *read_scores(path), source=path) for name, path in found]


def _order(name: CheckpointName) -> tuple[int, int, str]:
    """Epochs in order, then named checkpoints by name."""
    return (0, name, "") if isinstance(name, int) else (1, 0, name)


def validate_runs(store: Any, val_dir: str | Path) -> list[dict[str, Any]]:
    """Validate runs recorded for VAL_DIR, newest first (matched on the resolved path)."""
    wanted = {str(Path(val_dir)), str(Path(val_dir).resolve())}
    runs = [r for r in store.runs(kind="validate") if r.get("out_dir") in wanted]
    return sorted(runs, key=lambda r: r["id"], reverse=True)


def results_from_store(store: Any, val_dir: str | Path) -> list[ValidationResult]:
    """The validations of every validate run of VAL_DIR (epochs, then averaged weights); for one
    validated twice, the latest."""
    by_name: dict[CheckpointName, ValidationResult] = {}
    for run in reversed(validate_runs(store, val_dir)):
        for row in store.validations(run["id"]):
            result = ValidationResult.from_row(row)
            by_name[result.checkpoint] = result
    return [by_name[e] for e in sorted(by_name, key=_order)]


def choose(results: list[ValidationResult], epoch: CheckpointName | None = None) -> ValidationResult:
    """The result of ``epoch`` (a number or a name such as ``avg-top5``), or the lowest-EER epoch
    (the earlier on a tie; averaged weights are chosen by name only)."""
    epochs = [r for r in results if r.checkpoint_name is None]
    if epoch is None and not epochs:
        raise SpkembError("no validated epoch yet: run `spkemb-engine validate TRN_DIR PROTOCOL` first")
    if epoch is None:
        return min(epochs, key=ValidationResult.ranked)
    for result in results:
        if result.checkpoint == epoch:
            return result
    validated = ", ".join(str(r.checkpoint) for r in results) or "none yet"
    raise SpkembError(f"epoch {epoch} has not been validated (validated: {validated}); "
                      "pick one of those, or validate it first")


def pick_best(val_dir: str | Path, epoch: CheckpointName | None = None, store: Any = None) -> ValidationResult:
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
    ValidationResult
        The chosen checkpoint's result.
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
            # not yet clean: averaged weights read from scores alone have no epoch, which set_best's
            # epoch (and so the event-file schema read from it) does not allow for
            store.set_best(runs[0]["id"], epoch=result.epoch, eer=result.eer,  # type: ignore[arg-type]
                           how="lowest-eer" if args.epoch is None else "manual", checkpoint=result.checkpoint_name)
    out(f"{params_path(val_dir)}: epoch {result.checkpoint}, EER {100 * result.eer:.2f} %")
    return 0
