"""A training run's checkpoints kept in step with their rows: written, superseded, reconciled.

In this process, on real checkpoint files and a real SQLite file; the end-to-end kill between a
rename and its row is test_train_records.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.atomic import TMP_PREFIX
from engine.config import config_to_dict
from engine.process.checkpoints import file_sha256, write_checkpoint
from engine.process.distributed import World
from engine.process.lifecycle import open_run
from engine.store import open_store
from engine.training.checkpointing import RunCheckpoints
from tests.engine.test_train_unit import CONFIG, make_exp, request, trn_of


def state(step: int) -> dict:
    return {"model": {}, "config": config_to_dict(CONFIG), "step": step}


def rows(db: Path, run_id: int) -> list[tuple[int, int, bool, str]]:
    with open_store(db, readonly=True) as store:
        return sorted((c.epoch, c.step, c.partial, Path(c.path).name) for c in store.checkpoint_records(run_id))


def test_an_epoch_supersedes_resume_pt_and_a_resumed_run_records_the_files_that_lost_their_row(
        tmp_path: Path, db_path: Path, demo_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = make_exp(tmp_path)
    trn = trn_of(exp)
    trn.root.mkdir(parents=True)
    recorder = open_run("train", trn, request(exp, db_path, demo_corpus, to=3), device="cpu", target_epoch=3,
                        config=config_to_dict(CONFIG))
    kept = RunCheckpoints(trn, recorder, World())
    trn.weights.mkdir(parents=True)
    (trn.weights / f"{TMP_PREFIX}0001.pt.abc").write_bytes(b"half a file")
    kept.sweep_stale()
    assert list(trn.weights.iterdir()) == []

    kept.save(state(3), epoch=0, step=3, partial=True)   # stopped mid-epoch 1
    assert rows(db_path, recorder.run_id) == [(0, 3, True, trn.resume.name)] and trn.resume.is_file()
    kept.save(state(5), epoch=1, step=5, partial=False)  # the end of epoch 1: resume.pt is stale
    assert rows(db_path, recorder.run_id) == [(1, 5, False, "0001.pt")]
    assert not trn.resume.exists() and kept.has(1) and not kept.has(2)

    # a process killed between the rename and the row; then a file that is no checkpoint
    write_checkpoint(trn.checkpoint(2), state(9))
    trn.checkpoint(3).write_bytes(b"not a checkpoint")
    capsys.readouterr()
    kept.reconcile()
    assert rows(db_path, recorder.run_id) == [(1, 5, False, "0001.pt"), (2, 9, False, "0002.pt")]
    with open_store(db_path, readonly=True) as store:
        (two,) = [c for c in store.checkpoint_records(recorder.run_id) if c.epoch == 2]
    assert two.sha256 == file_sha256(trn.checkpoint(2))
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warning.startswith("train: warning: epoch 3 has a checkpoint file but no record") and \
        "validate will skip epoch 3" in warning
    kept.reconcile()  # nothing left to record: no row twice
    assert len(rows(db_path, recorder.run_id)) == 2
