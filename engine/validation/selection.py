"""The best epoch of a validation directory, and ``spkemb-engine pick``.

torch-free (the TUI's "pick this epoch" runs it). The per-epoch results come from the runs
database (``validations`` rows of the validate run whose ``out_dir`` is VAL_DIR) or, when there
is none (event-file mode, a copied folder), are recomputed from the score files
(:mod:`engine.validation.score_files`); the choice is written to ``VAL_DIR/params.yml``
(:mod:`engine.validation.params`).
"""

from __future__ import annotations

import os
from typing import Any

from engine.console import out, say
from engine.errors import SpkembError
from engine.layout import PARAMS, CheckpointName, ValidationDir
from engine.records import ValidationResult, checkpoint_list, checkpoint_title
from engine.requests import PickRequest
from engine.validation.params import write_params
from engine.validation.score_files import checkpoint_order, results_from_scores
from engine.validation.val_dir import given_val_dir


def validate_runs(store: Any, val: ValidationDir) -> list[dict[str, Any]]:
    """Validate runs recorded for VAL_DIR, newest first (matched on its path and its resolved path,
    through the index of ``runs.out_dir``: ``clean`` of a lab's workspace asks once per VAL_DIR)."""
    found = {r["id"]: r for path in {val.root, val.root.resolve()}
             for r in store.find_runs(out_dir=path, kind="validate")}
    return sorted(found.values(), key=lambda r: r["id"], reverse=True)


def results_from_store(store: Any, val: ValidationDir) -> list[ValidationResult]:
    """The validations of every validate run of VAL_DIR (epochs, then averaged weights); for one
    validated twice, the latest."""
    by_name: dict[CheckpointName, ValidationResult] = {}
    for run in reversed(validate_runs(store, val)):
        for result in store.validation_results(run["id"]):
            by_name[result.checkpoint] = result
    return [by_name[e] for e in sorted(by_name, key=checkpoint_order)]


def recorded_results(val: ValidationDir, store: Any = None) -> list[ValidationResult]:
    """VAL_DIR's results: the runs database's when it holds any (``store``), else recomputed from the
    score files."""
    results = results_from_store(store, val) if store is not None else []
    return results or results_from_scores(val)


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
    validated = checkpoint_list(r.checkpoint for r in results) if results else "none yet"
    raise SpkembError(f"{checkpoint_title(epoch)} has not been validated (validated: {validated}); "
                      "pick one of those, or validate it first")


def pick_best(val: ValidationDir, epoch: CheckpointName | None = None, store: Any = None) -> ValidationResult:
    """Point ``VAL_DIR/params.yml`` at ``epoch`` (default: the lowest EER) and return its result.

    Parameters
    ----------
    val : ValidationDir
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
    result = choose(recorded_results(val, store), epoch)
    weights = val.training.weights  # a VAL_DIR copied without its training run: its choice is still made
    if epoch is not None and result.checkpoint_name is None and weights.is_dir() and \
            not val.training.checkpoint(epoch).is_file():
        raise SpkembError(f"{checkpoint_title(epoch)} was validated, but its checkpoint is gone from "
                          f"{val.training.weights} (deleted by `spkemb-engine clean`?): apply could not use it; "
                          "pick an epoch whose checkpoint is there")
    write_params(val, result)
    return result


def cmd_pick(args: PickRequest) -> int:
    """``spkemb-engine pick [--epoch E] VAL_DIR``."""
    from engine.store import default_db_path, open_store

    val = given_val_dir(args.val_dir)
    db = default_db_path(args.db)
    named = args.db or os.environ.get("SPKEMB_DB")
    if named and not db.exists():  # a typo: the choice would reach params.yml and not the database
        raise SpkembError(f"no runs database at {db}: check --db FILE or SPKEMB_DB (without either, pick "
                          f"reads VAL_DIR's score files and records the choice in {PARAMS} only)")
    store = open_store(db) if db.exists() else None
    result = pick_best(val, args.epoch, store=store)
    if store is None:
        say(f"no runs database at {db}: the choice is recorded in {PARAMS} only")
    else:
        runs = validate_runs(store, val)
        if runs:
            store.set_best(runs[0]["id"], epoch=result.epoch, eer=result.eer,
                           how="lowest-eer" if args.epoch is None else "manual", checkpoint=result.checkpoint_name)
    out(f"{val.params}: {result.title}, EER {result.eer_text}")
    return 0
