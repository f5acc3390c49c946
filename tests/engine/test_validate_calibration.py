"""``validate --calibration SUBSET``: the calibration figures of each epoch, recorded and recomputable
from the two score files it leaves; minCllr with every result, calibration list or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.layout import TrainingDir
from engine.records import Checkpoint
from engine.store import open_store
from engine.validation.calibration import calibrated_figures, min_cllr, train_calibration
from engine.validation.score_files import read_scores, result_from_scores
from tests.engine.engine_runner import run_engine, run_in_process
from tests.engine.test_average import PROTOCOL, write_epochs


def _trained(tmp_path: Path, db_path: Path) -> TrainingDir:
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    write_epochs(trn, [1])
    with open_store(db_path) as store:
        train_id = store.create_run(kind="train", exp_dir=trn.root.parent.parent, out_dir=trn.root,
                                    protocol=PROTOCOL, subset="train", config=None, command=["t"], device="cpu")
        store.add_checkpoint(train_id, Checkpoint(epoch=1, step=10, path=trn.checkpoint(1), partial=False))
        store.set_status(train_id, "completed")
    return trn


@pytest.mark.slow
def test_validate_records_the_calibrated_figures(tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    trn = _trained(tmp_path, db_path)
    done = run_engine("validate", "--poll", "0.2", "--calibration", "development", str(trn.root), PROTOCOL,
                      db=db_path, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    assert f"calibrated on {PROTOCOL}.development: Cllr" in done.stderr
    # the test trials' own files, then the calibration list's (embedded with them)
    assert (f"48 trials over 12 files of {PROTOCOL} test, calibrated on 48 trials of {PROTOCOL}.development "
            "(24 files in all)") in done.stderr, done.stderr
    val = trn.validation(PROTOCOL, "test")
    with open_store(db_path) as store:
        (row,) = store.validations(store.find_runs(kind="validate")[0]["id"])
    assert row["calibration_list"] == f"{PROTOCOL}.development"
    # the same figures again from the files it left: the development scores train the calibration
    training_targets, training_scores = read_scores(val.calibration_score_file(1))
    is_target, scores = read_scores(val.score_file(1))
    pairs = [line.split()[2:] for line in val.score_file(1).read_text().splitlines()]
    assert pairs != [line.split()[2:] for line in val.calibration_score_file(1).read_text().splitlines()]
    expected = calibrated_figures(scores, is_target, train_calibration(training_scores, training_targets))
    for column in ("min_cllr", "cllr", "actual_dcf_01", "actual_dcf_005"):
        assert row[column] == pytest.approx(getattr(expected, column)), column
    assert row["min_cllr"] <= row["cllr"]
    # a validation without --calibration reuses the epoch's figures, not the calibration it did not ask for
    plain = run_in_process("validate", "--poll", "0.2", str(trn.root), PROTOCOL, db=db_path, database=demo_corpus)
    assert plain.returncode == 0 and "scored before" in plain.stderr and "calibrated" not in plain.stderr
    with open_store(db_path) as store:
        (again,) = store.validations(store.find_runs(kind="validate")[0]["id"])
    assert again["min_cllr"] == row["min_cllr"] and again["eer"] == row["eer"]
    assert (again["cllr"], again["actual_dcf_01"], again["actual_dcf_005"], again["calibration_list"]) == (
        None, None, None, None)


def test_every_result_from_scores_carries_its_min_cllr() -> None:
    is_target = np.r_[np.ones(20, bool), np.zeros(60, bool)]
    scores = np.random.default_rng(0).normal(0, 1, 80) + is_target
    result = result_from_scores(3, is_target, scores, n_bootstrap=10)
    assert result.min_cllr == pytest.approx(min_cllr(scores, is_target))
    assert result.cllr is None and result.calibration_list is None


def test_calibrating_on_the_evaluated_list_is_refused(tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    done = run_in_process("validate", "--calibration", "test", str(tmp_path), PROTOCOL, db=db_path,
                          database=demo_corpus)
    assert done.returncode == 2
    assert "--calibration test is the evaluated subset" in done.stderr and "Traceback" not in done.stderr
