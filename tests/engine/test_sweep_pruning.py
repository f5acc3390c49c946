"""Pruning a sweep's trial on validated EER through the stop path, and its slot going to the next trial."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.records import ValidationResult
from engine.store import open_store
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_in_process, start_engine, wait_for

PROTOCOL = "Demo.SpeakerVerification.Voices"


def _finished_elsewhere(store, run_id: int, eer: float, epochs: int) -> None:
    """A trial that ran before (as a queue leaves it): completed, validated at ``eer`` every epoch."""
    run = store.run(run_id)
    validate = store.create_run(kind="validate", exp_dir=run["exp_dir"], out_dir=run["out_dir"] + "/v",
                                protocol=PROTOCOL, subset="development", config=None, command=["validate"],
                                device="cpu", parent_id=run_id)
    for epoch in range(epochs + 1):
        store.add_validation(validate, ValidationResult(eer=eer, epoch=epoch), train_run_id=run_id)
    store.set_status(validate, "completed")
    store.set_status(run_id, "completed")
    store.end_entry(run_id)


@pytest.mark.slow(seconds=20)
def test_a_trial_behind_the_median_is_stopped_with_its_reason_and_its_slot_goes_on(
        tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    # the sweep is recorded in this process (--no-queue); its trials run in the queue's engine processes
    done = run_in_process("sweep", "--set", "task.params.margin=0.1,0.15,0.2,0.25", "--slots", "cpu",
                          "--epochs", "50", "--parallel", "0", "--no-queue", "--database", str(demo_corpus),
                          str(base), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    store = open_store(db_path)
    (sweep,) = store.sweeps()
    trials = store.sweep_trials(sweep["id"])
    for trial in trials[:2]:  # two trials that reached 1 % EER: a few training steps cannot
        _finished_elsewhere(store, trial["run_id"], 0.01, 50)
    queue = start_engine("queue", "--slots", "cpu", "--poll", "0.3", db=db_path, log=tmp_path / "queue.log")
    behind = trials[2]["run_id"]
    wait_for(lambda: store.run(behind)["status"] == "stopped", timeout=600, what="the trial behind to be pruned")
    run = store.run(behind)
    assert re.fullmatch(r"pruned at epoch 1: EER \d+\.\d % > median 1\.0 %", run["reason"]), run["reason"]
    (row,) = [t for t in store.sweep_trials(sweep["id"]) if t["run_id"] == behind]
    assert row["pruned_epoch"] == 1 and row["prune_reason"] == run["reason"]
    assert run["epoch"] < 50  # stopped long before its last epoch
    # the stop path: training checkpointed where it stopped, so the run can be resumed
    assert Path(run["out_dir"], "weights", "resume.pt").exists() or list(Path(run["out_dir"], "weights").glob("0*.pt"))
    nxt = trials[3]["run_id"]
    wait_for(lambda: store.run(nxt)["status"] in ("indexing", "running", "stopped", "completed"), timeout=300,
             what="the next trial to take the slot")
    entries = {e["run_id"]: e for e in store.queue_entries(open_only=False)}
    assert entries[nxt]["slot"] == entries[behind]["slot"] == "cpu"
    assert entries[nxt]["started_at"] >= entries[behind]["ended_at"]
    queue.terminate()
    assert queue.wait(timeout=60) == 0


def test_the_median_rule_judges_a_trials_newest_epoch_only() -> None:
    """A trial leading at epoch 3 was stopped "at epoch 1" once later trials beat its first epoch."""
    from engine.sweeps.pruning import median_rule

    leader, early = {1: 0.2, 2: 0.1, 3: 0.05}, [{1: 0.3, 2: 0.2, 3: 0.15}, {1: 0.25, 2: 0.2, 3: 0.1}]
    assert median_rule(leader, early, prune_after=1) is None
    assert median_rule(leader, early + [{1: 0.15}, {1: 0.12}], prune_after=1) is None
    behind = median_rule({1: 0.2, 2: 0.3}, early, prune_after=1)
    assert behind is not None and (behind.epoch, behind.eer, behind.median) == (2, 0.3, 0.2)
    assert median_rule({1: 0.2, 2: 0.3}, early, prune_after=3) is None  # not before --prune-after
    assert median_rule({0: 0.9}, early, prune_after=0) is None  # never epoch 0, the untrained network
