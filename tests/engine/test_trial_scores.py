"""What validate scores, in process: trial lists read and checked line by line, file embeddings
as the mean of their windows (files packed together into one batch), cosine scores."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.data.protocols import load_protocol
from engine.errors import ProtocolError
from engine.layout import ExperimentDir
from engine.model import SincTDNN
from engine.validation.trial_scores import VALIDATION_STEP, cosine_scores, embed_files
from engine.validation.trials import (
    check_both_kinds,
    check_trial,
    check_trial_file,
    load_trials,
    trial_file,
    trial_subsets,
)
from tests import children
from tests.engine.engine_runner import run_in_process

SR = 16000
PROTOCOL = "Demo.SpeakerVerification.Voices"


def test_a_protocols_trial_list_is_found_checked_and_read(demo_corpus: Path) -> None:
    method = load_protocol(PROTOCOL, demo_corpus).development_trial
    path = trial_file(method)
    assert path is not None and path.is_file()
    check_trial_file(path)
    trials = [check_trial(trial, number, str(path)) for number, trial in enumerate(method(), 1)]
    assert len(trials) == len([line for line in path.read_text().splitlines() if line.strip()])
    assert {reference for reference, _, _ in trials} == {0, 1}
    check_both_kinds(trials, str(path))


@pytest.mark.parametrize("line", ["1 a", "1 a b c", "2 a b", '1 "a b', "yes a b", "\x0c"])
def test_a_malformed_trial_line_is_named_by_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "trials.txt"
    path.write_text(f"1 a b\n\n0 a c\n{line}\n1 b c\n")
    with pytest.raises(ProtocolError, match=f"{path}:4: malformed trial line .*fix or delete that line"):
        check_trial_file(path)
    path.write_text("1 a b\n\n0 a c\nTrue a d\n0.0 c d\n")  # blank lines and pandas' spellings pass
    check_trial_file(path)


def test_a_kaldi_trial_list_is_refused_with_the_command_that_converts_it(tmp_path: Path) -> None:
    """Kaldi's and WeSpeaker's `uri1 uri2 target|nontarget`: the refusal's awk line makes the list pyannote's."""
    kaldi = tmp_path / "trials"
    # as WeSpeaker ships VoxCeleb1-O: the uris with their .wav, Windows line ends
    kaldi.write_bytes(b"id1/a/1.wav id1/b/2.wav target\r\nid1/a/1.wav id2/c/3.wav nontarget\r\n")
    with pytest.raises(ProtocolError, match="Kaldi's trial format") as error:
        check_trial_file(kaldi)
    command = re.search(r"`(awk .*)` and name that file", str(error.value))
    assert command is not None
    children.run(["sh", "-c", command.group(1)], timeout=30)
    converted = tmp_path / "trials.pyannote"
    assert converted.read_text() == "1 id1/a/1 id1/b/2\n0 id1/a/1 id2/c/3\n"
    check_trial_file(converted)


def test_uris_of_digits_keep_their_leading_zeros(tmp_path: Path) -> None:
    """pandas read `0001` as the number 1: the trial scored 1.wav, another speaker's file, silently."""
    (tmp_path / "wav").mkdir()
    for uri in ("0001", "0002", "1", "2", "1e5"):
        sf.write(tmp_path / "wav" / f"{uri}.wav", np.zeros(SR // 10, dtype=np.float32), SR)
    (tmp_path / "trial.txt").write_text("1 0001 0002\n0 0001 1e5\n0 1 2\n")
    database = tmp_path / "database.yml"
    database.write_text("Databases:\n  Num: wav/{uri}.wav\nProtocols:\n  Num:\n    SpeakerVerification:\n"
                        "      Flat:\n        test:\n          trial: trial.txt\n")
    trials, files = load_trials("Num.SpeakerVerification.Flat", "test", str(database))
    assert trials == [(1, "0001", "0002"), (0, "0001", "1e5"), (0, "1", "2")]
    assert {uri: Path(path).name for uri, path in files.items()} == {
        "0001": "0001.wav", "0002": "0002.wav", "1e5": "1e5.wav", "1": "1.wav", "2": "2.wav"}


def test_a_trial_list_saved_with_a_byte_order_mark_reads_as_without(tmp_path: Path, demo_corpus: Path) -> None:
    """pandas, which pyannote.database reads trial lists with, drops a UTF-8 BOM: so does the check."""
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    trials = corpus / "voxceleb" / "lists" / "test.trial.txt"
    plain = load_trials(PROTOCOL, "test", str(corpus / "database.yml"))
    trials.write_bytes(b"\xef\xbb\xbf" + trials.read_bytes())
    # a new database.yml: pyannote.database caches protocols per file
    shutil.copy(corpus / "database.yml", corpus / "bom.yml")
    assert load_trials(PROTOCOL, "test", str(corpus / "bom.yml")) == plain


def _validate(tmp_path: Path, database: Path, *options: str, protocol: str = PROTOCOL) -> str:
    """The one line ``validate OPTIONS`` of an empty TRN_DIR refuses with: exit 2, no traceback."""
    trn = ExperimentDir(tmp_path / "exp").training(PROTOCOL, "train")
    trn.weights.mkdir(parents=True, exist_ok=True)
    done = run_in_process("validate", *options, str(trn.root), protocol, database=database, db=tmp_path / "runs.db")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_subset_without_a_trial_list_names_the_subsets_that_have_one(tmp_path: Path, demo_corpus: Path) -> None:
    """`validate --subset train` said `train trials cannot be read (train_trial_iter is not implemented.)`."""
    line = _validate(tmp_path, demo_corpus, "--subset", "train")
    assert (f"protocol {PROTOCOL}: its train subset has no trial list — name one that has one: development or "
            "test (e.g. `--subset test`)") in line, line
    assert "not implemented" not in line
    assert "--subset trian: 'trian' is not a subset: use one of train, development, test" in _validate(
        tmp_path, demo_corpus, "--subset", "trian")


def test_a_protocol_without_any_trial_list_is_refused_as_such(tmp_path: Path, demo_corpus: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    database = corpus / "database.yml"
    text = database.read_text()
    database.write_text(re.sub(r"\n *trial: .*", "", text))
    assert trial_subsets(load_protocol(PROTOCOL, database)) == []
    line = _validate(tmp_path, database)
    assert "its test subset has no trial list — nor has any other: give a subset a `trial:` list" in line, line


def test_a_trial_entry_naming_a_folder_is_said_to_be_a_folder(tmp_path: Path, demo_corpus: Path) -> None:
    """pyannote.database said `Could not find file` of the folder, which is there."""
    database = tmp_path / "database.yml"
    text = demo_corpus.read_text().replace("trial: voxceleb/lists/test.trial.txt", "trial: voxceleb/lists")
    database.write_text(re.sub(r"^( *- )(?!/)", rf"\g<1>{demo_corpus.parent}/", text, flags=re.M)
                        .replace(": voxceleb/", f": {demo_corpus.parent}/voxceleb/"))
    with pytest.raises(ProtocolError, match=r"`trial: .*voxceleb/lists` names a folder \(.*\): name the trial "
                                            r"list in it"):
        load_trials(PROTOCOL, "test", str(database))


def test_the_subsets_with_trials_of_a_python_protocol() -> None:
    """A protocol written in Python has trials where it defines ``{subset}_trial_iter`` (or pyannote's
    legacy ``{trn,dev,tst}_try_iter``)."""
    from pyannote.database.protocol.speaker_verification import SpeakerVerificationProtocol

    class Current(SpeakerVerificationProtocol):
        def test_trial_iter(self) -> Iterator[dict]:
            yield from ()

    class Legacy(SpeakerVerificationProtocol):
        def dev_try_iter(self) -> Iterator[dict]:
            yield from ()

    assert trial_subsets(Current()) == ["test"]
    assert trial_subsets(Legacy()) == ["development"]
    assert trial_subsets(SpeakerVerificationProtocol()) == []


def test_an_unreadable_trial_file_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="cannot be read"):
        check_trial_file(tmp_path / "missing.txt")


def test_a_malformed_trial_and_a_list_of_one_kind_are_refused() -> None:
    def trial(reference: object, uri1: object, uri2: object) -> dict:
        return {"reference": reference, "file1": {"uri": uri1}, "file2": {"uri": uri2}}

    assert check_trial(trial(True, "a", 7), 1, "src") == (1, "a", "7")
    assert check_trial(trial(0.0, "a", "b"), 2, "src") == (0, "a", "b")
    with pytest.raises(ProtocolError, match="src: trial 3 is malformed"):
        check_trial(trial(1, "a", float("nan")), 3, "src")
    with pytest.raises(ProtocolError, match="trial 4 is malformed"):
        check_trial(trial(2, "a", "b"), 4, "src")
    check_both_kinds([(1, "a", "b"), (0, "a", "c")], "src")
    with pytest.raises(ProtocolError, match="src: 2 of the 2 trials are target trials"):
        check_both_kinds([(1, "a", "b"), (1, "a", "c")], "src")
    with pytest.raises(ProtocolError, match="0 of the 1 trials"):
        check_both_kinds([(0, "a", "b")], "src")


def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return SincTDNN(stride=(5, 1, 1), embedding_dim=16, hidden_dim=32).eval()


def test_a_file_embedding_is_the_mean_of_its_windows_whatever_files_share_its_batch(tmp_path: Path) -> None:
    model, duration = network(), 0.5
    window, hop = int(duration * SR), int(VALIDATION_STEP * duration * SR)
    rng = np.random.default_rng(0)
    # lengths that are no multiple of the first block's stride, and one file shorter than a window
    signals = {"a": rng.normal(size=int(1.3 * SR) + 7), "b": rng.normal(size=int(0.3 * SR)),
               "c": rng.normal(size=int(2.1 * SR) + 3), "d": rng.normal(size=window)}
    files = {}
    for uri, x in signals.items():
        files[uri] = str(tmp_path / f"{uri}.wav")
        sf.write(files[uri], (0.1 * x).astype(np.float32), SR, subtype="FLOAT")

    def one(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None])[0].double().numpy()

    expected = {}
    for uri, path in files.items():
        x, _ = sf.read(path, dtype="float32")
        starts = range(0, len(x) - window + 1, hop) if len(x) > window else [0]
        expected[uri] = np.mean([one(x[s:s + window]) for s in starts], axis=0)
    for batch in (3, 64):  # files split across batches, and all of them in one
        got = embed_files(model, files, duration=duration, sample_rate=SR, batch=batch, whole_file=False)
        assert sorted(got) == sorted(files)
        for uri in files:
            assert np.abs(got[uri] - expected[uri]).max() <= 1e-4, uri
    whole = embed_files(model, files, duration=duration, sample_rate=SR, batch=8, whole_file=True)
    x, _ = sf.read(files["c"], dtype="float32")
    assert np.abs(whole["c"] - one(x)).max() <= 1e-4


def test_cosine_scores_of_trials() -> None:
    embeddings = {"a": np.array([1.0, 0.0]), "b": np.array([3.0, 3.0]), "c": np.array([-2.0, 0.0]),
                  "z": np.zeros(2)}
    scores = cosine_scores(embeddings, [(1, "a", "b"), (0, "a", "c"), (1, "b", "b"), (0, "a", "z")])
    assert np.allclose(scores, [np.sqrt(0.5), -1.0, 1.0, 0.0])
