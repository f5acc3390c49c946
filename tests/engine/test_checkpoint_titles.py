"""How lines name a checkpoint: ``epoch 3`` for an epoch, averaged weights by their name alone
(``avg-last2``; ``epoch avg-last2`` read as an epoch of that number)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from engine.errors import SpkembError
from engine.layout import ValidationDir
from engine.records import ValidationResult, checkpoint_list, checkpoint_title
from engine.validation.det import load_epoch
from engine.validation.score_files import result_from_scores, write_scores
from tests.engine.engine_runner import run_in_process


def test_an_epoch_is_titled_by_its_number_and_averaged_weights_by_their_name() -> None:
    assert [checkpoint_title(name) for name in (3, "avg-last2", "avg-top5")] == ["epoch 3", "avg-last2", "avg-top5"]
    assert ValidationResult(eer=0.1, epoch=4, checkpoint_name="avg-last2").title == "avg-last2"
    assert ValidationResult(eer=0.1, epoch=4).title == "epoch 4"


def test_a_list_of_checkpoints_names_runs_of_epochs_then_averaged_weights() -> None:
    assert checkpoint_list([9, 0, 1, 2, 3, 5, 10, "avg-top5", 2, "avg-last2"]) == "0-3, 5, 9-10, avg-last2, avg-top5"
    assert checkpoint_list(e for e in range(251)) == "0-250"  # a generator, read once
    assert checkpoint_list([4]) == "4" and checkpoint_list([]) == "none"


def _val_dir(root: Path) -> ValidationDir:
    """A VAL_DIR whose scores hold epochs 1 and 2 and the average of both."""
    val = ValidationDir(root / "val")
    rng = np.random.default_rng(0)
    is_target = rng.random(200) < 0.5
    for shift, name in ((1.0, 1), (2.0, 2), (3.0, "avg-last2")):
        scores = rng.normal(size=200) + shift * is_target
        write_scores(val.score_file(name), [(int(t), float(s), f"u{i}", f"v{i}")
                                            for i, (t, s) in enumerate(zip(is_target, scores, strict=True))])
    return val


def _pick(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``pick ARGS`` with no runs database: the choice is written to params.yml only."""
    return run_in_process("pick", *args, env={"SPKEMB_DB": ""}, cwd=tmp_path)


def test_pick_names_averaged_weights_by_their_name(tmp_path: Path) -> None:
    val = _val_dir(tmp_path)
    done = _pick(tmp_path, "--epoch", "avg-last2", str(val.root))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{val.params}: avg-last2, EER "), done.stdout
    done = _pick(tmp_path, "--epoch", "2", str(val.root))
    assert done.stdout.startswith(f"{val.params}: epoch 2, EER "), done.stdout
    done = _pick(tmp_path, "--epoch", "avg-top9", str(val.root))
    assert done.returncode == 2
    assert "error: avg-top9 has not been validated (validated: " in done.stderr and "epoch avg" not in done.stderr


def test_a_missing_or_one_sided_score_file_of_averaged_weights_is_named_by_their_name(tmp_path: Path) -> None:
    val = _val_dir(tmp_path)
    with pytest.raises(SpkembError, match=r"avg-top5\.txt does not exist: avg-top5 has not been scored"):
        load_epoch(val, "avg-top5")
    with pytest.raises(SpkembError, match=r"^the scores of avg-last2: "):
        result_from_scores("avg-last2", np.ones(4, dtype=bool), np.zeros(4), last_epoch=2)
