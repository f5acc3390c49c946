"""The run-folder layout: one module spells it, and it refuses paths that leave their folder."""


import pytest

from engine.errors import PathError
from engine.layout import (
    ExperimentDir,
    TrainingDir,
    ValidationDir,
    checkpoint_label,
    diarization_folder,
    parse_checkpoint_name,
)
from engine.safe_paths import contained


def test_the_tutorial_directories(tmp_path):
    exp = ExperimentDir(tmp_path)
    trn = exp.training("VoxCeleb.SpeakerVerification.VoxCeleb2", "train")
    assert trn.root == tmp_path / "train" / "VoxCeleb.SpeakerVerification.VoxCeleb2.train"
    assert trn.checkpoint(7) == trn.root / "weights" / "0007.pt"
    assert trn.checkpoint("avg-top5") == trn.root / "weights" / "avg-top5.pt"
    val = trn.validation("VoxCeleb.SpeakerVerification.VoxCeleb1", "test")
    assert val.root == trn.root / "validate_equal_error_rate" / "VoxCeleb.SpeakerVerification.VoxCeleb1.test"
    assert val.params == val.root / "params.yml"
    assert val.score_file(12) == val.root / "scores" / "0012.txt"
    assert val.extraction(12).root == val.root / "apply" / "12"
    assert val.extraction(12).validation == val and val.training == trn and trn.experiment == exp


def test_an_extraction_folder_says_what_made_it(tmp_path):
    val = ValidationDir(tmp_path)
    names = {(4, "exact", 0.1): "4", (4, "shared", 0.1): "4-shared", (4, "onnxruntime", 0.5): "4-onnxruntime-step0.5",
             (4, "exact", 0.25): "4-step0.25", ("avg-top5", "shared", 0.05): "avg-top5-shared-step0.05"}
    for (name, mode, step), folder in names.items():
        assert val.extraction(name, mode=mode, step=step).root == tmp_path / "apply" / folder
    assert len({val.extraction(*key[:1], mode=key[1], step=key[2]) for key in names}) == len(names)
    assert diarization_folder() == "" and val.extraction(4).rttm("a/b") == tmp_path / "apply" / "4" / "a" / "b.rttm"
    tuned = diarization_folder(collar=0.5, skip_overlap=True, num_speakers="tuned")
    assert tuned == "rttm-tuned-collar0.5-skip-overlap"
    assert val.extraction(4).rttm("a/b", folder=tuned) == tmp_path / "apply" / "4" / tuned / "a" / "b.rttm"
    with pytest.raises(ValueError):
        val.extraction(4, mode="fast")


def test_checkpoint_index_lists_epochs_and_named_weights(tmp_path):
    trn = TrainingDir(tmp_path)
    trn.weights.mkdir()
    for name in ("0000.pt", "0003.pt", "0010.pt", "resume.pt", "avg-last2.pt", ".tmp-x.pt", "notes.txt"):
        (trn.weights / name).write_bytes(b"")
    assert trn.epochs() == [0, 3, 10]
    assert trn.named_checkpoints() == ["avg-last2"]


def test_checkpoint_names():
    assert checkpoint_label(3) == "0003" and parse_checkpoint_name("0003") == 3
    assert parse_checkpoint_name("avg-top5") == "avg-top5"
    assert parse_checkpoint_name("../x") is None
    with pytest.raises(ValueError):
        checkpoint_label("../../etc")


@pytest.mark.parametrize("uri", ["../x", "a/../../x", "/etc/passwd", "", "a//b", "./a", "a\x00b", "a\\..\\b"])
def test_contained_refuses_what_leaves_the_folder(tmp_path, uri):
    assert contained(tmp_path, uri) is None
    if "\\" not in uri:  # a backslash is an ordinary file-name character on POSIX
        with pytest.raises(PathError, match="is refused"):
            ValidationDir(tmp_path).extraction(1).embeddings(uri, source="P (test)")


@pytest.mark.parametrize("protocol,subset", [("../../x", "train"), ("Demo.X.Y", "../../../escaped"), ("/abs", "t")])
def test_run_folders_refuse_names_that_leave_the_experiment(tmp_path, protocol, subset):
    with pytest.raises(PathError, match="is refused"):
        ExperimentDir(tmp_path).training(protocol, subset)
    with pytest.raises(PathError, match="is refused"):
        TrainingDir(tmp_path).validation(protocol, subset)


def test_a_nested_uri_through_a_link_out_of_the_folder_is_refused(tmp_path):
    """A symbolic link inside the extraction folder (made by anyone) cannot carry a uri's file out of it."""
    extraction = ValidationDir(tmp_path / "val").extraction(1)
    extraction.root.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (extraction.root / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PathError, match="is a symbolic link out of"):
        extraction.embeddings("link/x", source="P (test)")
    (extraction.root / "inside").mkdir()
    (extraction.root / "also").symlink_to(extraction.root / "inside")  # a link that stays inside is fine
    assert extraction.embeddings("also/x", source="P (test)") == extraction.root / "also/x.npy"
    assert extraction.embeddings("new/deeper/x", source="P (test)") == extraction.root / "new/deeper/x.npy"


def test_contained_keeps_nested_uris(tmp_path):
    assert contained(tmp_path, "id10001/1zcIwhmdeo4/00001.npy") == tmp_path / "id10001/1zcIwhmdeo4/00001.npy"
