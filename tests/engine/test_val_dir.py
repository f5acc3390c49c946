"""The folders named on the command line: a training folder that was never validated, or an experiment
folder, where a VAL_DIR belongs (``pick``, ``apply``, ``export``, ``embed``, ``verify``), and a folder of an
experiment's where its EXP_DIR belongs (``train``), each named as such with what would do."""

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


@pytest.mark.parametrize("command", ["apply", "embed", "verify", "pick", "export"])
def test_an_experiment_folder_given_for_a_val_dir_is_named_with_what_would_do(tmp_path: Path, command: str) -> None:
    """EXP_DIR where VAL_DIR belongs: `apply` said params.yml did not exist (with --epoch 2: that
    weights/0002.pt did not, "train first", though training had written it under train/)."""
    experiment = ExperimentDir(tmp_path / "exp")
    experiment.root.mkdir()
    experiment.config.write_text("x: 1\n")
    wav = tmp_path / "a.wav"
    extra = {"apply": ["--epoch", "2", "Demo.SpeakerDiarization.Meetings"], "embed": [str(wav)],
             "export": ["-o", str(tmp_path / "net.onnx")], "verify": [str(wav), str(wav)]}.get(command, [])
    head = "-o", str(tmp_path / "out.npz")
    argv = [command, *head, str(experiment.root), *extra] if command == "embed" else [command, str(experiment.root),
                                                                                       *extra]

    def refusal() -> str:
        done = run_in_process(*argv, db=tmp_path / "runs.db")
        assert done.returncode == 2 and done.stdout == ""
        prefix = (f"spkemb-engine {command}: error: {experiment.root} is an experiment folder (EXP_DIR), not a VAL_DIR "
                  "(TRN_DIR/validate_equal_error_rate/PROTOCOL.SUBSET): ")
        assert done.stderr.startswith(prefix), done.stderr
        return done.stderr.strip()[len(prefix):]

    assert refusal() == (f"train it (`spkemb-engine train {experiment.root} PROTOCOL`) and validate its training "
                         "folder first, then pass the VAL_DIR that writes")
    trn = experiment.training(PROTOCOL, "train")
    trn.weights.mkdir(parents=True)
    assert refusal() == (f"validate one of its training folders first (`spkemb-engine validate {trn.root} "
                         "PROTOCOL`), then pass the VAL_DIR that writes")
    for subset in ("development", "test"):  # what a validate refused for a missing trial file leaves
        val = trn.validation(PROTOCOL, subset)
        val.root.mkdir(parents=True)
        val.lock.touch()
    assert refusal().startswith("validate one of its training folders first")
    for subset in ("development", "test"):
        trn.validation(PROTOCOL, subset).params.write_text("epoch: 1\n")
    assert refusal() == (f"pass one of its validations: {trn.validation(PROTOCOL, 'development').root}, "
                         f"{trn.validation(PROTOCOL, 'test').root}")
    assert not (tmp_path / "runs.db").exists() and not any(tmp_path.glob("out.*"))
    assert not (tmp_path / "net.onnx").exists()


def test_a_folder_of_an_experiment_given_to_train_names_the_experiment(tmp_path: Path) -> None:
    """TRN_DIR where EXP_DIR belongs: `train` said `TRN_DIR/config.yml: no such file`."""
    experiment = ExperimentDir(tmp_path / "my exp")
    trn = experiment.training(PROTOCOL, "train")
    val = trn.validation(PROTOCOL, "test")
    val.root.mkdir(parents=True)
    experiment.config.write_text("x: 1\n")
    for given in (experiment.root / "train", trn.root, val.root.parent, val.root):
        done = run_in_process("train", "--to", "1", str(given), PROTOCOL, db=tmp_path / "runs.db")
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.strip() == (
            f"spkemb-engine train: error: {given} is a folder of the experiment {experiment.root}, not an experiment "
            f"folder (EXP_DIR, which holds config.yml): pass '{experiment.root}' (with --resume to go on with its "
            "training)")
    # a new experiment kept inside a validation's folder is not taken for a folder of the one above
    inner = val.root / "sub"
    inner.mkdir()
    done = run_in_process("train", "--to", "1", str(inner), PROTOCOL, db=tmp_path / "runs.db")
    assert done.returncode == 2 and done.stderr.strip() == (
        f"spkemb-engine train: error: {inner}/config.yml: no such file; give the path of an experiment's config.yml "
        "(`spkemb-engine config template tutorial` prints a whole one)")
    assert not (tmp_path / "runs.db").exists()


def test_a_folder_given_as_dot_or_by_its_bare_name_is_the_same_folder(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`verify .` inside a VAL_DIR (or its bare name from the folder above) was read as no VAL_DIR: it said
    epoch 1's checkpoint had been deleted by `clean`; `clean .` in a TRN_DIR said `. is not a TRN_DIR`."""
    from engine.validation.val_dir import given_trn_dir, given_val_dir

    trn = ExperimentDir(tmp_path / "exp").training(PROTOCOL, "train")
    val = trn.validation(PROTOCOL, "test")
    val.root.mkdir(parents=True)
    monkeypatch.chdir(val.root)
    assert given_val_dir(".") == val
    monkeypatch.chdir(val.root.parent)
    assert given_val_dir(val.root.name) == val
    monkeypatch.chdir(trn.root)
    assert given_trn_dir(".") == trn
