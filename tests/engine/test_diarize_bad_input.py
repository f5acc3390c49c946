"""`diarize` (and `apply --diarize`) on hostile files: one line naming the file (and line, key), exit 2,
no traceback, nothing scored or recorded. Real files on disk: a two-meeting protocol of its own (RTTM,
UEM, uri list, database.yml) and an extraction folder of embeddings that know the speaker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.engine.engine_runner import run_in_process

PROTOCOL = "T.SpeakerDiarization.M"
VOICE = {"A": [1.0, 0.0, 0.2], "B": [0.0, 1.0, 0.2]}
ROWS = 19  # windows of 1 s every 0.5 s over 10 s
TURNS = "SPEAKER {uri} 1 0.0 4.0 <NA> <NA> A <NA> <NA>\nSPEAKER {uri} 1 4.0 4.0 <NA> <NA> B <NA> <NA>\n" \
        "SPEAKER {uri} 1 8.0 2.0 <NA> <NA> A <NA> <NA>\n"


def meetings(root: Path, annotation: str = "ref.rttm") -> Path:
    """Meetings m1 and m2 (A, B, A over 10 s) and their extraction ``root/ex``; returns database.yml."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "uris.lst").write_text("m1\nm2\n")
    if "{uri}" in annotation:
        for uri in ("m1", "m2"):
            path = root / annotation.format(uri=uri)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(TURNS.format(uri=uri))
    else:
        (root / annotation).write_text(TURNS.format(uri="m1") + TURNS.format(uri="m2"))
    (root / "ref.uem").write_text("m1 1 0.0 10.0\nm2 1 0.0 10.0\n")
    database = root / "database.yml"
    database.write_text("Databases:\n  T: /nowhere/{uri}.wav\nProtocols:\n  T:\n    SpeakerDiarization:\n"
                        f"      M:\n        scope: file\n        test:\n          uri: uris.lst\n"
                        f"          annotation: {annotation}\n          annotated: ref.uem\n")
    extraction = root / "ex"
    extraction.mkdir()
    (extraction / "metadata.yml").write_text(yaml.safe_dump({"start": 0.0, "duration": 1.0, "step": 0.5,
                                                             "dimension": 3, "epoch": 7}))
    rows = np.array([VOICE["B" if 4 <= 0.5 * i + 0.5 < 8 else "A"] for i in range(ROWS)], dtype=np.float32)
    for uri in ("m1", "m2"):
        np.save(extraction / f"{uri}.npy", rows)
    return database


def diarize(database: Path) -> object:
    return run_in_process("diarize", str(database.parent / "ex"), PROTOCOL, database=database)


def refused(done, *said: str) -> None:
    """Exit 2, one error line that says all of ``said``, no traceback, no RTTM written."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0] == done.stderr.strip().splitlines()[-1], done.stderr
    for text in said:
        assert text in errors[0], errors[0]


def test_the_protocol_of_these_tests_is_scored(tmp_path: Path, db_path: Path):
    done = diarize(meetings(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "over 2 files" in done.stdout and "DER 0.00 %" in done.stdout
    assert done.stderr == ""  # pyannote.database's cropping warning is not the user's concern


def test_a_protocol_of_one_meeting_is_scored_over_1_file(tmp_path: Path, db_path: Path):
    database = meetings(tmp_path)
    (tmp_path / "uris.lst").write_text("m1\n")
    done = diarize(database)
    assert done.returncode == 0, done.stderr
    assert "over 1 file (" in done.stdout, done.stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(("old", "new", "said"), [
    ("start: 0.0", "start: .nan", "start: nan is not a number of seconds"),
    ("step: 0.5", "step: 1e308", "step: '1e308' is not a number of seconds from 1e-06 to 3600"),
    ("step: 0.5", "step: 1.0e+308", "step: 1e+308 is not a number of seconds"),
    ("duration: 1.0", "duration: -1.0", "duration: -1.0 is not a number of seconds"),
    ("duration: 1.0", "duration: true", "duration: True is not a number"),
    ("dimension: 3", "dimension: -3", "dimension: -3 is not a whole number >= 1"),
    ("epoch: 7", "epoch: 100000000000000000000000", "epoch: 100000000000000000000000 is not a whole number"),
    ("start: 0.0", "start: 0.0\n\xff: 1", "metadata.yml is not UTF-8 text"),
    ("dimension: 3", "- 3", "metadata.yml is not valid YAML (line 2, column 1: expected <block end>"),
])
def test_a_damaged_metadata_yml_is_named_with_its_key(tmp_path: Path, db_path: Path, old: str, new: str,
                                                      said: str):
    database = meetings(tmp_path)
    metadata = tmp_path / "ex" / "metadata.yml"
    text = yaml.safe_dump(yaml.safe_load(metadata.read_text()), sort_keys=True)  # duration, epoch, ..., step
    assert old in text
    metadata.write_bytes(text.replace(old, new).encode("latin-1"))
    refused(diarize(database), str(metadata), said, "spkemb-engine apply` again")
    assert not db_path.exists()


@pytest.mark.slow
def test_a_metadata_yml_that_is_no_mapping_is_named(tmp_path: Path, db_path: Path):
    database = meetings(tmp_path)
    metadata = tmp_path / "ex" / "metadata.yml"
    metadata.write_text("- 1\n")
    refused(diarize(database), f"{metadata} holds no sliding window: a list, not a mapping of start, duration")
    metadata.write_text("")
    refused(diarize(database), f"{metadata} holds no sliding window: nothing")
    metadata.write_text("[" * 100_000)
    refused(diarize(database), f"{metadata} is nested too deeply")


@pytest.mark.parametrize(("rows", "said"), [
    (np.full((ROWS, 3), np.nan, np.float32), f"{ROWS} of its {ROWS} windows hold NaN or infinite values"),
    (np.where(np.arange(ROWS)[:, None] == 3, np.inf, np.ones((ROWS, 3))), f"1 of its {ROWS} windows hold NaN"),
    (np.zeros((0, 3), np.float32), "holds no window (shape (0, 3))"),
    (np.array([["a", "b", "c"]]), "holds <U1 values, not real numbers"),
])
def test_embeddings_that_are_not_finite_or_hold_no_window_are_named(tmp_path: Path, db_path: Path,
                                                                     rows: np.ndarray, said: str):
    database = meetings(tmp_path)
    np.save(tmp_path / "ex" / "m2.npy", rows)
    refused(diarize(database), str(tmp_path / "ex" / "m2.npy"), said, "apply` again")
    assert not db_path.exists()


@pytest.mark.parametrize(("old", "new", "line", "said"), [
    ("4.0 4.0", "4.0 abc", 2, "its duration 'abc' is not a number"),
    ("m2 1 8.0", "m2 1 nan", 6, "its start nan is not a time from 0 to 10,000,000 seconds"),
    ("m1 1 4.0 4.0", "m1 1 4.0 -4.0", 2, "its duration -4.0 is not a time"),
    ("m1 1 8.0 2.0", "m1 1 8.0 1e308", 3, "its duration 1e308 is not a time"),
    ("<NA> <NA> B <NA> <NA>\nSPEAKER m2", "<NA> <NA> NA <NA> <NA>\nSPEAKER m2", 5,
     "its uri or speaker 'NA' is read as missing"),
    ("<NA> <NA> A <NA> <NA>\n", "<NA> <NA> A <NA> <NA> 0.5\n", 1, "it has 11 fields where a line of an RTTM"),
    ("SPEAKER m2 1 8.0 2.0 <NA> <NA> A", "SPEAKER m2 1 8.0 2.0 <NA> <NA> \xe9", 6,
     "byte 32 of the line is not UTF-8 text"),
])
def test_a_bad_rttm_line_is_named_file_and_line(tmp_path: Path, db_path: Path, old: str, new: str, line: int,
                                               said: str):
    database = meetings(tmp_path)
    rttm = tmp_path / "ref.rttm"
    text = rttm.read_text()
    assert old in text
    rttm.write_bytes(text.replace(old, new, 1).encode("latin-1"))
    refused(diarize(database), f"{rttm}:{line}: {said}", "SPEAKER uri 1 START DURATION")
    assert not db_path.exists()


def test_a_bad_line_of_a_per_file_rttm_is_named(tmp_path: Path, db_path: Path):
    database = meetings(tmp_path, annotation="rttms/{uri}.rttm")
    assert diarize(database).returncode == 0
    edit(tmp_path / "rttms" / "m2.rttm", "4.0 4.0", "4.0 4,0")
    refused(diarize(database), f"{tmp_path / 'rttms' / 'm2.rttm'}:2: its duration '4,0' is not a number")


def test_a_file_without_reference_speech_is_named(tmp_path: Path, db_path: Path):
    database = meetings(tmp_path)
    rttm = tmp_path / "ref.rttm"
    rttm.write_text(TURNS.format(uri="m1"))  # m2 has no turn: it would score DER 0 %
    refused(diarize(database), "1 of its 2 files has no reference speech", "'m2' first", str(rttm),
            "cannot be scored")
    # its turns outside its UEM are no speech either
    rttm.write_text(TURNS.format(uri="m1") + "SPEAKER m2 1 12.0 1.0 <NA> <NA> A <NA> <NA>\n")
    refused(diarize(database), "'m2' first", "inside its UEM")
    assert not db_path.exists()


@pytest.mark.parametrize(("line", "said"), [
    ("m2 1 0.0 1e308", "its end 1e308 is not a time from 0 to 10,000,000 seconds"),
    ("m2 1 0.0 nan", "its end nan is not a time"),
    ("m2 1 0.0 inf", "its end inf is not a time"),
    ("m2 1 -5 -1", "its start -5 is not a time"),
    ("m2 1 5.0 5.0", "its end 5.0 is not after its start 5.0"),
    ("m2 1 0.0 ten", "its end 'ten' is not a number"),
    ("m2 1 0.0", "it has 3 fields where a line of a UEM file has 4"),
    ("m2", "it has 1 field where a line of a UEM file has 4"),
])
def test_a_bad_uem_line_is_named_file_and_line(tmp_path: Path, db_path: Path, line: str, said: str):
    database = meetings(tmp_path)
    uem = tmp_path / "ref.uem"
    uem.write_text(f"m1 1 0.0 10.0\n{line}\n")
    refused(diarize(database), f"{uem}:2: {said}", "uri 1 START END")
    assert not db_path.exists()


def test_a_uem_past_the_end_of_the_audio_is_refused(tmp_path: Path, db_path: Path):
    """A finite bound far past the audio: its frames would be counted up to it, its speech scored missed."""
    database = meetings(tmp_path)
    (tmp_path / "ref.uem").write_text("m1 1 0.0 10.0\nm2 1 0.0 90000\n")
    refused(diarize(database), "file m2: its reference", "reaches 90000 s", f"its {ROWS} embeddings", "(0–10 s)")
    # embeddings of the first second only: the reference reaches past what they were cut from
    np.save(tmp_path / "ex" / "m2.npy", np.ones((1, 3), np.float32))
    (tmp_path / "ref.uem").write_text("m1 1 0.0 10.0\nm2 1 0.0 10.0\n")
    refused(diarize(database), "file m2: its reference", "reaches 10 s", "(0–1 s)")
    assert not db_path.exists()


def test_embeddings_of_another_time_line_are_refused(tmp_path: Path, db_path: Path):
    database = meetings(tmp_path)
    edit(tmp_path / "ex" / "metadata.yml", "start: 0.0", "start: 500.0")
    refused(diarize(database), f"file m1: none of its {ROWS} windows (500–510 s) meets its reference speech")
    assert not db_path.exists()


def test_a_verification_protocol_is_named_as_not_a_diarization_one(tmp_path: Path, demo_corpus: Path,
                                                                   db_path: Path):
    meetings(tmp_path)
    done = run_in_process("diarize", str(tmp_path / "ex"), "Demo.SpeakerVerification.Voices", database=demo_corpus)
    refused(done, "Demo.SpeakerVerification.Voices is a speaker verification protocol, not a diarization",
            "SpeakerDiarization", "spkemb-engine validate")
    done = run_in_process("diarize", str(tmp_path / "ex"), "Demo.Collection.Music", database=demo_corpus)
    refused(done, "Demo.Collection.Music is a collection protocol, not a diarization protocol")


def test_apply_names_a_bad_rttm_line_before_extracting(tmp_path: Path, db_path: Path):
    """apply lists the subset through pyannote.database, which reads its RTTM: the line is named."""
    from tests.engine.test_apply import write_model_dir

    database = meetings(tmp_path / "corpus")
    rttm = tmp_path / "corpus" / "ref.rttm"
    edit(rttm, "4.0 4.0", "4.0 abc")
    val_dir = write_model_dir(tmp_path, duration=1.0)
    for extra in ([], ["--diarize"]):
        done = run_in_process("apply", *extra, str(val_dir), PROTOCOL, database=database)
        refused(done, f"{rttm}:2: its duration 'abc' is not a number")
    assert not list(val_dir.rglob("*.npy")) and not db_path.exists()


def test_reference_lines_that_pyannote_reads_are_accepted(tmp_path: Path):
    from pyannote.database.util import load_rttm, load_uem

    from engine.data.reference_lines import RTTM, UEM, check_lines

    rttm = tmp_path / "ok.rttm"
    rttm.write_text("SPKR-INFO m1 1 <NA> <NA> <NA> unknown A <NA> <NA>\n\n"
                    "SPEAKER m1 1 0 1.5 <NA> <NA> A <NA> <NA>\r\nSPEAKER m1 1 1.5e0 .5 <NA> <NA> spk_1\n"
                    "SPEAKER m1 1 2 0 <NA> <NA> A 0.9 <NA>\n")
    uem = tmp_path / "ok.uem"
    uem.write_text("m1 1 0 2.5\nm1 1 3.00 4.0\n")
    check_lines(rttm, RTTM)
    check_lines(uem, UEM)
    assert load_rttm(rttm)["m1"].get_timeline().support().duration() == 2.0
    assert load_uem(uem)["m1"].duration() == 3.5
