"""Hostile and damaged input: one line naming the thing and the fix, exit 2, nothing written
outside the folders a command owns (issue 10)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.engine.engine_runner import run_engine

SR = 16000


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/tmp/x", "a//b", "a/", "", "a\0b", "~/x", "./a"])
def test_contained_path_refuses_names_that_could_leave_the_folder(tmp_path: Path, name: str) -> None:
    from engine.errors import PathError
    from engine.safe_paths import contained_path

    with pytest.raises(PathError, match="is refused"):
        contained_path(tmp_path, name, what=f"uri {name!r}")


def test_contained_path_keeps_nested_names_below_the_folder(tmp_path: Path) -> None:
    from engine.safe_paths import contained_path

    assert contained_path(tmp_path, "id1/video/00001.npy") == tmp_path / "id1" / "video" / "00001.npy"
    assert contained_path(tmp_path, "a..b.npy") == tmp_path / "a..b.npy"  # dots inside a name are fine


def write_wav(path: Path, seconds: float = 1.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR)


def escaping_protocol(root: Path, evil: str) -> Path:
    """A database.yml whose Evil.SpeakerDiarization.Escape test list holds ``good`` and ``evil``,
    both real wav files (the evil one where its ``../`` template leads); returns the yml."""
    corpus = root / "deep" / "er" / "corpus"
    write_wav(corpus / "wav" / "good.wav")
    write_wav(Path(os.path.normpath(corpus / "wav" / f"{evil}.wav")))
    (corpus / "lists").mkdir(parents=True)
    (corpus / "lists" / "test.lst").write_text(f"good\n{evil}\n")
    database = corpus / "database.yml"
    database.write_text("Databases:\n  Evil: wav/{uri}.wav\n"
                        "Protocols:\n  Evil:\n    SpeakerDiarization:\n      Escape:\n"
                        "        test:\n          uri: lists/test.lst\n")
    return database


def test_apply_refuses_a_uri_that_leaves_its_output_folder(tmp_path: Path, db_path: Path) -> None:
    from tests.engine.test_apply import write_model_dir

    evil = "../../../../../../x"
    database = escaping_protocol(tmp_path, evil)
    val_dir = write_model_dir(tmp_path, duration=1.0)
    before = set(tmp_path.rglob("*"))
    done = run_engine("apply", "--step", "0.5", str(val_dir),
                      "Evil.SpeakerDiarization.Escape", database=database)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert f"uri {evil!r}" in error and "Evil.SpeakerDiarization.Escape" in error and "'..'" in error
    written = {p for p in set(tmp_path.rglob("*")) - before if p != db_path and not p.name.startswith("runs.db")}
    assert not [p for p in written if p.suffix == ".npy"]
    assert not (val_dir / "apply").exists()
