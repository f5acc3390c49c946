"""Sizes a config or a command line may give are checked before any work: one line naming the
key or option, the value and what is accepted, exit 2; a config whose training cannot fit in
memory is refused with the estimate and the machine's memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import open_store
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_engine, run_in_process

PROTOCOL = "Demo.SpeakerVerification.Voices"

#: sizes within every row's range, together a batch of 10 million one-minute chunks
HUGE = (TINY_CONFIG.replace("per_fold: 4", "per_fold: 10000").replace("per_label: 2", "per_label: 1000")
        .replace("duration: 1.0", "duration: 60").replace("per_epoch: 0.0002", "per_epoch: 1000"))


def one_line_error(done, command: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"spkemb-engine {command}: error: "), line
    return line


@pytest.mark.parametrize(("old", "new", "key", "accepted"), [
    ("embedding_dim: 32", "embedding_dim: 10000000", "architecture.params.tdnn.embedding_dim", "at most 8,192"),
    ("hidden_dim: 64", "hidden_dim: 100000", "architecture.params.tdnn.hidden_dim", "at most 8,192"),
    ("per_label: 2", "per_label: 1000000", "task.params.per_label", "at most 1,000"),
    ("per_fold: 4", "per_fold: 1000000", "task.params.per_fold", "at most 10,000"),
    ("per_epoch: 0.0002", "per_epoch: 1000000000", "task.params.per_epoch", "at most 1,000"),
    ("duration: 1.0", "duration: 3600", "task.params.duration", "at most 60"),
    ("sample_rate: 16000", "sample_rate: 100000000", "feature_extraction.params.sample_rate", "at most 384,000"),
])
def test_config_sizes_beyond_their_range_are_named(tmp_path: Path, old: str, new: str, key: str,
                                                   accepted: str) -> None:
    assert old in TINY_CONFIG
    (tmp_path / "config.yml").write_text(TINY_CONFIG.replace(old, new))
    line = one_line_error(run_engine("config", "check", str(tmp_path / "config.yml")), "config check")
    value = new.split(": ")[1]
    assert key in line and accepted in line and f"got {value}" in line, line


def test_an_epoch_of_too_many_batches_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(TINY_CONFIG.replace("per_epoch: 0.0002", "per_epoch: 999"))
    line = one_line_error(run_engine("config", "check", str(tmp_path / "config.yml")), "config check")
    assert "task.params.per_epoch" in line and "10,789,200 batches, more than 1,000,000" in line, line


def test_config_check_refuses_a_batch_no_memory_here_holds(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(HUGE)
    line = one_line_error(run_engine("config", "check", str(tmp_path / "config.yml")), "config check")
    assert "needs about" in line and "batch of 10,000,000 chunks" in line and "(MemTotal)" in line, line
    # the tiny config fits
    (tmp_path / "config.yml").write_text(TINY_CONFIG)
    assert run_engine("config", "check", str(tmp_path / "config.yml")).returncode == 0


def test_train_refuses_a_config_that_cannot_fit_before_recording_anything(tmp_path: Path,
                                                                        demo_corpus: Path) -> None:
    exp, db = tmp_path / "exp", tmp_path / "runs.db"
    exp.mkdir()
    (exp / "config.yml").write_text(HUGE)
    done = run_in_process("train", "--to", "1", "--parallel", "0", "--device", "cpu", str(exp), PROTOCOL,
                          db=db, database=demo_corpus)
    line = one_line_error(done, "train")
    assert "needs about" in line and "(MemAvailable)" in line and "lower task per_fold" in line, line
    assert not db.exists() or not open_store(db, readonly=True).runs()
    assert not (exp / "train").exists()


# a resume to an epoch already passed is refused: test_train.py's
# test_a_stopped_run_resumes_into_the_uninterrupted_one_with_true_records


def test_an_eta_of_years_is_flagged_not_counted_in_minutes() -> None:
    from engine.progress import _eta

    assert _eta(1, 10**12, 1.0) == ", ETA 31,710 years (check the config's per_epoch)"
    assert _eta(1, 10, 1.0) == ", ETA 0:09"
