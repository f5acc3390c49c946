"""``spkemb-engine verify``: recordings of one's own scored as validate scores a trial, and decided at
the threshold of the checkpoint's validated EER."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.config import config_to_dict, parse_config
from engine.layout import TrainingDir, ValidationDir
from engine.model import build_model
from engine.process.checkpoints import save_checkpoint
from engine.records import ValidationResult
from engine.validation.params import write_params
from engine.validation.score_files import read_scores, result_from_scores
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_engine, run_in_process

SR = 16000
PROTOCOL = "Demo.SpeakerVerification.Voices"
# targets 0.9 0.8 0.7 0.3, non-targets 0.5 0.2 0.1 0.4: the EER (25 %) is reached between 0.4 and 0.5
NORM = ["--score-norm", "asnorm"]
SCORES = "1 0.9 a b\n1 0.8 a c\n1 0.7 d e\n1 0.3 d f\n0 0.5 a d\n0 0.2 b e\n0 0.1 c f\n0 0.4 a f\n"


def tiny_checkpoint(path: Path, epoch: int) -> None:
    """The tiny network as a checkpoint of ``epoch`` at ``path``.

    The layers' biases are zeroed: an untrained network's biases give every recording nearly one
    embedding (cosines within 1e-5 of 1); without them, recordings score 1e-3 apart."""
    config = parse_config(TINY_CONFIG, "tiny")
    torch.manual_seed(0)
    model = build_model(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") and "norm" not in name:
                parameter.zero_()
    save_checkpoint(path, {"model": model.state_dict(), "config": config_to_dict(config), "epoch": epoch, "step": 70})


def validated(tmp_path: Path, epoch: int = 7) -> ValidationDir:
    """A TRN_DIR holding the tiny network as checkpoint ``epoch``, its VAL_DIR pointing at it with a
    score file of that epoch (the threshold of its EER is recomputed from it)."""
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    tiny_checkpoint(trn.checkpoint(epoch), epoch)
    val = trn.validation(PROTOCOL, "test")
    val.score_file(epoch).parent.mkdir(parents=True)
    val.score_file(epoch).write_text(SCORES)
    write_params(val, ValidationResult(epoch=epoch, eer=0.25))
    return val


def recording(path: Path, seed: int, seconds: float = 3.0, rate: int = SR, channels: int = 1) -> str:
    """Noise bursts of a loudness of their own: recordings that the untrained network tells apart."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    envelope = np.repeat(rng.uniform(0.01, 0.5, size=n // 800 + 1), 800)[:n]
    wave = (rng.normal(size=(n, channels)) * envelope[:, None]).astype(np.float32)
    sf.write(path, wave, rate)
    return str(path)


def lines(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.strip().splitlines()]


@pytest.mark.slow
def test_each_test_recording_gets_validate_s_score_and_the_decision_at_the_eer_threshold(tmp_path: Path) -> None:
    from engine.inference.network import load_network
    from engine.validation.trial_scores import cosine_scores, embed_files

    val = validated(tmp_path)
    enrolment = recording(tmp_path / "enrol.wav", seed=1)
    # another rate and two channels (resampled, averaged), and a recording shorter than a window
    tests = [enrolment, recording(tmp_path / "other.flac", seed=2, rate=44100, channels=2),
             recording(tmp_path / "short.wav", seed=3, seconds=0.6)]
    network = load_network(val.training.checkpoint(7))
    files = {"0": enrolment, **{str(i): t for i, t in enumerate(tests, 1)}}
    embeddings = embed_files(network.model, files, duration=network.config.task.duration,
                             sample_rate=SR, batch=64, whole_file=False)
    expected = cosine_scores(embeddings, [(0, "0", str(i)) for i in range(1, 4)])
    # a validation whose EER threshold falls between the lowest score and the others (an untrained
    # network's scores all lie near 1): both decisions are taken
    low, high = (float(s) for s in sorted(expected)[:2])
    step = (high - low) / 8
    val.score_file(7).write_text("".join(f"1 {low + 5 * step!r} a b{i}\n0 {low + 3 * step!r} c d{i}\n"
                                         for i in range(4)))
    threshold = result_from_scores(7, *read_scores(val.score_file(7))).threshold
    assert threshold is not None and low < threshold < high

    done = run_in_process("verify", str(val.root), enrolment, *tests, db=tmp_path / "runs.db")
    assert done.returncode == 0, done.stderr
    rows = lines(done.stdout)
    assert [r[:2] for r in rows] == [[enrolment, t] for t in tests]
    assert [float(r[2]) for r in rows] == pytest.approx(expected, abs=2e-6)
    assert [r[3] for r in rows] == ["same" if s >= threshold else "different" for s in expected]
    assert rows[0][3] == "same" and "different" in {r[3] for r in rows}
    checkpoint, decided = done.stderr.strip().splitlines()
    assert checkpoint == f"verify: epoch 7 of {val.root}: cosine of window-mean embeddings, as validate scores a trial"
    assert decided == f"verify: threshold {threshold:.8f}: where epoch 7 reached its EER of 0.00 % on {PROTOCOL}.test"


@pytest.mark.slow
def test_a_validation_of_whole_files_is_followed_and_an_unvalidated_epoch_is_scored_without_a_decision(
        tmp_path: Path) -> None:
    from engine.inference.network import load_network
    from engine.validation.trial_scores import cosine_scores, embed_files

    val = validated(tmp_path)
    long = [recording(tmp_path / f"{i}.wav", seed=i, seconds=4.0) for i in range(2)]
    network = load_network(val.training.checkpoint(7))
    expected = {whole: float(cosine_scores(embed_files(network.model, dict(enumerate(long)), duration=1.0,
                                                       sample_rate=SR, batch=64, whole_file=whole),
                                           [(0, 0, 1)])[0]) for whole in (False, True)}
    assert abs(expected[True] - expected[False]) > 1e-4   # the two ways give scores the lines tell apart

    windows = run_in_process("verify", str(val.root), *long, db=tmp_path / "runs.db")
    val.method.write_text("embedding: whole-file\nhop: 0.25\n")
    whole = run_in_process("verify", str(val.root), *long, db=tmp_path / "runs.db")
    assert windows.returncode == whole.returncode == 0, windows.stderr + whole.stderr
    assert float(lines(windows.stdout)[0][2]) == pytest.approx(expected[False], abs=2e-6)
    assert float(lines(whole.stdout)[0][2]) == pytest.approx(expected[True], abs=2e-6)
    assert "whole-file embeddings" in whole.stderr and "window-mean embeddings" in windows.stderr

    save_checkpoint(val.training.checkpoint(8), torch.load(val.training.checkpoint(7), weights_only=True))
    unscored = run_in_process("verify", "--epoch", "8", str(val.root), *long, db=tmp_path / "runs.db")
    assert unscored.returncode == 0, unscored.stderr
    assert lines(unscored.stdout)[0][3] == "-"
    assert "no decision: epoch 8 has no EER threshold recorded in this VAL_DIR" in unscored.stderr

    oddly = recording(tmp_path / "tab\there\nand a line.wav", seed=4)   # still four fields on one line
    named = run_in_process("verify", str(val.root), long[0], oddly, db=tmp_path / "runs.db")
    assert named.returncode == 0, named.stderr
    assert lines(named.stdout)[0][:2] == [long[0], str(tmp_path / "tab\\there\\nand a line.wav")]

    brief = recording(tmp_path / "brief.wav", seed=5, seconds=0.3)   # zero-padded to a window: said
    padded = run_in_process("verify", str(val.root), long[0], brief, db=tmp_path / "runs.db")
    assert padded.returncode == 0 and len(lines(padded.stdout)) == 1, padded.stderr
    assert f"{brief} lasts 0.30 s, under half of the network's 1 s window" in padded.stderr
    assert "lasts" not in windows.stderr


@pytest.mark.slow
def test_the_threshold_comes_from_the_runs_database_else_from_the_epoch_s_score_file_alone(tmp_path: Path) -> None:
    from engine.store import open_store

    val = validated(tmp_path)
    val.score_file(7).unlink()
    val.score_file(3).write_text("damaged\n")   # another epoch's: read, it would be refused
    db = tmp_path / "runs.db"
    with open_store(db) as store:
        run = store.create_run(kind="validate", exp_dir=None, out_dir=val.root, protocol=PROTOCOL, subset="test",
                               config=None, command=["spkemb-engine", "validate"], device="cpu")
        store.add_validation(run, ValidationResult(epoch=7, eer=0.1, threshold=2.0))   # above any cosine
    pair = [recording(tmp_path / f"{i}.wav", seed=i) for i in range(2)]
    done = run_in_process("verify", str(val.root), pair[0], *pair, db=db)
    assert done.returncode == 0, done.stderr
    assert [r[3] for r in lines(done.stdout)] == ["different", "different"]
    assert "threshold 2.000000" in done.stderr and "EER of 10.00 %" in done.stderr

    # without a database, epoch 7's score file alone is read (epoch 3's damaged one is not)
    val.score_file(7).write_text(SCORES)
    alone = run_in_process("verify", str(val.root), pair[0], *pair, db=tmp_path / "none.db")
    assert alone.returncode == 0, alone.stderr
    assert [r[3] for r in lines(alone.stdout)] == ["same", "same"] and "EER of 25.00 %" in alone.stderr


@pytest.mark.parametrize("case", ["missing recording", "not audio", "no params", "cleaned epoch", "training folder",
                                  "no cohort", "damaged cohort", "pickled cohort", "cohort of NaN",
                                  "cohort top_n too large", "cohort of another dimension"])
def test_what_verify_cannot_use_is_one_line_before_any_network_is_read(tmp_path: Path, case: str) -> None:
    val = validated(tmp_path)
    good = recording(tmp_path / "good.wav", seed=1)
    argv, says = {
        "missing recording": ([str(val.root), good, str(tmp_path / "nowhere.wav")], "nowhere.wav"),
        "not audio": ([str(val.root), good, str(tmp_path / "notes.txt")], "notes.txt"),
        "no params": ([str(val.root), good, good], "validate first"),
        "cleaned epoch": (["--epoch", "3", str(val.root), good, good], "pass --epoch with one that is there (7)"),
        "training folder": ([str(val.training.root), good, good], "is a training folder"),
        "no cohort": (NORM + [str(val.root), good, good], "its validation kept no AS-norm cohort; validate VAL_DIR "
                      "again with --score-norm asnorm (it scores that checkpoint again and keeps one)"),
        "damaged cohort": (NORM + [str(val.root), good, good], "0007.cohort.npz is damaged (BadZipFile)"),
        "pickled cohort": (NORM + [str(val.root), good, good], "0007.cohort.npz is damaged (ValueError)"),
        "cohort of NaN": (NORM + [str(val.root), good, good], "holds no cohort of embeddings (float32 rows, finite)"),
        "cohort top_n too large": (NORM + [str(val.root), good, good], "its top_n is no count of 2 to 2 cohort"),
        # the one checked once the network is read: the checkpoint's dimension
        "cohort of another dimension": (NORM + [str(val.root), good, good], "holds a cohort of 16-dimensional "
                                        "embeddings, and the checkpoint makes 32-dimensional ones"),
    }[case]
    (tmp_path / "notes.txt").write_text("not a recording\n")
    cohort = val.cohort_file(7)
    if case == "damaged cohort":
        cohort.write_bytes(b"PK\x03\x04 not a zip")
    elif case == "pickled cohort":  # an object array: np.load refuses it without pickle
        np.savez(open(cohort, "wb"), means=np.array([{"a": 1}], dtype=object), top_n=np.int64(1))
    elif case in ("cohort of NaN", "cohort top_n too large"):
        means = np.full((2, 32), np.nan if case == "cohort of NaN" else 0.5, np.float32)
        np.savez(open(cohort, "wb"), means=means, top_n=np.int64(3))
    elif case == "cohort of another dimension":
        np.savez(open(cohort, "wb"), means=np.full((2, 16), 0.5, np.float32), top_n=np.int64(2))
    if case == "no params":
        val.params.unlink()
    # a process of its own: these are refused before torch is imported (all but the cohort's dimension)
    done = run_engine("verify", *argv, db=tmp_path / "runs.db", timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("spkemb-engine verify: error: ") and says in line and "protocol" not in line
    assert done.stdout == ""
