"""validate beside a (real or scripted) training run, params.yml and `spkemb-engine pick`."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from engine.layout import TrainingDir, ValidationDir
from engine.process import folder_lock
from engine.records import ValidationResult
from engine.store import open_store
from engine.validation.params import read_params, write_params
from engine.validation.score_files import read_scores, results_from_scores, write_scores
from engine.validation.selection import pick_best
from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_in_process
from tests.engine.test_numbers_checked import one_line_error

PROTOCOL = "Demo.SpeakerVerification.Voices"
TESTS = Path(__file__).parents[1]

#: writes checkpoints of the tiny config the way training does, each after a pause; before
#: each one, half of its bytes sit at the final path for a while, with no row: a reader that
#: trusted files instead of rows would load a truncated checkpoint and fail
WRITER = """
import io, sys, time, torch
from pathlib import Path
sys.path.insert(0, {tests!r})
from conftest import TINY_CONFIG
from engine.config import config_to_dict, parse_config
from engine.layout import TrainingDir
from engine.model import build_model
from engine.process.checkpoints import save_checkpoint
from engine.records import Checkpoint
from engine.store import open_store
from tests.conftest import TINY_CONFIG

trn_dir, epochs, pause = Path({trn_dir!r}), {epochs!r}, {pause!r}
config = parse_config(TINY_CONFIG, "tiny")
store = open_store({db!r})
run = store.create_run(kind="train", exp_dir=trn_dir.parent.parent, out_dir=trn_dir, protocol="P.Q.R",
                       subset="train", config=config_to_dict(config), command=["writer"], device="cpu",
                       target_epoch=max(epochs))
trn_dir.mkdir(parents=True, exist_ok=True)  # as train does when it starts
print("ready", flush=True)
for epoch in epochs:
    time.sleep(pause)
    torch.manual_seed(epoch)
    payload = {{"model": build_model(config).state_dict(), "config": config_to_dict(config),
               "epoch": epoch, "step": 10 * epoch}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = TrainingDir(trn_dir).checkpoint(epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    time.sleep(pause)
    save_checkpoint(path, payload)
    store.add_checkpoint(run, Checkpoint(epoch=epoch, step=10 * epoch, path=path, partial=False))
store.set_status(run, "completed")
"""


def engine(*argv: str, database: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYANNOTE_DATABASE_CONFIG": str(database)}
    return children.spawn([sys.executable, "-m", "engine", *argv], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def start_writer(trn_dir: Path, db: Path, epochs: list[int], pause: float) -> subprocess.Popen:
    code = WRITER.format(tests=str(TESTS), trn_dir=str(trn_dir), epochs=epochs, pause=pause, db=str(db))
    writer = children.spawn([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    return writer


def write_checkpoints(trn_dir: Path, db: Path, epochs: list[int]) -> None:
    """The run and checkpoints ``start_writer`` records, written at once in this process: for the
    tests that need them in place before validate starts, not a writer running beside it."""
    import torch

    from engine.config import config_to_dict, parse_config
    from engine.model import build_model
    from engine.process.checkpoints import save_checkpoint
    from engine.records import Checkpoint

    config = parse_config(TINY_CONFIG, "tiny")
    with open_store(db) as store:
        run = store.create_run(kind="train", exp_dir=trn_dir.parent.parent, out_dir=trn_dir, protocol="P.Q.R",
                               subset="train", config=config_to_dict(config), command=["writer"], device="cpu",
                               target_epoch=max(epochs))
        for epoch in epochs:
            torch.manual_seed(epoch)
            path = save_checkpoint(TrainingDir(trn_dir).checkpoint(epoch), {
                "model": build_model(config).state_dict(), "config": config_to_dict(config),
                "epoch": epoch, "step": 10 * epoch})
            store.add_checkpoint(run, Checkpoint(epoch=epoch, step=10 * epoch, path=path, partial=False))
        store.set_status(run, "completed")


def val_dir_of(trn_dir: Path, subset: str = "test") -> Path:
    return trn_dir / "validate_equal_error_rate" / f"{PROTOCOL}.{subset}"


def validation_refused(tmp_path: Path, db_path: Path, database: Path) -> tuple[str, Path]:
    """Validate a one-checkpoint run against ``database``, expected to refuse it: (its error line, VAL_DIR)."""
    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [1])
    done = run_in_process("validate", str(trn_dir), PROTOCOL, database=database)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1], val_dir_of(trn_dir)


@pytest.mark.slow
def test_validate_follows_checkpoints_as_they_are_committed(tmp_path: Path, demo_corpus: Path, db_path: Path):
    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    writer = start_writer(trn_dir, db_path, [1, 2, 3], pause=1.0)
    validate = engine("validate", "--chronological", "--poll", "0.2", str(trn_dir), PROTOCOL,
                      database=demo_corpus)
    out, err = validate.communicate(timeout=300)
    assert writer.wait(timeout=60) == 0
    assert validate.returncode == 0, err

    store = open_store(db_path)
    train = store.find_runs(kind="train")[0]
    run = store.find_runs(kind="validate")[0]
    assert run["status"] == "completed" and run["parent_id"] == train["id"]
    rows = store.validations(run["id"])
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["epoch"] for r in sorted(rows, key=lambda r: r["time"])] == [1, 2, 3]  # chronological
    checkpoint_times = {c["epoch"]: c["time"] for c in store.checkpoints(train["id"])}
    assert all(r["time"] >= checkpoint_times[r["epoch"]] for r in rows)
    assert all(r["train_run_id"] == train["id"] and r["n_trials"] == 48 for r in rows)
    assert all(r["eer_low"] <= r["eer"] <= r["eer_high"] for r in rows)

    val_dir = val_dir_of(trn_dir)
    best = min(rows, key=lambda r: (r["eer"], r["epoch"]))
    params = read_params(ValidationDir(val_dir))
    assert params.checkpoint == best["epoch"] == run["best_epoch"]
    assert params.eer == pytest.approx(best["eer"])
    written = yaml.safe_load(ValidationDir(val_dir).params.read_text())
    assert set(written) == {"epoch", "equal_error_rate", "min_dcf_0.01", "min_dcf_0.05", "eer_ci_95"}
    is_target, scores = read_scores(ValidationDir(val_dir).score_file(2))
    assert len(scores) == 48 and is_target.any() and (~is_target).any()
    assert np.all(np.abs(scores) <= 1.0 + 1e-6)
    assert not list(val_dir.rglob(".tmp-*"))
    second_validation_reuses_scored_epochs_and_keeps_a_pick(trn_dir, demo_corpus, db_path)


@pytest.mark.slow
def test_validate_says_it_waits_once_it_has_scored_what_there_is(tmp_path: Path, demo_corpus: Path,
                                                                 db_path: Path) -> None:
    """Beside training, an epoch is minutes of silence after the last score: said once, not every poll."""
    import torch

    from engine.config import config_to_dict, parse_config
    from engine.model import build_model
    from engine.process.checkpoints import save_checkpoint
    from engine.records import Checkpoint
    from tests.engine.engine_runner import start_engine, wait_for

    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    config = parse_config(TINY_CONFIG, "tiny")
    store = open_store(db_path)
    run = store.create_run(kind="train", exp_dir=trn.root.parent.parent, out_dir=trn.root, protocol=PROTOCOL,
                           subset="train", config=config_to_dict(config), command=["t"], device="cpu",
                           target_epoch=2)

    def commit(epoch: int) -> None:
        torch.manual_seed(epoch)
        path = save_checkpoint(trn.checkpoint(epoch), {"model": build_model(config).state_dict(),
                                                       "config": config_to_dict(config), "epoch": epoch})
        store.add_checkpoint(run, Checkpoint(epoch=epoch, step=10 * epoch, path=path, partial=False))
        store.heartbeat(run, epoch=epoch, step=10 * epoch)

    commit(1)
    log = tmp_path / "validate.log"
    validate = start_engine("validate", "--poll", "0.1", str(trn.root), PROTOCOL, db=db_path,
                            database=demo_corpus, log=log)
    waiting = f"validate: waiting for the next checkpoint of training run #{run} (running, epoch 1 of 2)\n"
    wait_for(lambda: waiting in log.read_text(), what="the waiting line", timeout=180)
    time.sleep(1.0)  # ten polls more: still one line
    commit(2)
    store.set_status(run, "completed")
    assert validate.wait(timeout=180) == 0, log.read_text()
    text = log.read_text()
    assert text.count(waiting) == 1, text
    assert text.index("epoch 1: EER") < text.index(waiting) < text.index("epoch 2: EER"), text


def second_validation_reuses_scored_epochs_and_keeps_a_pick(trn_dir: Path, demo_corpus: Path, db_path: Path):
    """As after `train --resume`: epochs already scored are read back, not embedded again; only a
    new epoch with a lower EER moves params.yml off the epoch the user picked."""
    val_dir = val_dir_of(trn_dir)
    scores = {e: ValidationDir(val_dir).score_file(e).read_bytes() for e in (1, 2, 3)}
    results = {r.checkpoint: r.eer for r in results_from_scores(ValidationDir(val_dir))}
    worst = max(results, key=lambda e: (results[e], e))
    # through engine.cli.main in this process: the validation above was the one beside a writer
    pick = run_in_process("pick", "--epoch", str(worst), str(val_dir), database=demo_corpus)
    assert pick.returncode == 0, pick.stderr
    stamps = {e: ValidationDir(val_dir).score_file(e).stat().st_mtime_ns for e in (1, 2, 3)}
    # a validate killed while writing a score file left its temporary file: the next one sweeps it
    left = ValidationDir(val_dir).scores / f".tmp-{children.dead_pid()}-0004.txt"
    left.write_text("1 0.5 a b\n")
    os.utime(left, (time.time() - 3600, time.time() - 3600))

    # a second validation of the folder while one runs (`v` twice, AS-norm beside plain scores) wrote the
    # same score files and each its own pick: refused before it records anything (the lock held here)
    with open_store(db_path, readonly=True) as store:
        recorded = len(store.find_runs(kind="validate"))
    with folder_lock.held(val_dir, ValidationDir(val_dir).lock, folder_lock.VALIDATION):
        twice = run_in_process("validate", "--poll", "0.2", str(trn_dir), PROTOCOL, database=demo_corpus)
    line = one_line_error(twice, "validate")
    assert f"is being validated by another process ({os.uname().nodename} pid {os.getpid()}): two validations of one " \
           "folder would write the same score files and params.yml" in line, line
    with open_store(db_path, readonly=True) as store:
        assert len(store.find_runs(kind="validate")) == recorded
    assert left.exists()

    second = run_in_process("validate", "--poll", "0.2", str(trn_dir), PROTOCOL, database=demo_corpus)
    assert not left.exists()
    err = second.stderr
    assert second.returncode == 0, err
    assert err.count("scored before") == 3 and "embedding" not in err
    assert {e: ValidationDir(val_dir).score_file(e).stat().st_mtime_ns for e in (1, 2, 3)} == stamps
    assert read_params(ValidationDir(val_dir)).checkpoint == worst  # the pick stands: no new epoch was validated
    with open_store(db_path, readonly=True) as store:
        newest = store.find_runs(kind="validate")[0]
        assert sorted(r["epoch"] for r in store.validations(newest["id"])) == [1, 2, 3]
        assert {r["epoch"]: r["eer"] for r in store.validations(newest["id"])} == results
        # the new run points where params.yml does (the report and the runs table read it), and says so
        assert (newest["best_epoch"], newest["best_eer"], newest["best_how"]) == (worst, results[worst], "manual")
    last = err.strip().splitlines()[-2:]  # where params.yml points, then where the run is recorded
    assert last[0].endswith(f"params.yml points at epoch {worst} (EER {100 * results[worst]:.2f} %)"), err
    assert last[1] == f"validate: run #{newest['id']} completed, recorded in {db_path}", err

    again = run_in_process("validate", "--rescore", "--poll", "0.2", str(trn_dir), PROTOCOL, database=demo_corpus)
    err = again.stderr
    assert again.returncode == 0, err
    assert "scored before" not in err
    # the same network, the same scores
    assert {e: ValidationDir(val_dir).score_file(e).read_bytes() for e in (1, 2, 3)} == scores
    lowest = min(results, key=lambda e: (results[e], e))
    assert read_params(ValidationDir(val_dir)).checkpoint == lowest, err
    # a rescore of one worse epoch leaves params.yml where it points (it moved to that epoch, as if
    # nothing had been picked before)
    assert worst != lowest
    only = run_in_process("validate", "--rescore", "--from", str(worst), "--to", str(worst), "--poll", "0.2",
                          str(trn_dir), PROTOCOL, database=demo_corpus)
    assert only.returncode == 0, only.stderr
    assert read_params(ValidationDir(val_dir)).checkpoint == lowest, only.stderr


@pytest.mark.slow
def test_newest_first_every_and_to(tmp_path: Path, demo_corpus: Path, db_path: Path):
    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [1, 2, 3, 4, 5])
    # the training run is still "running" for validate only if it says so: make it say so
    store = open_store(db_path)
    train = store.find_runs(kind="train")[0]
    store.set_status(train["id"], "running")
    validate = run_in_process("validate", "--every", "2", "--to", "4", "--poll", "0.2", str(trn_dir), PROTOCOL,
                              database=demo_corpus)
    # stopped because epoch 4 (--to) exists, not because training ended
    assert validate.returncode == 0, validate.stderr
    run = store.find_runs(kind="validate")[0]
    rows = sorted(store.validations(run["id"]), key=lambda r: r["time"])
    assert [r["epoch"] for r in rows] == [4, 2]  # newest first; 0-based multiples of --every


@pytest.mark.slow
def test_validate_started_before_training_waits_for_trn_dir(tmp_path: Path, demo_corpus: Path, db_path: Path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    trn_dir = exp / "train" / f"{PROTOCOL}.train"
    validate = engine("validate", "--poll", "0.2", str(trn_dir), PROTOCOL, database=demo_corpus)
    assert validate.stderr is not None
    said = [validate.stderr.readline()]
    while said[-1] and "waiting up to" not in said[-1]:  # up to the line saying it waits, or its end
        said.append(validate.stderr.readline())
    assert "waiting up to" in said[-1] and validate.poll() is None, "".join(said)
    write_checkpoints(trn_dir, db_path, [1])
    _, err = validate.communicate(timeout=120)
    assert validate.returncode == 0, err
    assert "epoch 1: EER" in err

    # a path that cannot be a TRN_DIR fails at once, naming it
    typo = run_in_process("validate", str(tmp_path / "nowhere"), PROTOCOL, database=demo_corpus)
    assert typo.returncode == 2 and "nowhere is not a TRN_DIR" in typo.stderr

    # a typo of one beside it: waited for (a training may be starting it), naming the one it is close to
    misspelt = engine("validate", str(trn_dir.with_name(f"{PROTOCOL}.trian")), PROTOCOL, database=demo_corpus)
    assert misspelt.stderr is not None
    line = misspelt.stderr.readline()
    while line and "waiting up to" not in line:
        line = misspelt.stderr.readline()
    misspelt.kill()
    misspelt.communicate(timeout=60)
    assert f"(training is starting?; did you mean {trn_dir}?)" in line, line
    from engine.validation.val_dir import near_trn_dir  # which the refusal after the wait ends with too

    assert near_trn_dir(TrainingDir(trn_dir.with_name("Other.Protocol.train"))) == ""


def test_an_experiment_or_a_validation_folder_given_for_trn_dir_is_refused_naming_the_one(
        tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    said = run_in_process("validate", str(exp), PROTOCOL, database=demo_corpus).stderr
    assert f"{exp} is an experiment folder (EXP_DIR), not a TRN_DIR" in said and f"spkemb-engine train {exp}" in said
    trn_dir = exp / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [1])
    val_dir = trn_dir / "validate_equal_error_rate" / f"{PROTOCOL}.test"
    val_dir.mkdir(parents=True)
    for given, says in ((exp, f"pass one of its training folders: {trn_dir}"),
                        (val_dir, f"is a validation folder, not a TRN_DIR (EXP_DIR/train/PROTOCOL.SUBSET): pass its "
                                  f"training folder {trn_dir}"),
                        (val_dir.parent, f"pass its training folder {trn_dir}")):
        done = run_in_process("validate", str(given), PROTOCOL, database=demo_corpus, db=db_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        (line,) = done.stderr.splitlines()
        assert says in line, line
    assert [r["kind"] for r in open_store(db_path, readonly=True).runs()] == ["train"]  # nothing recorded


@pytest.mark.slow
def test_a_pick_scored_on_another_trial_list_behind_the_same_name_is_not_weighed(
        tmp_path: Path, demo_corpus: Path, db_path: Path):
    """The list behind the protocol's name changed (VoxCeleb1-O to -H, say): params.yml kept an epoch
    whose EER was measured on the old list against the new list's figures."""
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    database = corpus / "database.yml"
    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [1, 2])
    done = run_in_process("validate", "--to", "1", str(trn_dir), PROTOCOL, database=database)
    assert done.returncode == 0, done.stderr
    val = ValidationDir(val_dir_of(trn_dir))
    write_params(val, ValidationResult(epoch=1, eer=0.0))  # a figure no epoch beats, on the old list
    trial_list = corpus / "voxceleb" / "lists" / "test.trial.txt"
    trial_list.write_text("".join(trial_list.read_text().splitlines(keepends=True)[8:]))  # another list
    done = run_in_process("validate", "--from", "2", str(trn_dir), PROTOCOL, database=database)
    assert done.returncode == 0, done.stderr
    assert read_params(val).checkpoint == 2, done.stderr  # the one epoch scored on this list


def test_a_missing_trial_file_is_fatal_and_touches_nothing(tmp_path: Path, demo_corpus: Path, db_path: Path):
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    first_trial = (corpus / "voxceleb" / "lists" / "test.trial.txt").read_text().split()[1]
    missing = corpus / "voxceleb" / "wav" / f"{first_trial}.wav"
    missing.unlink()

    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [1])
    val_dir = val_dir_of(trn_dir)
    write_params(ValidationDir(val_dir), ValidationResult(epoch=1, eer=0.25))
    write_scores(ValidationDir(val_dir).score_file(1), [(1, 0.5, "a", "b"), (0, 0.1, "a", "c")])
    before = {p: p.read_bytes() for p in val_dir.rglob("*") if p.is_file()}

    validate = run_in_process("validate", str(trn_dir), PROTOCOL, database=corpus / "database.yml")
    assert validate.returncode == 2
    assert str(missing) in validate.stderr and "does not exist" in validate.stderr
    lock = ValidationDir(val_dir).lock  # the one file it adds: the lock it held
    assert {p: p.read_bytes() for p in val_dir.rglob("*") if p.is_file() and p != lock} == before

    store = open_store(db_path)
    run = store.find_runs(kind="validate")[0]
    assert run["status"] == "failed" and str(missing) in run["reason"]
    assert store.problems(run["id"])[0]["path"] == str(missing)
    assert store.validations(run["id"]) == []


@pytest.mark.slow
def test_file_mode_trusts_only_settled_checkpoints(tmp_path: Path, demo_corpus: Path):
    """Without a database row (event files elsewhere, a copied folder), files whose size settled."""
    from engine.validation.watch import CheckpointWatcher

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "0001.pt").write_bytes(b"x" * 10)
    (weights / ".tmp-1-0002.pt").write_bytes(b"x" * 10)
    watcher = CheckpointWatcher(TrainingDir(tmp_path))
    first = watcher.poll()
    assert first.checkpoints == {} and first.pending and first.source == "files"
    os.utime(weights / "0001.pt", (time.time() - 5, time.time() - 5))
    time.sleep(1.1)
    assert watcher.poll().checkpoints == {1: weights / "0001.pt"}
    with open(weights / "0001.pt", "ab") as f:  # still growing: not trusted again until settled
        f.write(b"more")
    assert watcher.poll().checkpoints == {}


def test_pick_best_and_pick_command(tmp_path: Path, db_path: Path):
    val_dir = tmp_path / "val"
    rng = np.random.default_rng(0)
    is_target = rng.random(400) < 0.5
    for epoch, separation in ((1, 0.5), (2, 3.0), (3, 1.5)):
        scores = rng.normal(size=400) + separation * is_target
        write_scores(ValidationDir(val_dir).score_file(epoch),
                     [(t, s, f"u{i}", f"v{i}") for i, (t, s) in enumerate(zip(is_target, scores, strict=True))])
    results = results_from_scores(ValidationDir(val_dir))
    assert [r.checkpoint for r in results] == [1, 2, 3]
    assert results[1].eer < results[2].eer < results[0].eer

    assert pick_best(ValidationDir(val_dir)).checkpoint == 2  # no database: from the score files
    params = read_params(ValidationDir(val_dir))
    assert params.checkpoint == 2 and len(params.eer_ci_95) == 2
    assert params.eer_ci_95[0] <= params.eer <= params.eer_ci_95[1]

    # a database that knows VAL_DIR: its rows win, `pick --epoch` records a manual choice
    store = open_store(db_path)
    run = store.create_run(kind="validate", exp_dir=tmp_path, out_dir=val_dir, protocol=PROTOCOL,
                           subset="test", config=None, command=["t"], device="cpu")
    for epoch, eer in ((1, 0.3), (2, 0.2), (3, 0.1)):
        store.add_validation(run, ValidationResult(epoch=epoch, eer=eer, eer_low=eer - 0.01,
                             eer_high=eer + 0.01, mindcf_01=0.5, mindcf_005=0.4, threshold=0.0,
                             n_trials=400, scores_path=None), train_run_id=None)
    done = children.run([sys.executable, "-m", "engine", "pick", str(val_dir)], timeout=120)
    assert done.returncode == 0, done.stderr
    assert read_params(ValidationDir(val_dir)).checkpoint == 3
    done = run_in_process("pick", "--epoch", "1", str(val_dir))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load((val_dir / "params.yml").read_text()) == {
        "epoch": 1, "equal_error_rate": 0.3, "min_dcf_0.01": 0.5, "min_dcf_0.05": 0.4,
        "eer_ci_95": [pytest.approx(0.29), pytest.approx(0.31)]}
    assert store.run(run)["best_epoch"] == 1 and store.run(run)["best_how"] == "manual"
    done = run_in_process("pick", "--epoch", "9", str(val_dir))
    assert done.returncode == 2 and "epoch 9 has not been validated (validated: 1-3)" in done.stderr
    assert read_params(ValidationDir(val_dir)).checkpoint == 1


def test_pick_refuses_a_runs_database_that_is_not_there(tmp_path: Path, db_path: Path):
    """A mistyped --db is one line and leaves params.yml alone; with no database named, pick says that
    the choice stays in params.yml."""
    val_dir = tmp_path / "val"
    rng = np.random.default_rng(0)
    is_target = rng.random(200) < 0.5
    for epoch in (1, 2):
        scores = rng.normal(size=200) + epoch * is_target
        write_scores(ValidationDir(val_dir).score_file(epoch),
                     [(t, s, f"u{i}", f"v{i}") for i, (t, s) in enumerate(zip(is_target, scores, strict=True))])
    done = run_in_process("pick", "--db", str(tmp_path / "typo.db"), "--epoch", "1", str(val_dir))
    assert done.returncode == 2
    assert done.stderr.startswith(f"spkemb-engine pick: error: no runs database at {tmp_path / 'typo.db'}: check --db")
    assert not (val_dir / "params.yml").exists() and not (tmp_path / "typo.db").exists()
    done = run_in_process("pick", "--epoch", "1", str(val_dir), env={"SPKEMB_DB": ""}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "the choice is recorded in params.yml only" in done.stderr
    assert read_params(ValidationDir(val_dir)).checkpoint == 1


@pytest.mark.parametrize("command", ["pick", "apply", "export"])
def test_a_training_folder_given_for_a_val_dir_is_named_with_its_validations(tmp_path: Path, command: str):
    """TRN_DIR (or its validate_equal_error_rate folder) where VAL_DIR belongs: the line names the
    VAL_DIRs inside, instead of advising to validate what was validated."""
    trn = tmp_path / "exp" / "train" / "P.S.T.train"
    vals = [trn / "validate_equal_error_rate" / f"P.S.T.{subset}" for subset in ("development", "test")]
    for val in vals:
        (val / "scores").mkdir(parents=True)
        (val / "scores" / "0001.txt").write_text("1 0.5 a b\n")
    (trn / "weights").mkdir()
    extra = {"apply": ["P.S.T"], "export": ["-o", str(tmp_path / "net.onnx")]}.get(command, [])
    for given in (trn, trn / "validate_equal_error_rate"):
        done = run_in_process(command, str(given), *extra, db=tmp_path / "runs.db")
        assert done.returncode == 2
        assert done.stderr.strip() == (f"spkemb-engine {command}: error: {given} is a training folder, not a VAL_DIR "
                                       "(TRN_DIR/validate_equal_error_rate/PROTOCOL.SUBSET): pass one of its "
                                       f"validations: {vals[0]}, {vals[1]}")
    assert not (tmp_path / "runs.db").exists() and not (tmp_path / "net.onnx").exists()


@pytest.mark.slow
def test_validate_beside_a_real_training_process(tmp_path: Path, demo_corpus: Path, db_path: Path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    train = engine("train", "--to", "3", "--parallel", "0", str(exp), PROTOCOL, database=demo_corpus)
    trn_dir = exp / "train" / f"{PROTOCOL}.train"
    store = open_store(db_path)
    deadline = time.time() + 120
    while not store.find_runs(kind="train") and time.time() < deadline:
        time.sleep(0.2)
    validate = engine("validate", "--poll", "0.2", str(trn_dir), PROTOCOL, database=demo_corpus)
    _, train_err = train.communicate(timeout=600)
    assert train.returncode == 0, train_err
    _, err = validate.communicate(timeout=600)
    assert validate.returncode == 0, err
    run = store.find_runs(kind="validate")[0]
    # epoch 0 is the untrained network that train checkpoints before its first step
    assert sorted(r["epoch"] for r in store.validations(run["id"])) == [0, 1, 2, 3]
    rows = store.validations(run["id"])
    best = min(rows, key=lambda r: (r["eer"], r["epoch"]))
    assert read_params(ValidationDir(val_dir_of(trn_dir))).checkpoint == best["epoch"]


@pytest.mark.slow
def test_sigterm_stops_validation_with_exit_0_as_train(tmp_path: Path, demo_corpus: Path, db_path: Path):
    # a training run still indexing (no checkpoint yet): validation waits for it, as for a running one
    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    trn_dir.mkdir(parents=True)
    store = open_store(db_path)
    store.create_run(kind="train", exp_dir=trn_dir.parent.parent, out_dir=trn_dir, protocol=PROTOCOL,
                     subset="train", config=None, command=["train"], device="cpu", status="indexing")
    validate = engine("validate", "--poll", "0.2", str(trn_dir), PROTOCOL, database=demo_corpus)
    deadline = time.monotonic() + 120
    while not store.find_runs(kind="validate") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    assert validate.poll() is None  # still waiting for the indexing run's checkpoints
    validate.send_signal(signal.SIGTERM)
    _, err = validate.communicate(timeout=60)
    assert validate.returncode == 0, err
    (run,) = store.find_runs(kind="validate")
    assert run["status"] == "stopped" and run["reason"] == "stopped by SIGTERM"


def test_a_cohort_that_cannot_be_made_is_refused_before_any_run_is_recorded(tmp_path: Path, demo_corpus: Path,
                                                                             db_path: Path):
    trn_dir = tmp_path / "demo" / "train" / f"{PROTOCOL}.train"
    with open_store(db_path) as store:
        store.create_run(kind="train", exp_dir=trn_dir.parent.parent, out_dir=trn_dir, protocol=PROTOCOL,
                         subset="train", config=None, command=["t"], device="cpu", name="demo")
    trn_dir.mkdir(parents=True)
    validate = run_in_process("validate", "--score-norm", "asnorm", "--cohort-size", "300", str(trn_dir), PROTOCOL,
                              database=demo_corpus)
    err = validate.stderr
    assert validate.returncode == 2 and len(err.strip().splitlines()) == 1, err
    assert "--cohort-size 300" in err and "training speaker" in err
    with open_store(db_path, readonly=True) as store:
        assert store.find_runs(kind="validate") == []  # refused: no failed run left behind


def test_a_headless_validation_is_named_after_its_experiment(tmp_path: Path, demo_corpus: Path, db_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    trn_dir = tmp_path / "demo" / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [1])
    # from inside the experiment, as the demo workspace's README shows: TRN_DIR is relative there
    monkeypatch.chdir(tmp_path / "demo")
    done = run_in_process("validate", "--to", "1", f"train/{PROTOCOL}.train", PROTOCOL, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    with open_store(db_path, readonly=True) as store:
        assert [r["name"] for r in store.find_runs(kind="validate")] == ["demo validate"]


@pytest.mark.slow
def test_a_checkpoint_giving_nan_embeddings_is_named_and_no_scores_file_is_written(
        tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    """Its scores file held ``0 nan …`` lines, named as the damaged file (deleting it made the same one)."""
    import torch

    from engine.config import config_to_dict, parse_config
    from engine.model import build_model
    from engine.process.checkpoints import save_checkpoint

    config = parse_config(TINY_CONFIG.replace("batch_normalize: False", "batch_normalize: True"), "tiny")
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    state = build_model(config).state_dict()
    (var,) = [k for k in state if k.endswith("running_var")]
    state[var] = -torch.ones_like(state[var])   # finite weights, NaN embeddings
    path = save_checkpoint(trn.checkpoint(1), {"model": state, "config": config_to_dict(config), "epoch": 1})
    done = run_in_process("validate", "--to", "1", str(trn.root), PROTOCOL, db=db_path, database=demo_corpus)
    assert done.returncode == 2, done.stderr
    assert f"checkpoint {path} gives embeddings that are not finite" in done.stderr
    val = ValidationDir(val_dir_of(trn.root))
    assert not val.score_file(1).exists() and not val.params.exists()


def test_an_epoch_file_without_a_record_and_a_lost_training_are_said_at_the_end(tmp_path: Path, demo_corpus: Path,
                                                                                 db_path: Path):
    """Training killed between a checkpoint's rename and its row: validate ended on epoch 0 without a word."""
    import sqlite3

    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [0, 1])
    conn = sqlite3.connect(db_path)
    with conn:  # the row of epoch 1 never written; the run died without recording its end
        conn.execute("DELETE FROM checkpoints WHERE epoch = 1")
        conn.execute("UPDATE runs SET status = 'lost', reason = 'no heartbeat since 12:00:00 and process 7 on vm "
                     "is gone'")
    done = run_in_process("validate", str(trn_dir), PROTOCOL, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    assert "epoch 1: EER" not in done.stderr
    assert ("validate: training run #1 is lost (no heartbeat since 12:00:00 and process 7 on vm is gone): its "
            "checkpoints so far are validated") in done.stderr
    assert (f"validate: {TrainingDir(trn_dir).checkpoint(1)} not scored: no record of training says it is whole "
            "(training ended as it wrote it?) — `spkemb-engine train --resume` records it, then validate again"
            ) in done.stderr


def test_a_validation_started_beside_train_resume_waits_for_the_run_to_reopen(tmp_path: Path) -> None:
    """A training run that ended before this validate began, short of --to: a `train --resume` started
    with it reopens it in seconds. validate ended at once, its later epochs never scored."""
    from engine.process import folder_lock
    from engine.records import Run
    from engine.requests import ValidateRequest
    from engine.validation.validate import STARTUP_GRACE, _finished
    from engine.validation.watch import Snapshot

    now_wall, now = time.time(), time.monotonic()
    ended = Run(id=1, kind="train", status="completed", exp_dir=str(tmp_path), out_dir=str(tmp_path),
                epoch=2, target_epoch=2, ended_at=now_wall - 5)
    snap = Snapshot({1: tmp_path / "0001.pt", 2: tmp_path / "0002.pt"}, ended=True, train_run=ended,
                    source="database")
    request = ValidateRequest(trn_dir=str(tmp_path), protocol=PROTOCOL, to=6)
    trn = TrainingDir(tmp_path)
    assert not _finished(request, snap, now, now_wall, trn)  # within the grace: the resume may come
    assert _finished(request, snap, now - STARTUP_GRACE - 1, now_wall, trn)  # it did not
    unbounded = ValidateRequest(trn_dir=str(tmp_path), protocol=PROTOCOL)
    assert _finished(unbounded, snap, now, now_wall, trn)  # no --to, and no training holds the folder
    assert _finished(dataclasses.replace(request, to=2), snap, now, now_wall, trn)  # --to reached
    # a completed run resumed `--to` further: its process holds the folder before it reopens the run
    with folder_lock.held(trn.root, trn.lock, folder_lock.TRAINING):
        assert folder_lock.is_held(trn.lock)
        assert not _finished(unbounded, snap, now, now_wall, trn)
        assert _finished(unbounded, snap, now - STARTUP_GRACE - 1, now_wall, trn)
    assert not folder_lock.is_held(trn.lock)
    assert _finished(unbounded, snap, now, now_wall, trn)


@pytest.mark.slow
def test_averaged_weights_made_again_are_scored_and_params_yml_follows_them(
        tmp_path: Path, demo_corpus: Path, db_path: Path):
    """`average` run again replaced avg-last2.pt, picked by hand: params.yml kept the earlier weights'
    EER, and `apply` loaded weights of another one."""
    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [1, 2, 3])
    assert run_in_process("average", "--last", "2", str(trn_dir), db=db_path).returncode == 0
    done = run_in_process("validate", str(trn_dir), PROTOCOL, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    val = ValidationDir(val_dir_of(trn_dir))
    assert run_in_process("pick", "--epoch", "avg-last2", str(val.root), db=db_path).returncode == 0
    first = read_params(val)
    write_checkpoints(trn_dir, db_path, [4])
    again = run_in_process("average", "--last", "2", str(trn_dir), db=db_path)
    assert again.returncode == 0, again.stderr
    assert f"{val.params} points at avg-last2, whose weights are replaced now" in again.stderr
    done = run_in_process("validate", "--from", "5", str(trn_dir), PROTOCOL, database=demo_corpus)  # no epoch
    assert done.returncode == 0, done.stderr
    rescored = {r.checkpoint: r for r in results_from_scores(val)}["avg-last2"]
    params = read_params(val)
    assert params.checkpoint == "avg-last2" and params.eer == rescored.eer != first.eer
    with open_store(db_path, readonly=True) as store:
        newest = store.find_runs(kind="validate")[0]
    assert (newest["best_checkpoint"], newest["best_eer"]) == ("avg-last2", rescored.eer)


@pytest.mark.slow
def test_a_checkpoint_deleted_since_its_record_is_skipped_and_said(tmp_path: Path, demo_corpus: Path,
                                                                   db_path: Path):
    """One deleted epoch (disk space) failed the whole validation, the epochs after it never scored."""
    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [1, 2, 3])
    TrainingDir(trn_dir).checkpoint(2).unlink()
    done = run_in_process("validate", str(trn_dir), PROTOCOL, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    assert f"validate: {TrainingDir(trn_dir).checkpoint(2)} is gone (deleted?): epoch 2 not scored" in done.stderr
    assert sorted(r.checkpoint for r in results_from_scores(ValidationDir(val_dir_of(trn_dir)))) == [1, 3]


def test_a_range_past_an_ended_trainings_last_epoch_is_refused_not_recorded_as_a_validation(
        tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    """`validate --from 3` of a run trained to epoch 2 said "no checkpoint to evaluate", exited 0 and
    recorded a completed validation holding the folder's pick: `runs` listed it as one."""
    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    write_checkpoints(trn_dir, db_path, [1, 2])
    done = run_in_process("validate", "--from", "3", str(trn_dir), PROTOCOL, database=demo_corpus)
    assert done.returncode == 2 and done.stderr.count(": error: ") == 1 and "Traceback" not in done.stderr, done.stderr
    assert ("nothing to score: training run #1 (completed) has epochs 1–2, none of them in --from 3; pass a "
            "range that holds one") in done.stderr
    with open_store(db_path, readonly=True) as store:
        (run,) = store.find_runs(kind="validate")
    assert run["status"] == "failed" and run["best_eer"] is None and "nothing to score" in run["reason"]
    assert not (val_dir_of(trn_dir) / "params.yml").exists()
