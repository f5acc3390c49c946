"""engine.Precomputed reads apply's output as the tutorial's snippet does, without torch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from pyannote.core import Segment, SlidingWindowFeature

from engine.errors import SpkembError
from tests import children


def write_extraction(root: Path, uris: dict[str, int], dim: int = 4) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.yml").write_text(yaml.safe_dump(
        {"start": 0.0, "duration": 2.0, "step": 0.2, "dimension": dim, "epoch": 3, "mode": "exact"}))
    arrays = {}
    for uri, n in uris.items():
        path = root / f"{uri}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays[uri] = np.arange(n * dim, dtype=np.float32).reshape(n, dim)
        np.save(path, arrays[uri])
    return arrays


def test_tutorial_snippet(tmp_path: Path):
    from engine import Precomputed

    arrays = write_extraction(tmp_path / "apply" / "3", {"meeting": 291, "EN2001/mix": 20})
    precomputed = Precomputed(tmp_path / "apply" / "3")
    embeddings = precomputed({"uri": "meeting", "audio": "/nowhere.wav"})
    assert isinstance(embeddings, SlidingWindowFeature)

    window, embedding = next(iter(embeddings))
    assert (window.start, window.end) == (0.0, 2.0)
    assert np.array_equal(embedding, arrays["meeting"][0])

    # pyannote's "loose" crop: every window that meets [10, 20], boundaries included —
    # starts 8.0 (ends at 10.0) to 20.0, i.e. rows 40 to 100
    fX = embeddings.crop(Segment(10, 20))
    assert fX.shape == (61, 4)
    assert np.array_equal(fX, arrays["meeting"][40:101])
    sw = embeddings.sliding_window
    assert sw[40].end == pytest.approx(10.0) and sw[100].start == pytest.approx(20.0)
    assert sw[39].end < 10.0 and sw[101].start > 20.0

    # nested uris are folders
    assert precomputed("EN2001/mix").data.shape == (20, 4)
    assert precomputed.dimension == 4 and precomputed.metadata["epoch"] == 3


def test_import_stays_torch_free(tmp_path: Path):
    write_extraction(tmp_path, {"a": 3})
    code = ("import sys; from engine import Precomputed; "
            f"x = Precomputed({str(tmp_path)!r})('a'); "
            "assert x.data.shape == (3, 4); assert 'torch' not in sys.modules, 'torch imported'")
    done = children.run([sys.executable, "-c", code], timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_val_dir_given_for_an_extraction_names_the_extractions_in_it(tmp_path: Path) -> None:
    """`diarize VAL_DIR …` asked whether VAL_DIR was an extraction directory, without naming apply/2 inside it."""
    from engine import Precomputed

    val_dir = tmp_path / "val"
    for name in ("2", "3-shared"):
        write_extraction(val_dir / "apply" / name, {"a": 3})
    (val_dir / "apply" / "half").mkdir()  # no metadata.yml: not an extraction
    for given in (val_dir, val_dir / "apply"):
        with pytest.raises(SpkembError) as refused:
            Precomputed(given)
        assert str(refused.value) == (f"{given} is no extraction (metadata.yml is not in it): pass one of the "
                                      f"extractions in it: {val_dir}/apply/2, {val_dir}/apply/3-shared")
    with pytest.raises(SpkembError) as refused:
        Precomputed(tmp_path)
    assert str(refused.value) == (f"{tmp_path}/metadata.yml does not exist: is {tmp_path} an extraction directory "
                                  "written by `spkemb-engine apply` (VAL_DIR/apply/EPOCH)?")


def test_a_folder_of_many_extractions_names_three_and_counts_the_rest(tmp_path: Path) -> None:
    from engine import Precomputed

    for epoch in range(1, 6):
        write_extraction(tmp_path / "apply" / str(epoch), {"a": 3})
    with pytest.raises(SpkembError) as refused:
        Precomputed(tmp_path)
    assert str(refused.value).endswith(f"pass one of the extractions in it: {tmp_path}/apply/1, {tmp_path}/apply/2, "
                                       f"{tmp_path}/apply/3 and 2 more")


def test_missing_file_and_metadata_are_named(tmp_path: Path):
    from engine import Precomputed

    with pytest.raises(SpkembError, match="metadata.yml does not exist"):
        Precomputed(tmp_path)
    write_extraction(tmp_path, {"a": 3})
    with pytest.raises(SpkembError, match="no embeddings for 'b'"):
        Precomputed(tmp_path)({"uri": "b"})
    np.save(tmp_path / "c.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(SpkembError, match=r"shape \(3, 5\)"):
        Precomputed(tmp_path)("c")


def test_reads_pyannote_nested_metadata(tmp_path: Path):
    from engine import Precomputed

    (tmp_path / "metadata.yml").write_text(yaml.safe_dump(
        {"dimension": 2, "sliding_window": {"start": 0.5, "duration": 3.0, "step": 0.75}}))
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    sw = Precomputed(tmp_path)("x").sliding_window
    assert (sw.start, sw.duration, sw.step) == (0.5, 3.0, 0.75)


def test_a_forged_header_a_pipe_and_a_cut_file_are_one_line_each(tmp_path: Path) -> None:
    """A 4 KB file whose header said (10^12, 128) made numpy allocate 466 TiB (a MemoryError's
    traceback); a named pipe in its place blocked `diarize` for ever."""
    import os

    from engine import Precomputed

    write_extraction(tmp_path, {"a": 3})
    forged = tmp_path / "forged.npy"
    with open(forged, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 4)})
        f.write(b"\0" * 4096)
    with pytest.raises(SpkembError, match=r"forged.npy is not a numpy array file \(its header says \(10+, 4\)"):
        Precomputed(tmp_path)("forged")
    np.save(tmp_path / "cut.npy", np.zeros((30, 4), np.float32))
    os.truncate(tmp_path / "cut.npy", os.path.getsize(tmp_path / "cut.npy") - 4)
    with pytest.raises(SpkembError, match="cut short, or not written by apply"):
        Precomputed(tmp_path)("cut")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SpkembError, match="holds pickled objects"):
        Precomputed(tmp_path)("objects")
    os.mkfifo(tmp_path / "pipe.npy")
    with pytest.raises(SpkembError, match="pipe.npy is not a regular file"):
        Precomputed(tmp_path)("pipe")  # without O_NONBLOCK this open waits for a writer: the test hangs
    assert Precomputed(tmp_path)("a").data.shape == (3, 4)
