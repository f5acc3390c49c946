"""``spkemb-engine clean``: the epoch checkpoints no result needs are listed, then deleted with --yes;
what a result needs (and everything not yet validated) stays, with its rows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.layout import ExperimentDir, TrainingDir, ValidationDir
from engine.process import folder_lock
from engine.records import Checkpoint, ValidationResult, checkpoint_list
from engine.store import open_store
from engine.validation.params import write_params
from tests.engine.engine_runner import run_in_process
from tests.engine.read_only import unwritable  # noqa: F401 - a fixture

PROTOCOL = "Demo.SpeakerVerification.Voices"


def checkpoint_files(trn: TrainingDir, epochs: range, db: Path) -> int:
    """A training run's epoch files (each a different size), recorded as training records them; the run's id."""
    trn.weights.mkdir(parents=True)
    with open_store(db) as store:
        run_id = store.create_run(kind="train", exp_dir=trn.root.parent.parent, out_dir=trn.root, protocol=PROTOCOL,
                                  subset="train", config=None, command=["t"], device="cpu")
        for epoch in epochs:
            trn.checkpoint(epoch).write_bytes(b"x" * (1000 + epoch))
            store.add_checkpoint(run_id, Checkpoint(epoch=epoch, step=10 * epoch, path=trn.checkpoint(epoch),
                                                    partial=False))
    return run_id


def validated(val: ValidationDir, eers: dict[int, float], db: Path, train_id: int) -> None:
    """A validate run of VAL_DIR with these EERs (and a score file each, as validate leaves them)."""
    (val.root / "scores").mkdir(parents=True)
    with open_store(db) as store:
        val_id = store.create_run(kind="validate", exp_dir=None, out_dir=val.root, protocol=PROTOCOL, subset="test",
                                  config=None, command=["v"], device="cpu", parent_id=train_id)
        for epoch, eer in eers.items():
            store.add_validation(val_id, ValidationResult(epoch=epoch, eer=eer, n_trials=4), train_run_id=train_id)
            val.score_file(epoch).write_text("a b 1 0.5\n")


@pytest.fixture
def trained(tmp_path: Path, db_path: Path) -> tuple[TrainingDir, int]:
    """21 epochs; VAL_DIR test validated 0-18 (best: 12, then 9), params.yml at 5, epoch 7 extracted;
    VAL_DIR development validated 0-16 (best: 12, then 16); resume.pt and averaged weights beside them."""
    trn = ExperimentDir(tmp_path / "exp").training(PROTOCOL, "train")
    run_id = checkpoint_files(trn, range(21), db_path)
    (tmp_path / "exp" / "config.yml").write_text("{}\n")
    test, dev = trn.validation(PROTOCOL, "test"), trn.validation(PROTOCOL, "development")
    validated(test, {e: 0.5 - (0.3 if e == 12 else 0.2 if e == 9 else 0.01 * e) for e in range(19)}, db_path, run_id)
    validated(dev, {e: 0.1 if e == 12 else 0.15 if e == 16 else 0.3 for e in range(17)}, db_path, run_id)
    write_params(test, ValidationResult(epoch=5, eer=0.45, n_trials=4))
    (test.apply_root / "7-shared-step0.5").mkdir(parents=True)
    trn.resume.write_bytes(b"r")
    trn.checkpoint("avg-top5").write_bytes(b"a")
    return trn, run_id


def test_clean_lists_then_deletes_only_what_no_result_needs(trained: tuple[TrainingDir, int], db_path: Path) -> None:
    trn, run_id = trained
    trn.checkpoint(21).mkdir()  # a folder where a checkpoint would be: no epoch, and not the newest
    listed = run_in_process("clean", "--keep-last", "3", "--keep-best", "2", str(trn.root), db=db_path)
    assert listed.returncode == 0, listed.stderr
    kept = [5, 7, 9, 12, 16, 17, 18, 19, 20]
    gone = [e for e in range(21) if e not in kept]
    size = sum(1000 + e for e in gone)
    assert listed.stdout.splitlines() == [
        f"{trn.root}: delete 12 epoch checkpoint(s): 0-4, 6, 8, 10-11, 13-15 ({size / 1024:.1f} KiB)",
        f"  keep 5: picked in {PROTOCOL}.test",
        f"  keep 7: extracted in {PROTOCOL}.test",
        f"  keep 9: among the 2 best in {PROTOCOL}.test",
        f"  keep 12: among the 2 best in {PROTOCOL}.development, {PROTOCOL}.test",
        f"  keep 16: among the 2 best in {PROTOCOL}.development",
        f"  keep 17: not validated in {PROTOCOL}.development",
        f"  keep 18: among the newest 3; not validated in {PROTOCOL}.development",
        f"  keep 19-20: among the newest 3; not validated in {PROTOCOL}.development, {PROTOCOL}.test",
        f"nothing deleted: add --yes to delete them and free {size / 1024:.1f} KiB",
    ]
    assert trn.epochs() == list(range(22))  # a listing deletes nothing

    done = run_in_process("clean", "--keep-last", "3", "--keep-best", "2", "--yes", str(trn.root), db=db_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"freed {size / 1024:.1f} KiB"
    assert trn.epochs() == [*kept, 21] and trn.checkpoint(21).is_dir()
    assert trn.resume.is_file() and trn.named_checkpoints() == ["avg-top5"]
    with open_store(db_path, readonly=True) as store:
        assert [c.epoch for c in store.checkpoint_records(run_id)] == kept
        # every result stays: the epochs' EERs, their score files
        assert len(store.validation_records(train_run_id=run_id)) == 19 + 17
    for val in trn.validation_dirs():
        assert len(val.score_files()) in (19, 17)

    again = run_in_process("clean", "--keep-last", "3", "--keep-best", "2", "--yes", str(trn.root), db=db_path)
    assert again.returncode == 0 and again.stdout.splitlines()[0] == f"{trn.root}: nothing to delete"
    # asked to keep more than is left: the best ten of test include epochs deleted already
    wider = run_in_process("clean", str(trn.root), db=db_path)
    assert wider.returncode == 0, wider.stderr
    assert wider.stdout.splitlines()[0] == f"{trn.root}: nothing to delete"


def test_what_was_cleaned_is_refused_by_name_where_a_command_would_use_it(trained: tuple[TrainingDir, int],
                                                                           db_path: Path) -> None:
    trn, _ = trained
    assert run_in_process("clean", "--keep-last", "3", "--keep-best", "2", "--yes", str(trn.root),
                          db=db_path).returncode == 0
    test = trn.validation(PROTOCOL, "test")
    picked = run_in_process("pick", "--epoch", "4", str(test.root), db=db_path)
    assert picked.returncode == 2
    assert "epoch 4 was validated, but its checkpoint is gone" in picked.stderr and "clean" in picked.stderr
    from engine.errors import CheckpointError
    from engine.process.checkpoints import load_checkpoint

    with pytest.raises(CheckpointError, match=r"0004.pt does not exist: its run trained past it and the file was "
                                              r"deleted since \(`spkemb-engine clean`") as refused:
        load_checkpoint(trn.checkpoint(4))  # what apply, export and --init-from read
    assert str(refused.value).endswith(f"pick an epoch that has one ({checkpoint_list(trn.epochs())})")
    assert "16-20" in str(refused.value)  # the last epochs kept, as one run
    # epochs 16-20 are on disk: the last 6 would need 15, which is gone
    averaged = run_in_process("average", "--last", "6", str(trn.root), db=db_path)
    assert averaged.returncode == 2
    assert "epoch(s) 15 of the last 6 are not in" in averaged.stderr and "pass --last 5 or less" in averaged.stderr


def test_a_checkpoint_that_cannot_be_deleted_is_said_and_keeps_its_row(trained: tuple[TrainingDir, int],
                                                                        db_path: Path, unwritable) -> None:  # noqa: F811
    trn, run_id = trained
    unwritable(trn.weights)  # a read-only mount of the folder (chmod for a user)
    done = run_in_process("clean", "--keep-last", "3", "--keep-best", "2", "--yes", str(trn.root), db=db_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert f"{trn.checkpoint(0)} cannot be deleted (" in line and "check the folder's permissions" in line, line
    assert trn.epochs() == list(range(21))
    with open_store(db_path, readonly=True) as store:
        assert [c.epoch for c in store.checkpoint_records(run_id)] == list(range(21))


def test_epochs_a_validation_passed_over_stay_unless_skipped_is_given(tmp_path: Path, db_path: Path) -> None:
    """``validate --every 5`` scores 0, 5, 10: the epochs between were passed over and will not be scored,
    unlike those after the newest validated one, which a later validation may still reach."""
    trn = ExperimentDir(tmp_path / "exp").training(PROTOCOL, "train")
    run_id = checkpoint_files(trn, range(13), db_path)
    validated(trn.validation(PROTOCOL, "test"), {0: 0.4, 5: 0.3, 10: 0.2}, db_path, run_id)
    name = f"{PROTOCOL}.test"
    argv = ["clean", "--keep-last", "2", "--keep-best", "1", str(trn.root)]
    listed = run_in_process(*argv, db=db_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[:-1] == [
        f"{trn.root}: delete 2 epoch checkpoint(s): 0, 5 ({(2000 + 5) / 1024:.1f} KiB)",
        f"  keep 1-4, 6-9: passed over in {name}",
        f"  keep 10: among the 1 best in {name}",
        f"  keep 11-12: among the newest 2; not validated in {name}",
        "  (8 kept only as passed over, e.g. by `validate --every N`: --skipped deletes them too)"]
    done = run_in_process(*argv[:-1], "--skipped", "--yes", str(trn.root), db=db_path)
    assert done.returncode == 0, done.stderr
    assert trn.epochs() == [10, 11, 12]


def test_a_run_without_a_validation_keeps_every_epoch(tmp_path: Path, db_path: Path) -> None:
    trn = ExperimentDir(tmp_path / "exp").training(PROTOCOL, "train")
    checkpoint_files(trn, range(5), db_path)
    (tmp_path / "exp" / "config.yml").write_text("{}\n")
    # the experiment and its run named together: the run once
    done = run_in_process("clean", "--keep-last", "1", "--yes", str(tmp_path / "exp"), str(trn.root), db=db_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{trn.root}: nothing to delete", "  keep 0-3: not validated",
                                        "  keep 4: among the newest 1; not validated", "freed 0 bytes"]
    assert trn.epochs() == list(range(5))


def test_a_folder_of_experiments_cleans_each_of_their_runs(tmp_path: Path, db_path: Path) -> None:
    """A sweep's folder (its trials) or a workspace's experiments/: each run of each experiment."""
    trns = [ExperimentDir(tmp_path / "sweep" / f"trial-{n:03d}").training(PROTOCOL, "train") for n in range(2)]
    for trn in trns:
        checkpoint_files(trn, range(3), db_path)
        (trn.root.parent.parent / "config.yml").write_text("{}\n")
    (tmp_path / "sweep" / "notes").mkdir()  # no experiment: passed over
    done = run_in_process("clean", "--keep-last", "1", str(tmp_path / "sweep"), db=db_path)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if not line.startswith(" ")] == [
        f"{trns[0].root}: nothing to delete", f"{trns[1].root}: nothing to delete", "nothing to delete"]


@pytest.mark.parametrize("busy", ["train", "validate"])
def test_clean_is_refused_while_the_run_trains_or_is_validated(trained: tuple[TrainingDir, int], db_path: Path,
                                                               busy: str) -> None:
    trn, _ = trained
    val = trn.validation(PROTOCOL, "test")
    folder, lock, job = ((trn.root, trn.lock, folder_lock.TRAINING) if busy == "train" else
                         (val.root, val.lock, folder_lock.VALIDATION))
    with folder_lock.held(folder, lock, job):  # as train and validate hold them
        done = run_in_process("clean", "--yes", "--keep-last", "1", "--keep-best", "1", str(trn.root), db=db_path)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    doing = "trained" if busy == "train" else "validated"
    assert f"is being {doing} by another process ({os.uname().nodename} pid {os.getpid()})" in line, line
    assert "then clean here" in line
    assert trn.epochs() == list(range(21))


@pytest.mark.parametrize("what, says", [
    ("missing", "is not a directory: pass a TRN_DIR"),
    ("val_dir", "is a validation folder, not a TRN_DIR"),
    ("elsewhere", "is not a TRN_DIR"),
])
def test_a_folder_that_is_no_run_is_refused_in_one_line(trained: tuple[TrainingDir, int], db_path: Path,
                                                        tmp_path: Path, what: str, says: str) -> None:
    trn, _ = trained
    folder = {"missing": tmp_path / "nope", "val_dir": trn.validation(PROTOCOL, "test").root,
              "elsewhere": trn.root.parent}[what]
    done = run_in_process("clean", "--yes", "--keep-last", "1", str(folder), db=db_path)
    assert done.returncode == 2 and says in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert trn.epochs() == list(range(21))


def test_the_extractions_of_a_val_dir_are_found_by_checkpoint(tmp_path: Path) -> None:
    val = ValidationDir(tmp_path / "val")
    for name in ("4", "12-shared", "avg-top5-onnxruntime-step0.5", "7-step0.25", "0005", "notes", "3-other"):
        (val.apply_root / name).mkdir(parents=True)
    (val.apply_root / "9").write_text("a file, not an extraction")
    assert val.extracted() == {4, 5, 7, 12, "avg-top5"}
    assert ValidationDir(tmp_path / "none").extracted() == set()
