"""A WAV header's sample rate that no recording has (1 Hz, 2147483647 Hz) is an unusable file, named
with its rate by the checks of training, validation and apply before any of it is read."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from engine.data.audio import read_file
from engine.data.audio_checks import check_files, probe
from engine.errors import AudioError
from tests.engine.engine_runner import run_in_process

PROTOCOL = "Demo.SpeakerVerification.Voices"
#: rates past the bounds (1,000 to 768,000 Hz), the last the largest a WAV header can say to libsndfile
ABSURD = [1, 999, 768_001, 2_147_483_647]


def wav_saying(path: Path, rate: int, frames: int = 16000) -> Path:
    """A 16-bit mono WAV whose header says ``rate`` Hz, written byte by byte: soundfile writes no such
    rate, and a damaged or forged header is what says one."""
    data = (np.arange(frames) % 200 - 100).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, min(2 * rate, 0xFFFFFFFF), 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize("rate", ABSURD)
def test_a_rate_no_recording_has_is_an_unusable_file_named_with_its_rate(tmp_path: Path, rate: int) -> None:
    from engine.data.file_checks import check_files as check_training_files

    path = str(wav_saying(tmp_path / "x.wav", rate))
    said = f"audio file {path} has a sample rate of {rate:,} Hz in its header, outside 1,000 to 768,000 Hz"
    [problem] = check_files([path])  # validation trials, apply, the AS-norm cohort, augmentation
    assert problem.path == path and problem.problem.startswith(said)
    assert "fix or replace the file, or remove it from the protocol" in problem.problem
    checked = check_training_files([path])  # the training index
    assert checked.problems[0].startswith(said)
    with pytest.raises(AudioError, match=f"{rate:,} Hz"):
        read_file(path, 16000)


@pytest.mark.parametrize("rate", [1_000, 16_001, 768_000])
def test_rates_within_the_bounds_are_read(tmp_path: Path, rate: int) -> None:
    assert probe(str(wav_saying(tmp_path / "x.wav", rate))).samplerate == rate


def test_an_index_checked_before_rates_were_bounded_does_not_keep_its_file(tmp_path: Path) -> None:
    from engine.data.columns import StringColumn
    from engine.data.file_checks import check_files as check_training_files
    from engine.data.table import IndexTable

    path = wav_saying(tmp_path / "x.wav", 1)
    st = path.stat()
    strings = StringColumn.from_strings
    # what an index written then says of the file: readable, 16,000 frames at 1 Hz, unchanged since
    earlier = IndexTable(
        uris=strings(["x"]), paths=strings([str(path)]), duration=np.array([16000.0]),
        frames=np.array([16000]), sample_rate=np.array([1], dtype=np.int32), mtime_ns=np.array([st.st_mtime_ns]),
        size=np.array([st.st_size]), labels=strings(["a"]), label_file=np.zeros(1, dtype=np.int32),
        reg_label=np.zeros(0, dtype=np.int32), reg_file=np.zeros(0, dtype=np.int32),
        reg_start=np.zeros(0), reg_end=np.zeros(0))
    checked = check_training_files([str(path)], earlier=earlier)
    assert checked.reused == 0 and "has a sample rate of 1 Hz" in checked.problems[0]


def test_validate_refuses_a_trial_file_of_an_absurd_rate_before_embedding(tmp_path: Path, demo_corpus: Path,
                                                                          db_path: Path) -> None:
    from tests.engine.test_validate import validation_refused

    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    uri = (corpus / "voxceleb" / "lists" / "test.trial.txt").read_text().split()[1]
    forged = wav_saying(corpus / "voxceleb" / "wav" / f"{uri}.wav", 2_147_483_647)
    error, val_dir = validation_refused(tmp_path, db_path, corpus / "database.yml")
    assert f"audio file {forged} has a sample rate of 2,147,483,647 Hz" in error
    assert not (val_dir / "scores").exists()


def test_apply_refuses_a_file_of_an_absurd_rate_before_extracting(tmp_path: Path, db_path: Path) -> None:
    from tests.engine.test_apply import write_model_dir
    from tests.engine.test_bad_input import write_wav

    corpus = tmp_path / "corpus"
    write_wav(corpus / "wav" / "good.wav")
    forged = wav_saying(corpus / "wav" / "forged.wav", 1, frames=4000)
    (corpus / "test.lst").write_text("good\nforged\n")
    database = corpus / "database.yml"
    database.write_text("Databases:\n  Odd: wav/{uri}.wav\n"
                        "Protocols:\n  Odd:\n    SpeakerDiarization:\n      Rates:\n"
                        "        test:\n          uri: test.lst\n")
    val_dir = write_model_dir(tmp_path, duration=1.0)
    done = run_in_process("apply", str(val_dir), "Odd.SpeakerDiarization.Rates", database=database)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"audio file {forged} has a sample rate of 1 Hz" in done.stderr.strip().splitlines()[-1]
    assert not list((val_dir / "apply").rglob("*.npy"))
