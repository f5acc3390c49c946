"""Where a training run starts: ``plan_start`` decides the checkpoint, the position and the target alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from engine.config import config_to_dict, parse_config
from engine.data.batches import Position
from engine.errors import CheckpointError, TrainingError
from engine.layout import ExperimentDir, TrainingDir
from engine.process.checkpoints import save_checkpoint
from engine.process.rng_states import rng_state
from engine.requests import TrainRequest
from engine.training.resume import DEFAULT_EPOCHS, StartPlan, checkpoints_state, latest_checkpoint, plan_start
from tests.conftest import TINY_CONFIG
from tests.engine.read_only import unwritable  # noqa: F401 - a fixture

CONFIG = parse_config(TINY_CONFIG)


def _trn(tmp_path: Path) -> TrainingDir:
    return ExperimentDir(tmp_path / "exp").training("Debug.SpeakerVerification.Debug", "train")


def _request(tmp_path: Path, **options: object) -> TrainRequest:
    return TrainRequest(exp_dir=str(tmp_path / "exp"), protocol="Debug.SpeakerVerification.Debug", **options)


def _save(path: Path, *, epoch: int, batch: int, step: int, target: int | None = 7,
          so_far: dict | None = None, mtime_ns: int | None = None, seed: object = 0,
          config: dict | None = None) -> Path:
    # every entry a resume restores is there (empty where plan_start does not look inside)
    save_checkpoint(path, {"model": {}, "loss": {}, "optimizer": {"state": {}, "param_groups": []},
                           "speakers": [], "rng": rng_state(), "config": config or config_to_dict(CONFIG),
                           "epoch": epoch, "batch": batch, "step": step, "target": target,
                           "epoch_so_far": so_far, "seed": seed})
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_a_new_run_starts_at_the_beginning_up_to_its_target(tmp_path: Path) -> None:
    assert plan_start(_request(tmp_path), _trn(tmp_path), CONFIG) == StartPlan(target=DEFAULT_EPOCHS)
    plan = plan_start(_request(tmp_path, to=3), _trn(tmp_path), CONFIG)
    assert (plan.target, plan.position, plan.step, plan.resumes, plan.init) == (3, Position(0, 0), 0, False, None)


def test_a_new_run_is_refused_where_checkpoints_are(tmp_path: Path) -> None:
    trn = _trn(tmp_path)
    _save(trn.checkpoint(1), epoch=1, batch=0, step=4)
    with pytest.raises(TrainingError, match="already holds checkpoints: add --resume"):
        plan_start(_request(tmp_path), trn, CONFIG)


def test_init_classifier_needs_init_from(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="--init-classifier needs --init-from"):
        plan_start(_request(tmp_path, init_classifier=True), _trn(tmp_path), CONFIG)


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="has no checkpoint yet; train without --resume"):
        plan_start(_request(tmp_path, resume=True), _trn(tmp_path), CONFIG)


def test_resume_continues_from_the_newer_of_resume_pt_and_the_last_epoch(tmp_path: Path) -> None:
    trn = _trn(tmp_path)
    _save(trn.checkpoint(2), epoch=2, batch=0, step=8, mtime_ns=2_000_000_000)
    mid = _save(trn.resume, epoch=2, batch=3, step=11, so_far={"loss_sum": 1.5, "steps": 3, "seconds": 2.0},
                mtime_ns=3_000_000_000)
    plan = plan_start(_request(tmp_path, resume=True), trn, CONFIG)
    assert plan.checkpoint == mid and plan.resumes
    assert (plan.position, plan.step, plan.target) == (Position(2, 3), 11, 7)
    assert plan.epoch_so_far == {"loss_sum": 1.5, "steps": 3, "seconds": 2.0}
    # the epoch's file written after the stop's (the run went on without --resume's help): that one
    last = _save(trn.checkpoint(3), epoch=3, batch=0, step=12, so_far={"loss_sum": 9.0}, mtime_ns=4_000_000_000)
    assert latest_checkpoint(trn) == last
    plan = plan_start(_request(tmp_path, resume=True, to=5), trn, CONFIG)
    # at an epoch's end nothing of the next epoch is carried; --to wins over the checkpoint's target
    assert (plan.checkpoint, plan.position, plan.epoch_so_far, plan.target) == (last, Position(3, 0), None, 5)


def test_the_target_falls_back_to_the_default_when_the_checkpoint_names_none(tmp_path: Path) -> None:
    trn = _trn(tmp_path)
    _save(trn.checkpoint(1), epoch=1, batch=0, step=4, target=None)
    assert plan_start(_request(tmp_path, resume=True), trn, CONFIG).target == DEFAULT_EPOCHS


def test_a_target_below_where_the_run_stands_is_refused(tmp_path: Path) -> None:
    trn = _trn(tmp_path)
    _save(trn.resume, epoch=2, batch=3, step=11)
    with pytest.raises(TrainingError, match="--to 2 is below where the resumed run stands.*pass --to 3 or more"):
        plan_start(_request(tmp_path, resume=True, to=2), trn, CONFIG)


def test_a_damaged_checkpoint_is_named(tmp_path: Path) -> None:
    trn = _trn(tmp_path)
    trn.weights.mkdir(parents=True)
    trn.checkpoint(1).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="0001.pt"):
        plan_start(_request(tmp_path, resume=True), trn, CONFIG)


@pytest.mark.parametrize("entry, value, says", [
    ("epoch", -5, "epoch is -5, not a whole number >= 0"),
    ("step", float("nan"), "step is nan, not a whole number >= 0"),
    ("batch", True, "batch is True, not a whole number >= 0"),
    ("rng", "x", "rng is 'x', not the RNG states"),
    ("optimizer", [1], "optimizer is list, not an optimizer state"),
    ("model", [1, 2], "model is list, not a dict of dense real-valued tensors"),
    ("model", {"w": torch.zeros(2, device="meta")}, "model is dict, not a dict of dense real-valued tensors"),
    ("loss", {"w": torch.eye(2).to_sparse()}, "loss is dict, not a dict of dense real-valued tensors"),
    ("model", {"w": torch.zeros(2, dtype=torch.complex64)}, "model is dict, not a dict of dense real-valued"),
    ("epoch", 10**30, "epoch is 1000000000000000000000000000000, not a whole number >= 0"),
    ("speakers", ["a", 3], "speakers is list, not a list of labels"),
    ("seed", -1, "seed is -1, not a whole number from 0 to 4294967295"),
    ("seed", "5", "seed is '5', not a whole number from 0 to 4294967295"),
])
def test_a_checkpoint_entry_of_the_wrong_kind_is_refused_before_it_is_used(tmp_path: Path, entry: str,
                                                                          value: object, says: str) -> None:
    """Edited or damaged entries would fail deep in training (a loader worker, the RNG, the optimizer):
    the resume refuses them in one line, naming the entry."""
    trn = _trn(tmp_path)
    path = _save(trn.checkpoint(1), epoch=1, batch=0, step=4)
    # written as anyone may write one (the engine writes its checkpoints' tensors from the CPU)
    torch.save({"model": {}, "config": {}, "epoch": 1, "batch": 0, "step": 4, entry: value}, path)
    with pytest.raises(CheckpointError) as refused:
        plan_start(_request(tmp_path, resume=True, to=2), trn, CONFIG)
    assert says in str(refused.value) and str(path) in str(refused.value) and "\n" not in str(refused.value)


def test_a_resumed_run_goes_on_with_its_own_seed(tmp_path: Path) -> None:
    """Without --seed a resume drew seed 0's batches for a run trained with another (its next checkpoint then
    recorded 0): not the run it continued, and nothing said so."""
    trn = _trn(tmp_path)
    _save(trn.checkpoint(1), epoch=1, batch=0, step=4, seed=5)
    assert plan_start(_request(tmp_path, resume=True), trn, CONFIG).seed == 5
    assert plan_start(_request(tmp_path, resume=True, seed=5), trn, CONFIG).seed == 5
    with pytest.raises(TrainingError, match=r"--seed 3: .*0001.pt was trained with seed 5, and a resumed run goes on "
                                            r"with its own; leave out --seed \(or train a new run with --seed 3\)"):
        plan_start(_request(tmp_path, resume=True, seed=3), trn, CONFIG)
    # a new run: the seed asked for, 0 without one
    assert plan_start(_request(tmp_path / "new", seed=3), _trn(tmp_path / "new"), CONFIG).seed == 3
    assert plan_start(_request(tmp_path / "new"), _trn(tmp_path / "new"), CONFIG).seed == 0


def test_a_config_edited_since_the_checkpoint_is_refused_on_resume(tmp_path: Path) -> None:
    """An edited learning rate or margin went into the resumed epochs silently, while the run's record
    and its checkpoints' configs kept the old ones."""
    trn = _trn(tmp_path)
    path = _save(trn.checkpoint(1), epoch=1, batch=0, step=4)
    edited = parse_config(TINY_CONFIG.replace("margin: 0.05", "margin: 0.3"))
    assert config_to_dict(edited) != config_to_dict(CONFIG)
    with pytest.raises(TrainingError) as refused:
        plan_start(_request(tmp_path, resume=True), trn, edited)
    said = str(refused.value)
    assert said.startswith(f"--resume: config.yml changed since {path} was written (task.params.margin: 0.05 there, "
                           "0.3 in config.yml); put it back") and f"train --init-from {path}" in said
    assert plan_start(_request(tmp_path, resume=True), trn, CONFIG).resumes  # the same config: resumed


def test_a_fork_training_fewer_speakers_keeps_their_classifier_rows_by_label() -> None:
    """Sub-centre classifiers hold K rows a speaker, side by side: the blocks are kept whole."""
    from engine.training.init_from import InitFrom

    classes, k = ["a", "b", "c", "d"], 3
    weight = torch.arange(len(classes) * k * 2, dtype=torch.float32).reshape(len(classes) * k, 2)
    init = InitFrom(path=Path("p.pt"), epoch=1, sha256="", model={}, loss={"weight": weight, "s": torch.tensor(32.0)},
                    classes=classes)
    kept, left_out = init.for_speakers(["b", "d"])
    assert left_out == ["a", "c"] and kept.classes == ["b", "d"]
    assert torch.equal(kept.loss["weight"], torch.cat([weight[3:6], weight[9:12]]))
    assert torch.equal(kept.loss["s"], torch.tensor(32.0))  # no row per class: as it was
    assert init.for_speakers(classes) == (init, [])
    with pytest.raises(TrainingError, match=r"this run trains 1 speaker\(s\) that p.pt never classified \(e.g. 'e'; "
                                            r"its classifier has 4 classes\)"):
        init.for_speakers(["b", "e"])


def test_the_folder_lock_is_taken_through_a_file_this_process_may_only_read(tmp_path: Path, unwritable) -> None:  # noqa: F811
    """Another user's lock file (0o644) made `train --resume` of a shared folder fail to open it."""
    from engine.errors import FolderBusy
    from engine.process import folder_lock
    from engine.process.distributed import World

    trn = _trn(tmp_path)
    trn.root.mkdir(parents=True)
    trn.lock.write_text("otherhost pid 1\n")
    unwritable(trn.lock)
    with folder_lock.held(trn.root, trn.lock, folder_lock.TRAINING, World()):
        with pytest.raises(FolderBusy, match=r"is being trained by another process \(otherhost pid 1\): .* if that "
                                                r"machine is down, its lock ends with its NFS lease"):
            with folder_lock.held(trn.root, trn.lock, folder_lock.TRAINING, World()):
                pass
    with folder_lock.held(trn.root, trn.lock, folder_lock.TRAINING, World()):  # released at the end of the block
        pass


def test_the_checkpoints_state_changes_with_each_checkpoint_a_training_writes(tmp_path: Path) -> None:
    """What cmd_train plans from, read again once it holds the folder: a training that ended between the
    two (its last epoch written) made the resume's plan stale, and that epoch was trained again."""
    trn = _trn(tmp_path)
    assert checkpoints_state(trn) == ((), None, None)  # no folder yet
    _save(trn.checkpoint(1), epoch=1, batch=0, step=4, mtime_ns=2_000_000_000)
    first = checkpoints_state(trn)
    assert first == ((1,), "0001.pt", 2_000_000_000) and checkpoints_state(trn) == first
    _save(trn.resume, epoch=1, batch=2, step=6, mtime_ns=3_000_000_000)
    mid = checkpoints_state(trn)
    assert mid == ((1,), trn.resume.name, 3_000_000_000)
    _save(trn.checkpoint(2), epoch=2, batch=0, step=8, mtime_ns=4_000_000_000)
    assert checkpoints_state(trn) == ((1, 2), "0002.pt", 4_000_000_000)
