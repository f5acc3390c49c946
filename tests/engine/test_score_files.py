"""Score files are data from disk: a line that is not ``0|1 finite-score uri1 uri2``, or a file that is
not UTF-8, is named as FILE:LINE by every command that reads them (pick, average --top), and
params.yml is left as it was (real files, the real CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.layout import ValidationDir
from engine.validation.score_files import read_scores, write_scores
from tests.engine.engine_runner import run_in_process


def val_dir(tmp_path: Path, damaged: bytes) -> Path:
    """A VAL_DIR with good scores for epoch 1 and ``damaged`` as the second line of epoch 2's."""
    val = ValidationDir(tmp_path / "val")
    rng = np.random.default_rng(0)
    rows = [(i % 2, float(rng.normal() + i % 2), f"a{i}", f"b{i}") for i in range(40)]
    write_scores(val.score_file(1), rows)
    second = val.score_file(2)
    write_scores(second, rows)
    lines = second.read_bytes().splitlines(keepends=True)
    second.write_bytes(lines[0] + damaged + b"\n" + b"".join(lines[2:]))
    return val.root


@pytest.mark.parametrize(("damaged", "says"), [
    (b"7 0.5 a b", ":2: expected `reference score uri1 uri2` (reference 0 or 1, a finite score), got '7 0.5 a b'"),
    (b"1 nan a b", ":2: expected `reference score uri1 uri2`"),
    (b"0 -inf a b", ":2: expected `reference score uri1 uri2`"),
    (b"1 0.5 \xff\xfe b", " is not UTF-8 text"),
])
def test_a_damaged_scores_file_is_named_and_nothing_is_picked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              damaged: bytes, says: str) -> None:
    root = val_dir(tmp_path, damaged)
    scores = ValidationDir(root).score_file(2)
    monkeypatch.delenv("SPKEMB_DB", raising=False)  # no database: pick reads the score files
    done = run_in_process("pick", str(root), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{scores}{says}" in done.stderr and "validate again" in done.stderr
    assert not ValidationDir(root).params.exists()


def test_scores_read_back_as_written(tmp_path: Path) -> None:
    path = write_scores(tmp_path / "s.txt", [(1, 0.25, "a", "b"), (0, -1.5, "c", "d")])
    is_target, scores = read_scores(path)
    assert is_target.tolist() == [True, False] and scores.tolist() == [0.25, -1.5]
