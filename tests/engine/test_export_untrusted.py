"""An exported ONNX file is data from disk: one edited, or keeping its tensors in another file, is
refused in one line before any embedding is written, and so is a network that gives rows of another
size or values that are not finite (real exports edited with onnx, the real CLI)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from engine.errors import SpkembError
from engine.extraction.export import export_checkpoint
from engine.extraction.exported import METADATA_KEYS, read_metadata
from engine.extraction.onnx_runtime import OnnxEmbedder
from engine.inference.windows import ArraySignal
from tests.engine.engine_runner import run_in_process
from tests.engine.test_export import checkpoint_of, write_val_dir

MEETINGS = "Demo.SpeakerDiarization.Meetings"


def exported(tmp_path: Path) -> tuple[Path, Path]:
    """(VAL_DIR, its epoch 7 exported to ONNX)."""
    val_dir = write_val_dir(tmp_path)
    path = tmp_path / "net.onnx"
    export_checkpoint(checkpoint_of(val_dir), 7, "onnx", path)
    return val_dir, path


def refused(val_dir: Path, model: Path, demo_corpus: Path) -> str:
    """The one error line of apply through onnxruntime with ``model``; nothing extracted."""
    done = run_in_process("apply", "--runtime", "onnxruntime", "--model", str(model), str(val_dir), MEETINGS,
                          database=demo_corpus)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert not list(val_dir.glob("apply/*/*.npy"))
    return line


def test_tensors_kept_in_another_file_are_refused_before_onnxruntime_opens_them(tmp_path: Path,
                                                                                demo_corpus: Path) -> None:
    val_dir, path = exported(tmp_path)
    model = onnx.load(str(path))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../etc/hostname"
    onnx.save(model, str(path))
    line = refused(val_dir, path, demo_corpus)
    assert f"{path} keeps tensor {tensor.name} in another file" in line and "export" in line


def test_an_output_of_another_size_than_the_metadata_says_is_refused(tmp_path: Path, demo_corpus: Path) -> None:
    val_dir, path = exported(tmp_path)
    model = onnx.load(str(path))
    # the graph's last node now feeds a slice keeping 5 of the 32 values: the output its metadata names
    graph = model.graph
    last = next(n for n in graph.node if "embedding" in n.output)
    last.output[list(last.output).index("embedding")] = "whole"
    graph.initializer.extend([onnx.numpy_helper.from_array(np.array([v], np.int64), name)
                              for name, v in (("s0", 0), ("s5", 5), ("s1", 1))])
    graph.node.append(onnx.helper.make_node("Slice", ["whole", "s0", "s5", "s1"], ["embedding"]))
    onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"waveform": np.zeros((2, 16000), np.float32)})[0].shape == (2, 5)
    line = refused(val_dir, path, demo_corpus)
    assert "does not map waveform to (batch, 32) embeddings as its metadata says (outputs: embedding ['batch', 5])" \
        in line


@pytest.mark.parametrize(("key", "value"), [("spkemb.dimension", "-3"), ("spkemb.sample_rate", "1e308"),
                                            ("spkemb.duration", "nan"), ("spkemb.min_samples", "many")])
def test_numbers_of_the_metadata_are_checked(tmp_path: Path, demo_corpus: Path, key: str, value: str) -> None:
    val_dir, path = exported(tmp_path)
    model = onnx.load(str(path))
    next(p for p in model.metadata_props if p.key == key).value = value
    onnx.save(model, str(path))
    line = refused(val_dir, path, demo_corpus)
    assert f"its metadata {key} is {value!r}" in line


@pytest.mark.parametrize("key", METADATA_KEYS[1:])
def test_metadata_lacking_a_key_export_writes_is_refused(tmp_path: Path, demo_corpus: Path, key: str) -> None:
    """Without spkemb.checkpoint_sha256 apply ended in a KeyError traceback."""
    val_dir, path = exported(tmp_path)
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, str(path))
    line = refused(val_dir, path, demo_corpus)
    assert f"{path} has no {key} text in its metadata" in line


def test_the_metadata_keys_are_what_export_writes(tmp_path: Path) -> None:
    _, path = exported(tmp_path)
    assert {p.key for p in onnx.load(str(path)).metadata_props} == set(METADATA_KEYS)


def test_a_zip_whose_metadata_inflates_past_any_export_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """2 MB on disk, 2 GiB inflated: reading it took 4.8 GB of memory before the refusal."""
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("net/extra/metadata.json", "w", force_zip64=True) as member:
            block = b" " * (1 << 20)
            for _ in range(64):  # 64 MiB: past the bound, cheap to write
                member.write(block)
    with pytest.raises(SpkembError, match=r"its net/extra/metadata.json inflates to 67,108,864 bytes"):
        read_metadata(bomb)


def test_a_network_giving_values_that_are_not_finite_writes_nothing(tmp_path: Path) -> None:
    _, path = exported(tmp_path)
    model = onnx.load(str(path))
    weights = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    array = onnx.numpy_helper.to_array(weights).copy()
    array.flat[:] = np.nan
    weights.CopyFrom(onnx.numpy_helper.from_array(array, weights.name))
    onnx.save(model, str(path))
    embedder = OnnxEmbedder(path, threads=1)
    signal = ArraySignal(np.random.default_rng(0).normal(size=16000).astype(np.float32))
    with pytest.raises(SpkembError, match="gave embeddings that are not finite"):
        embedder.embed(signal, np.zeros(1, np.int64), 16000)
