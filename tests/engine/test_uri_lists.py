"""A uri of a trial list or a uri list that would take its audio path out of the database's folder
(``..``, absolute) is refused by ``FILE:LINE`` before any file is read or embedded."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.data.uri_lists import check_uri_list
from engine.errors import ProtocolError
from engine.validation.trials import check_trial, check_trial_file

PROTOCOL = "Demo.SpeakerVerification.Voices"
#: from corpus/voxceleb/wav/, where the demo's template puts uris, to the folder beside the corpus
CLIMBING = "../../../elsewhere/bak"


def corpus_with_a_file_beside(tmp_path: Path, demo_corpus: Path) -> tuple[Path, Path]:
    """A copy of the demo corpus (its lists) and a real recording outside it, where ``CLIMBING`` leads."""
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    outside = tmp_path / "elsewhere" / "bak.wav"
    outside.parent.mkdir()
    sf.write(outside, (0.1 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32), 16000)
    return corpus, outside


def replace_line(path: Path, number: int, line: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = line
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("where", ["trial", "trial-absolute", "uri-list"])
def test_validate_refuses_a_uri_leaving_the_database_folder_before_embedding(
        tmp_path: Path, demo_corpus: Path, db_path: Path, where: str) -> None:
    from tests.engine.test_validate import validation_refused

    corpus, outside = corpus_with_a_file_beside(tmp_path, demo_corpus)
    lists = corpus / "voxceleb" / "lists"
    if where == "uri-list":
        listed, uri = lists / "test.lst", CLIMBING
        replace_line(listed, 2, uri)
    else:
        listed, uri = lists / "test.trial.txt", CLIMBING if where == "trial" else str(outside.with_suffix(""))
        reference, first, _ = listed.read_text().splitlines()[2].split()
        replace_line(listed, 3, f"{reference} {first} {uri}")
    error, val_dir = validation_refused(tmp_path, db_path, corpus / "database.yml")
    line = 2 if where == "uri-list" else 3
    assert error.startswith(f"spkemb-engine validate: error: {listed}:{line}")
    assert f"uri {uri!r} is refused: " in error and "write the uri relative to that folder" in error
    assert ("'..'" if where != "trial-absolute" else "it is absolute") in error
    assert not (val_dir / "scores").exists()


def test_train_refuses_a_training_uri_leaving_the_database_folder(tmp_path: Path, demo_corpus: Path,
                                                                  db_path: Path) -> None:
    from tests.engine.test_bad_input import refused_training

    corpus, _ = corpus_with_a_file_beside(tmp_path, demo_corpus)
    listed = corpus / "voxceleb" / "lists" / "train.lst"
    replace_line(listed, 5, CLIMBING)
    error = refused_training(tmp_path, corpus / "database.yml")
    assert f"{listed}:5 (protocol {PROTOCOL}, train): uri {CLIMBING!r} is refused: it climbs out with '..'" in error


@pytest.mark.parametrize(("uri", "reason"), [
    ("../x", "'..'"), ("id1/../../x", "'..'"), ("id1/..", "'..'"), ("/tmp/x", "absolute"), ("~/x", "absolute"),
    ("id1//x", "empty part"), ("./id1/x", "empty part"),
])
def test_a_trial_file_line_with_such_a_uri_is_named_by_file_and_line(tmp_path: Path, uri: str,
                                                                     reason: str) -> None:
    trials = tmp_path / "trials.txt"
    trials.write_text(f"1 id1/a/00001 id1/b/00002\n\n0 id1/a/00001 {uri}\r\n")
    with pytest.raises(ProtocolError, match=reason) as refused:
        check_trial_file(trials)
    assert str(refused.value).startswith(f"{trials}:3: uri {uri!r} is refused: ")


def test_uris_that_stay_inside_pass(tmp_path: Path) -> None:
    fine = ["id10270/x6uYqmx31kE/00001", "ES2004a.Mix-Headset", "a..b", ".hidden/x", "x/.y", "  padded  ", ""]
    listed = tmp_path / "test.lst"
    listed.write_text("\n".join(fine) + "\n")
    check_uri_list(listed)
    trials = tmp_path / "trials.txt"
    trials.write_text("".join(f"1 {a} {b}\n" for a, b in zip(fine, fine[1:-2], strict=False)))
    check_trial_file(trials)


def test_a_uri_list_names_the_first_line_that_leaves(tmp_path: Path) -> None:
    listed = tmp_path / "test.lst"
    listed.write_text("a\r\nb\r\n  /etc/passwd  \r\n../c\r\n")
    with pytest.raises(ProtocolError) as refused:
        check_uri_list(listed, "protocol P.Q.R, test")
    assert str(refused.value).startswith(f"{listed}:3 (protocol P.Q.R, test): uri '/etc/passwd' is refused: "
                                         "it is absolute")


def test_a_trial_of_a_python_protocol_is_refused_by_its_number() -> None:
    trial = {"reference": 1, "file1": {"uri": "id1/a"}, "file2": {"uri": "../../x"}}
    with pytest.raises(ProtocolError, match=r"^the test trials of P: trial 4: uri '../../x' is refused: "):
        check_trial(trial, 4, "the test trials of P")
