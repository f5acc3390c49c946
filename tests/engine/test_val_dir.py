"""The VAL_DIR named on the command line (``pick``, ``apply``, ``export``): a training folder that was
never validated is named as such, with the ``validate`` to run (it read as a VAL_DIR without params.yml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.layout import ExperimentDir
from tests.engine.engine_runner import run_in_process

PROTOCOL = "Demo.SpeakerVerification.Voices"


@pytest.mark.parametrize("command", ["pick", "apply", "export"])
def test_a_training_folder_never_validated_is_named_with_the_validate_to_run(tmp_path: Path, command: str) -> None:
    """TRN_DIR (or its empty folder of validations) where VAL_DIR belongs: ``apply`` said params.yml was
    missing (with --epoch: that checkpoint weights/0001.pt was, looking in EXP_DIR); pick and export alike."""
    trn = ExperimentDir(tmp_path / "my exp").training(PROTOCOL, "train")
    trn.weights.mkdir(parents=True)
    validations = trn.validation(PROTOCOL, "test").root.parent
    extra = {"apply": ["--epoch", "1", "Demo.SpeakerDiarization.Meetings"],
             "export": ["-o", str(tmp_path / "net.onnx")]}.get(command, [])
    for given in (trn.root, validations):
        if given == validations:
            validations.mkdir()
        done = run_in_process(command, str(given), *extra, db=tmp_path / "runs.db")
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.strip() == (
            f"spkemb-engine {command}: error: {given} is a training folder with no validation yet, not a VAL_DIR "
            f"(TRN_DIR/validate_equal_error_rate/PROTOCOL.SUBSET): validate it first (`spkemb-engine validate "
            f"'{trn.root}' PROTOCOL`), then pass the VAL_DIR that writes")
    assert not (tmp_path / "runs.db").exists() and not (tmp_path / "net.onnx").exists()


def test_a_validation_folder_outside_a_training_folder_still_reads_as_a_val_dir(tmp_path: Path) -> None:
    """A folder of score files anywhere is a VAL_DIR to ``pick`` (it need not sit in a TRN_DIR)."""
    done = run_in_process("pick", str(tmp_path / "val"), db=tmp_path / "runs.db")
    assert "is not a directory: pass the VAL_DIR" in done.stderr
    (tmp_path / "val").mkdir()
    done = run_in_process("pick", str(tmp_path / "val"), db=tmp_path / "runs.db")
    assert "training folder" not in done.stderr, done.stderr
