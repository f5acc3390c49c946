"""``sweep --optuna N --space FILE``: an Optuna study picks each trial's values, is told how each ended, and its
median pruner stops a trial behind the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.records import ValidationResult
from engine.store import open_store
from engine.sweeps.study import MAX_REFUSED, ask_next, open_study, optuna_prune, trial_ended, wants_trials
from engine.sweeps.trials import plan_of
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_in_process, start_engine

PROTOCOL = "Demo.SpeakerVerification.Voices"
SPACE = """task.params.margin: {low: 0.1, high: 0.4}
scheduler.params.learning_rate: {low: 0.001, high: 0.1, log: true}
architecture.params.tdnn.hidden_dim: {choices: [32, 64]}
"""
# a sweep checks its protocol and subsets before it records anything
pytestmark = pytest.mark.usefixtures("demo_database_env")


def _validated(store, run_id: int, eers: dict[int, float], out_dir: str = "v") -> None:
    run = store.run(run_id)
    val = store.create_run(kind="validate", exp_dir=run["exp_dir"], out_dir=f"{run['out_dir']}/{out_dir}",
                           protocol=PROTOCOL, subset="development", config=None, command=["validate"], device="cpu",
                           parent_id=run_id)
    for epoch, eer in eers.items():
        store.add_validation(val, ValidationResult(eer=eer, epoch=epoch), train_run_id=run_id)


def _optuna_sweep(tmp_path: Path, db_path: Path, *options: str) -> Path:
    """Sweep ``opt`` of four Optuna trials over ``SPACE``, queued (no queue started); returns its base folder."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    (tmp_path / "space.yml").write_text(SPACE)
    done = run_in_process("sweep", "--optuna", "4", "--space", str(tmp_path / "space.yml"), *options, "--no-queue",
                          "--name", "opt", str(base), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    return base


def test_the_fourth_trial_a_queue_asks_for_is_not_the_first_again(tmp_path: Path, db_path: Path) -> None:
    """Seeded 0, 1, 2, 3 …, the samplers opened for each trial drew trial 3's values next to trial 0's
    (margin 0.2421 against 0.2428): one trial in five was spent again."""
    _optuna_sweep(tmp_path, db_path, "--slots", "cpu")
    store = open_store(db_path)
    while ask_next(store):
        pass
    (sweep,) = store.sweeps()
    margins = [t["params"]["task.params.margin"] for t in store.sweep_trials(sweep["id"])]
    assert len(margins) == 4 and abs(margins[3] - margins[0]) > 0.003  # a hundredth of the range


def test_an_optuna_sweep_asks_the_study_tells_it_and_prunes_with_its_median_pruner(tmp_path: Path,
                                                                                    db_path: Path) -> None:
    base = _optuna_sweep(tmp_path, db_path, "--slots", "cpu*2", "--epochs", "3")
    store = open_store(db_path)
    (sweep,) = store.sweeps()
    assert (sweep["method"], sweep["planned"]) == ("optuna", 4)
    trials = store.sweep_trials(sweep["id"])
    assert [t["optuna_trial"] for t in trials] == [0, 1]  # one per slot to begin with; the queue asks for more
    for t in trials:
        p = t["params"]
        assert 0.1 <= p["task.params.margin"] <= 0.4 and 0.001 <= p["scheduler.params.learning_rate"] <= 0.1
        assert p["architecture.params.tdnn.hidden_dim"] in (32, 64)
        assert Path(t["exp_dir"], "config.yml").is_file() and t["status"] == "queued"
    assert (base / "sweeps" / "opt" / "optuna.journal").is_file()

    for t in trials:  # both ran: 10 % EER at each epoch
        _validated(store, t["run_id"], {0: 0.5, 1: 0.1, 2: 0.1, 3: 0.1})
        store.set_status(t["run_id"], "completed")
        trial_ended(store, store.trial_of_run(t["run_id"]), t["run_id"])
    study = open_study(plan_of(sweep))
    assert [(t.state.name, t.value) for t in study.trials] == [("COMPLETE", 0.1), ("COMPLETE", 0.1)]

    assert wants_trials(store) and ask_next(store)
    third = store.sweep_trials(sweep["id"])[2]
    assert third["optuna_trial"] == 2 and third["status"] == "queued"
    # the study opened anew for it drew other values (a sampler seeded alike drew trial 0's again)
    assert third["params"] not in [t["params"] for t in trials]
    _validated(store, third["run_id"], {0: 0.5, 1: 0.4})
    _validated(store, third["run_id"], {1: 0.05}, out_dir="test")  # a user's validation on another list
    eers = store.trial_eers(sweep["id"])
    assert eers[third["id"]] == {1: 0.4}  # the sweep's own validation, and no epoch 0
    verdict = optuna_prune(sweep, store.trial_of_run(third["run_id"]), eers[third["id"]], set())
    assert verdict == ("pruned at epoch 1: EER 40.0 % > median 10.0 %", 1)
    store.set_pruned(third["id"], epoch=1, reason=verdict[0])
    trial_ended(store, store.trial_of_run(third["run_id"]), third["run_id"])
    assert open_study(plan_of(sweep)).trials[2].state.name == "PRUNED"

    assert ask_next(store) and not wants_trials(store) and not ask_next(store)  # four made: no more
    assert len(store.sweep_trials(sweep["id"])) == 4


@pytest.mark.slow(seconds=35)
def test_the_queue_asks_the_study_for_each_trial_and_tells_it_each_end(tmp_path: Path, demo_corpus: Path,
                                                                       db_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    (tmp_path / "space.yml").write_text("task.params.margin: {low: 0.1, high: 0.4}\n")
    # the sweep is recorded in this process (--no-queue); its trials run in the queue's engine processes
    done = run_in_process("sweep", "--optuna", "3", "--space", str(tmp_path / "space.yml"), "--slots", "cpu",
                          "--epochs", "1", "--parallel", "0", "--prune", "none", "--no-queue", "--name", "opt",
                          "--database", str(demo_corpus), str(base), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    queue = start_engine("queue", "--poll", "0.3", "--idle-exit", "1", db=db_path, log=tmp_path / "queue.log")
    assert queue.wait(timeout=900) == 0, (tmp_path / "queue.log").read_text()
    store = open_store(db_path, readonly=True)
    (sweep,) = store.sweeps()
    trials = store.sweep_trials(sweep["id"])
    assert [t["optuna_trial"] for t in trials] == [0, 1, 2] and {t["status"] for t in trials} == {"completed"}
    study = open_study(plan_of(sweep))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert [t.value for t in study.trials] == [t["best_eer"] for t in trials]
    assert all(1 in t.intermediate_values for t in study.trials)  # each validated epoch reported


@pytest.mark.parametrize(("space", "says"), [
    (b"task.params.margin: {low: 0.1, high: \xff}\n", "space.yml:1: not UTF-8 text"),
    (b"a: &x [*x]\n", "space.yml:1:"),
])
def test_a_space_file_that_is_not_utf8_or_loops_is_one_line(tmp_path: Path, db_path: Path, space: bytes,
                                                           says: str) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    (tmp_path / "space.yml").write_bytes(space)
    done = run_in_process("sweep", "--optuna", "3", "--space", str(tmp_path / "space.yml"), "--no-queue",
                          str(base), PROTOCOL, db=db_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert f"--space {tmp_path}/{says}" in line, line
    assert not db_path.exists() or not open_store(db_path, readonly=True).sweeps()


def test_cancel_sweep_ends_an_optuna_sweep_that_would_ask_for_more(tmp_path: Path, db_path: Path) -> None:
    """Cancelling a queued trial left the study asking: the queue of another sweep later made and ran its next
    trial. `queue --cancel-sweep NAME` ends the sweep itself."""
    _optuna_sweep(tmp_path, db_path, "--slots", "cpu", "--epochs", "1")
    with open_store(db_path, readonly=True) as store:
        (first,) = [t["run_id"] for t in store.sweep_trials(store.sweeps()[0]["id"])]
        assert wants_trials(store)
    done = run_in_process("queue", "--cancel-sweep", "opt", db=db_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"queue: sweep opt makes no more trials (1 made); run(s) #{first} taken off the queue"
    with open_store(db_path, readonly=True) as store:
        assert not wants_trials(store) and store.sweeps()[0]["planned"] == 1
        assert (store.run(first)["status"], store.run(first)["reason"]) == ("stopped", "cancelled while queued")
        assert [t.state.name for t in open_study(plan_of(store.sweeps()[0])).trials] == ["FAIL"]
    refused = run_in_process("queue", "--cancel-sweep", "nope", db=db_path)
    assert refused.returncode == 2 and refused.stderr.strip().endswith(
        "--cancel-sweep nope: no sweep of that name in " + str(db_path) + " (its sweeps: opt)")


def test_a_trial_taken_off_the_queue_ends_failed_in_the_study(tmp_path: Path, db_path: Path) -> None:
    """`queue --cancel` of a queued Optuna trial left it RUNNING in the study's journal for good."""
    _optuna_sweep(tmp_path, db_path, "--slots", "cpu*2", "--epochs", "1")
    with open_store(db_path, readonly=True) as store:
        first, second = (t["run_id"] for t in store.sweep_trials(store.sweeps()[0]["id"]))
    done = run_in_process("queue", "--cancel", str(first), db=db_path)
    assert done.returncode == 0, done.stderr
    with open_store(db_path, readonly=True) as store:
        assert [t.state.name for t in open_study(plan_of(store.sweeps()[0])).trials] == ["FAIL", "RUNNING"]
        assert store.run(second)["status"] == "queued"


def test_trials_the_config_refuses_fail_in_the_study_until_the_sweep_makes_no_more(tmp_path: Path,
                                                                                   db_path: Path) -> None:
    """Each value alone fits the config, the two together do not (Nesterov without momentum). Before,
    each ask drew trial 0's values again, said "asking again later" at every poll, and kept the sweeps
    behind it from being asked: a queue never went idle."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG + "optimizer:\n   name: torch.optim.SGD\n   params:\n"
                                                   "      nesterov: false\n")
    refused = "optimizer.params.nesterov: {choices: [true]}\noptimizer.params.momentum: {choices: [0.0]}\n"
    (tmp_path / "refused.yml").write_text(refused)
    done = run_in_process("sweep", "--optuna", "4", "--space", str(tmp_path / "refused.yml"), "--no-queue",
                          "--name", "never", str(base), PROTOCOL, db=db_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"--space: {MAX_REFUSED} trials in a row the config refuses" in done.stderr
    assert "sweep never is recorded ended with 0 trial(s): narrow --space" in done.stderr
    store = open_store(db_path)
    assert not wants_trials(store) and not (base / "sweeps" / "never" / "trial-000").exists()

    # a space whose values the config takes at first, then refuses (as a rule between keys would)
    (tmp_path / "space.yml").write_text(SPACE)
    done = run_in_process("sweep", "--optuna", "4", "--space", str(tmp_path / "space.yml"), "--no-queue",
                          "--slots", "cpu", "--name", "opt", str(base), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    sweep = next(s for s in store.sweeps() if s["name"] == "opt")
    with store.transaction() as conn:
        conn.execute("UPDATE sweeps SET space = ? WHERE id = ?", (json.dumps(
            {"optimizer.params.nesterov": {"choices": [True]}, "optimizer.params.momentum": {"choices": [0.0]}}),
            sweep["id"]))
    for _ in range(MAX_REFUSED - 1):
        assert not ask_next(store) and wants_trials(store)
    assert not ask_next(store) and not wants_trials(store)  # ended: the one trial made at first
    assert store.sweep(sweep["id"])["planned"] == 1
    assert [t.state.name for t in open_study(plan_of(sweep)).trials] == ["RUNNING"] + ["FAIL"] * MAX_REFUSED


@pytest.mark.parametrize("space", [b"task.params.per_fold: {low: 2, high: 3.5}\n",
                                   b"task.params.margin: {low: 0.1, high: 5.0}\n",
                                   b"architecture.params.tdnn.hidden_dim: {choices: [32, abc]}\n"])
def test_a_range_the_config_refuses_anywhere_in_it_is_one_line_with_nothing_recorded(tmp_path: Path,
                                                                                    db_path: Path,
                                                                                    space: bytes) -> None:
    """Only each range's low (or first choice) was checked: the sweep was recorded, then failed."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    (tmp_path / "space.yml").write_bytes(space)
    done = run_in_process("sweep", "--optuna", "4", "--space", str(tmp_path / "space.yml"), "--no-queue", str(base),
                          PROTOCOL, db=db_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "which the config refuses" in done.stderr
    assert not db_path.exists() or open_store(db_path).sweeps() == []
    assert not (base / "sweeps").exists()

def test_the_optuna_pruner_judges_no_epoch_before_prune_after(tmp_path: Path, db_path: Path) -> None:
    """MedianPruner(n_warmup_steps=E - 1) pruned at epoch E - 1."""
    _optuna_sweep(tmp_path, db_path, "--slots", "cpu*3", "--epochs", "3", "--prune-after", "2")
    store = open_store(db_path)
    (sweep,) = store.sweeps()
    first, second, third = store.sweep_trials(sweep["id"])
    for t in (first, second):
        _validated(store, t["run_id"], {1: 0.1, 2: 0.1, 3: 0.1})
        store.set_status(t["run_id"], "completed")
        trial_ended(store, store.trial_of_run(t["run_id"]), t["run_id"])
    seen: set[int] = set()
    trial = store.trial_of_run(third["run_id"])
    assert optuna_prune(sweep, trial, {1: 0.5}, seen) is None
    assert optuna_prune(sweep, trial, {1: 0.5, 2: 0.5}, seen) == ("pruned at epoch 2: EER 50.0 % > median 10.0 %", 2)
