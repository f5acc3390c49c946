"""`spkemb-engine average`: averaged weights are the mean of the checkpoints' tensors, recorded and named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.config import config_to_dict, parse_config
from engine.layout import TrainingDir
from engine.model import build_model
from engine.process.checkpoints import load_checkpoint, save_checkpoint
from engine.records import ValidationResult
from engine.store import open_store
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_engine, run_in_process
from tests.engine.read_only import unwritable  # noqa: F401 - a fixture

PROTOCOL = "Demo.SpeakerVerification.Voices"
#: with batch norm after the embedding: running statistics and an integer num_batches_tracked
BN_CONFIG = TINY_CONFIG.replace("batch_normalize: False", "batch_normalize: True")


def write_epochs(trn: TrainingDir, epochs: list[int], config_text: str = BN_CONFIG) -> dict[int, dict]:
    """Checkpoints of distinct networks (seeded per epoch), as training writes them."""
    config = parse_config(config_text, "tiny")
    states = {}
    for epoch in epochs:
        torch.manual_seed(epoch)
        model = build_model(config)
        for buffer in model.buffers():  # as if trained: distinct statistics
            buffer.copy_(torch.rand_like(buffer.float()).to(buffer.dtype) if buffer.is_floating_point()
                         else torch.full_like(buffer, 10 * epoch))
        states[epoch] = model.state_dict()
        save_checkpoint(trn.checkpoint(epoch), {"model": states[epoch], "config": config_to_dict(config),
                                                "epoch": epoch, "step": 10 * epoch})
    return states


def train_run(db: Path, trn: TrainingDir) -> int:
    with open_store(db) as store:
        return store.create_run(kind="train", exp_dir=trn.root.parent.parent, out_dir=trn.root, protocol=PROTOCOL,
                                subset="train", config=None, command=["t"], device="cpu")


@pytest.mark.slow
def test_average_last_is_the_mean_of_the_checkpoints(tmp_path: Path, db_path: Path) -> None:
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    states = write_epochs(trn, [1, 2, 3, 4])
    run_id = train_run(db_path, trn)
    done = run_engine("average", "--last", "3", str(trn.root), db=db_path)
    assert done.returncode == 0, done.stderr
    assert "mean of epochs 2, 3, 4" in done.stdout

    saved = load_checkpoint(trn.checkpoint("avg-last3"))
    assert saved["averaged"]["epochs"] == [2, 3, 4] and saved["averaged"]["how"] == "last"
    assert saved["epoch"] == 4 and saved["config"]["architecture"]
    model = saved["model"]
    assert any(k.endswith("running_mean") for k in model) and any(k.endswith("num_batches_tracked") for k in model)
    for key, value in model.items():
        if value.is_floating_point():
            expected = torch.stack([states[e][key] for e in (2, 3, 4)]).mean(dim=0)
            torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7)
            assert not torch.equal(value, states[4][key]) or torch.equal(states[2][key], states[4][key])
        else:
            assert torch.equal(value, states[4][key])  # integer buffers: the last epoch's
    # the averaged weights load into the network their config describes
    build_model(parse_config(BN_CONFIG, "tiny")).load_state_dict(model)
    assert trn.named_checkpoints() == ["avg-last3"] and trn.epochs() == [1, 2, 3, 4]
    assert not list(trn.weights.glob(".tmp*"))

    with open_store(db_path) as store:
        rows = store.checkpoints(run_id)
    assert ([(r["name"], r["epoch"], r["averaged"], r["partial"]) for r in rows]
            == [("avg-last3", 4, "[2, 3, 4]", False)])
    assert rows[0]["path"] == str(trn.checkpoint("avg-last3").resolve())


def test_average_top_takes_the_lowest_validated_eers(tmp_path: Path, db_path: Path) -> None:
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    states = write_epochs(trn, [0, 1, 2, 3, 4])
    run_id = train_run(db_path, trn)
    val = trn.validation(PROTOCOL, "test")
    val.root.mkdir(parents=True)
    with open_store(db_path) as store:
        val_id = store.create_run(kind="validate", exp_dir=None, out_dir=val.root, protocol=PROTOCOL, subset="test",
                                  config=None, command=["v"], device="cpu", parent_id=run_id)
        # a fork's epoch 0 is its parent's network, which may well score best: it is not this run's training
        for epoch, eer in [(0, 0.05), (1, 0.3), (2, 0.1), (3, 0.4), (4, 0.2)]:
            store.add_validation(val_id, ValidationResult(epoch=epoch, eer=eer, n_trials=4), train_run_id=run_id)
    done = run_in_process("average", "--top", "2", str(val.root), db=db_path)
    assert done.returncode == 0, done.stderr
    # what to run next: `pick --epoch avg-top2` refuses weights no validation has scored
    assert (f"average: next, `spkemb-engine validate --subset test {trn.root} {PROTOCOL}` scores avg-top2 "
            "(whatever its --from), then `spkemb-engine pick --epoch avg-top2 VAL_DIR`") in done.stderr
    # a --db given is given to the command it names (pasted, it recorded into ./runs.db, or found none)
    done = run_in_process("average", "--db", str(db_path), "--top", "2", str(val.root))
    assert f"average: next, `spkemb-engine validate --db {db_path} --subset test {trn.root} " in done.stderr
    saved = load_checkpoint(trn.checkpoint("avg-top2"))
    assert saved["averaged"]["epochs"] == [2, 4] and saved["averaged"]["how"] == "top"
    key = "tdnn.segment6.weight"
    torch.testing.assert_close(saved["model"][key], (states[2][key] + states[4][key]) / 2, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("argv, says", [
    # the untrained network (epoch 0) is not averaged in: 3 epochs of training were averaged with it by --last 4
    (["--last", "3"], "holds 2 trained epoch checkpoint(s)"),
    (["--last", "0"], "at least one epoch"),
    (["--top", "2"], "is a training folder with no validation yet, not a VAL_DIR"),
])
def test_bad_requests_fail_in_one_line_and_write_nothing(tmp_path: Path, db_path: Path, argv: list[str],
                                                         says: str) -> None:
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    write_epochs(trn, [0, 1, 2])
    done = run_in_process("average", *argv, str(trn.root), db=db_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and says in done.stderr and "Traceback" not in done.stderr
    assert trn.named_checkpoints() == []


def test_last_of_a_val_dir_or_an_exp_dir_names_the_trn_dir_to_pass(tmp_path: Path, db_path: Path) -> None:
    """--last of a VAL_DIR said its ``weights`` folder (which no VAL_DIR has) held 0 checkpoints."""
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    write_epochs(trn, [1, 2])
    val = trn.validation(PROTOCOL, "test")
    val.root.mkdir(parents=True)
    (tmp_path / "exp" / "config.yml").write_text(TINY_CONFIG)
    for given in (val.root, tmp_path / "exp"):
        done = run_in_process("average", "--last", "2", str(given), db=db_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "not a TRN_DIR" in done.stderr and str(trn.root) in done.stderr
    assert trn.named_checkpoints() == []


def test_networks_that_differ_are_not_averaged(tmp_path: Path, db_path: Path) -> None:
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    write_epochs(trn, [1])
    write_epochs(trn, [2], TINY_CONFIG.replace("embedding_dim: 32", "embedding_dim: 16"))
    done = run_in_process("average", "--last", "2", str(trn.root), db=db_path)
    assert done.returncode == 2 and "different networks" in done.stderr
    assert trn.named_checkpoints() == []


def test_a_database_that_cannot_take_the_row_is_refused_before_the_weights_are_written(
        tmp_path: Path, unwritable) -> None:  # noqa: F811 - a fixture imported above
    """average wrote weights/avg-last2.pt, then refused the read-only database: a file with no row and no
    recorded sha256, which every later reader takes unchecked."""
    db = tmp_path / "db" / "runs.db"
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    write_epochs(trn, [1, 2])
    train_run(db, trn)
    unwritable(db)
    done = run_in_process("average", "--last", "2", str(trn.root), db=db)
    assert done.returncode == 2 and f"runs database {db} is read-only (" in done.stderr, done.stderr
    assert not trn.checkpoint("avg-last2").exists()
