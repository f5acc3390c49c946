"""Export: ONNX and TorchScript files equal PyTorch on several input lengths, carry their metadata,
and drive extraction through onnxruntime."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml

from engine.config import config_from_dict, config_to_dict, parse_config
from engine.extraction.export import export_checkpoint, onnx_bytes, torchscript_bytes
from engine.extraction.exported import read_metadata
from engine.extraction.onnx_runtime import OnnxEmbedder
from engine.inference.network import load_model
from engine.inference.windows import ArraySignal, embed_plain, window_starts
from engine.layout import TrainingDir, ValidationDir
from engine.model import build_model
from engine.process.checkpoints import file_sha256, save_checkpoint
from engine.records import ValidationResult
from engine.validation.params import write_params
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_engine, run_in_process

SR = 16000


def write_val_dir(tmp_path: Path, *, embedding_norms: bool = False) -> Path:
    """TRN_DIR with checkpoint 7 of the tiny network (norm parameters moved off their defaults)
    and a VAL_DIR whose params.yml points at it; returns VAL_DIR."""
    text = TINY_CONFIG
    if embedding_norms:
        text = text.replace("batch_normalize: False", "batch_normalize: True")
        text = text.replace("unit_normalize: False", "unit_normalize: True")
    config = parse_config(text, "tiny")
    torch.manual_seed(0)
    model = build_model(config)
    for module in model.modules():
        if isinstance(module, torch.nn.InstanceNorm1d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    trn_dir = tmp_path / "exp" / "train" / "Demo.SpeakerVerification.Voices.train"
    save_checkpoint(TrainingDir(trn_dir).checkpoint(7), {"model": model.state_dict(), "config": config_to_dict(config),
                                             "epoch": 7, "step": 70})
    val_dir = trn_dir / "validate_equal_error_rate" / "Demo.SpeakerVerification.Voices.test"
    write_params(ValidationDir(val_dir), ValidationResult(epoch=7, eer=0.2))
    return val_dir


def checkpoint_of(val_dir: Path) -> Path:
    return val_dir.parent.parent / "weights" / "0007.pt"


@pytest.mark.parametrize("embedding_norms", [False, True])
def test_onnx_and_torchscript_equal_pytorch_on_several_lengths(tmp_path: Path, embedding_norms: bool) -> None:
    val_dir = write_val_dir(tmp_path, embedding_norms=embedding_norms)
    checkpoint = checkpoint_of(val_dir)
    model, _, _ = load_model(checkpoint)
    export_checkpoint(checkpoint, 7, "onnx", tmp_path / "net.onnx")
    export_checkpoint(checkpoint, 7, "torchscript", tmp_path / "net.pt")
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(str(tmp_path / "net.pt"))
    rng = np.random.default_rng(0)
    # the shortest input the network takes, lengths no multiple of any stride, and 3 s
    for samples in (model.min_samples, 8000, 16001, 23457, 3 * SR):
        x = (rng.normal(size=(3, samples)) * rng.uniform(0.05, 0.5, size=(3, 1)) + 0.02).astype(np.float32)
        with torch.inference_mode():
            reference = model(torch.from_numpy(x)).numpy()
            from_script = scripted(torch.from_numpy(x)).numpy()
        from_onnx = session.run(None, {"waveform": x})[0]
        assert from_onnx.shape == from_script.shape == reference.shape == (3, 32)
        assert np.abs(from_onnx - reference).max() <= 1e-4, samples
        assert np.abs(from_script - reference).max() <= 1e-4, samples
        assert np.abs(reference).max() > 1e-2  # not trivially equal

    # a plain graph: weight norm folded (no g/v pair), sinc filters a fixed conv weight (no cut-offs)
    names = {i.name for i in onnx.load(str(tmp_path / "net.onnx")).graph.initializer}
    assert not any("parametrizations" in n or "low_hz_" in n or "band_hz_" in n for n in names)


def test_a_network_still_training_exports_the_same_function() -> None:
    """Parameters that require gradients, gradients on: what a network in training gives the
    exporters. Its forward folds the waveform norm into the sinc filters then; the export fixes
    those filters and so takes the plain composition, equal to the network."""
    model = build_model(parse_config(TINY_CONFIG, "tiny.yml"))
    assert all(p.requires_grad for p in model.parameters()) and torch.is_grad_enabled()
    session = ort.InferenceSession(onnx_bytes(model, {}), providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(io.BytesIO(torchscript_bytes(model, {})))
    x = (np.random.default_rng(0).normal(size=(2, 12345)) * 0.2 + 0.02).astype(np.float32)
    with torch.inference_mode():
        reference = model.eval()(torch.from_numpy(x)).numpy()
        from_script = scripted(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"waveform": x})[0] - reference).max() <= 1e-4
    assert np.abs(from_script - reference).max() <= 1e-4


@pytest.mark.slow  # the command as users start it, in a process of its own
def test_export_command_writes_the_metadata(tmp_path: Path) -> None:
    val_dir = write_val_dir(tmp_path)
    out = tmp_path / "exported" / "net.onnx"
    out.parent.mkdir()
    done = run_engine("export", str(val_dir), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"-> {out} (onnx" in done.stderr
    metadata = read_metadata(out)
    checkpoint = checkpoint_of(val_dir)
    assert metadata["spkemb.checkpoint_sha256"] == file_sha256(checkpoint)
    assert metadata["spkemb.checkpoint"] == str(checkpoint.resolve())
    assert (metadata["spkemb.epoch"], metadata["spkemb.sample_rate"], metadata["spkemb.dimension"]) == ("7", "16000",
                                                                                                        "32")
    config = config_from_dict(yaml.safe_load(metadata["spkemb.config"]))
    assert config == parse_config(TINY_CONFIG, "tiny")
    assert int(metadata["spkemb.min_samples"]) == load_model(checkpoint)[0].min_samples

    # TorchScript keeps the same metadata in the archive
    export_checkpoint(checkpoint, 7, "torchscript", tmp_path / "net.ts")
    assert read_metadata(tmp_path / "net.ts") == {**metadata, "spkemb.version": metadata["spkemb.version"]}


def test_export_refuses_bad_requests_with_one_line(tmp_path: Path) -> None:
    val_dir = write_val_dir(tmp_path)
    done = run_in_process("export", str(val_dir), "--epoch", "avg-top5", "-o", str(tmp_path / "x.onnx"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "avg-top5.pt does not exist" in done.stderr
    done = run_in_process("export", str(val_dir), "-o", str(tmp_path / "net.bin"))
    assert done.returncode == 2 and "pass --format onnx or --format torchscript" in done.stderr
    done = run_in_process("export", str(val_dir), "--epoch", "last", "-o", str(tmp_path / "x.onnx"))
    assert done.returncode == 2 and "expected an epoch number or a name such as avg-top5" in done.stderr
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob("*.bin"))


def test_export_keeps_an_existing_file_without_force_and_names_a_file_given_as_folder(tmp_path: Path) -> None:
    val_dir = write_val_dir(tmp_path)
    kept = tmp_path / "net.onnx"
    kept.write_bytes(b"an earlier export")
    done = run_in_process("export", str(val_dir), "-o", str(kept))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [f"spkemb-engine export: error: -o {kept} already exists: pass --force "
                                        "to replace it, or name another file"]
    assert kept.read_bytes() == b"an earlier export"
    done = run_in_process("export", str(val_dir), "--force", "-o", str(kept))
    assert done.returncode == 0, done.stderr
    assert read_metadata(kept)["spkemb.epoch"] == "7"

    # a file where the folder should be, directly or further up
    a_file = tmp_path / "hostname"
    a_file.write_text("host\n")
    for output in (a_file / "x.onnx", a_file / "deeper" / "x.onnx"):
        done = run_in_process("export", str(val_dir), "-o", str(output))
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.splitlines() == [f"spkemb-engine export: error: -o {output}: {a_file} is a file, "
                                            "not a folder; name a file in a folder"]
    assert a_file.read_text() == "host\n"


def test_onnxruntime_windows_equal_the_plain_torch_path(tmp_path: Path) -> None:
    val_dir = write_val_dir(tmp_path)
    checkpoint = checkpoint_of(val_dir)
    export_checkpoint(checkpoint, 7, "onnx", tmp_path / "net.onnx")
    embedder = OnnxEmbedder(tmp_path / "net.onnx", threads=1)
    model, _, _ = load_model(checkpoint)
    rng = np.random.default_rng(1)
    signal = ArraySignal((rng.normal(size=int(4.3 * SR)) * 0.2).astype(np.float32))
    starts = window_starts(signal.n_samples, SR, 1603)
    rows = embedder.embed(signal, starts, SR, batch=5)
    assert rows.shape == (len(starts), 32)
    assert np.abs(rows - embed_plain(model, signal, starts, SR)).max() <= 1e-4
    short = ArraySignal(signal.samples[:700])  # shorter than the network's minimum: tiled, as in torch
    one = embedder.embed(short, np.zeros(1, np.int64), SR)
    assert np.abs(one - embed_plain(model, short, np.zeros(1, np.int64), SR)).max() <= 1e-4


@pytest.mark.slow
def test_apply_refuses_a_model_exported_from_another_checkpoint(tmp_path: Path, demo_corpus: Path) -> None:
    val_dir = write_val_dir(tmp_path)
    other = write_val_dir(tmp_path / "other", embedding_norms=True)
    export_checkpoint(checkpoint_of(other), 7, "onnx", tmp_path / "other.onnx")
    done = run_in_process("apply", "--runtime", "onnxruntime", "--model", str(tmp_path / "other.onnx"), str(val_dir),
                      "Demo.SpeakerDiarization.Meetings", database=demo_corpus)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "was exported from" in done.stderr and "pass the --epoch it was exported from" in done.stderr
    assert not (val_dir / "apply").exists()


@pytest.mark.slow
def test_apply_through_onnxruntime_equals_the_torch_extraction(tmp_path: Path, demo_corpus: Path,
                                                               db_path: Path) -> None:
    val_dir = write_val_dir(tmp_path)
    # in-process: apply's end-to-end test runs it as a process
    done = run_in_process("apply", "--step", "0.5", str(val_dir), "Demo.SpeakerDiarization.Meetings",
                          database=demo_corpus)
    assert done.returncode == 0, done.stderr
    torch_rows = {p.name: np.load(p) for p in (val_dir / "apply" / "7-step0.5").glob("*.npy")}
    done = run_in_process("apply", "--step", "0.5", "--runtime", "onnxruntime", str(val_dir),
                          "Demo.SpeakerDiarization.Meetings", database=demo_corpus)
    assert done.returncode == 0, done.stderr
    assert "(onnxruntime, cpu (onnxruntime))" in done.stderr
    # its own folder: the torch extraction beside it is kept
    metadata = yaml.safe_load((val_dir / "apply" / "7-onnxruntime-step0.5" / "metadata.yml").read_text())
    assert metadata["mode"] == "onnxruntime" and metadata["dimension"] == 32
    # the hash the export computed is the one recorded, and it is the checkpoint's
    assert metadata["checkpoint_sha256"] == file_sha256(checkpoint_of(val_dir))
    assert torch_rows
    for name, rows in torch_rows.items():
        assert np.abs(np.load(val_dir / "apply" / "7-onnxruntime-step0.5" / name) - rows).max() <= 1e-4


def test_the_docs_way_to_embed_a_recording_with_the_onnx_file_gives_embeds_rows(tmp_path: Path) -> None:
    """Fed whole, a recording longer than the window got another embedding than `embed`'s (cosine -0.42 at
    60 s on the demo network); docs/export.md now gives the windows and the mean: run as written here."""
    import re

    import soundfile as sf

    val_dir = write_val_dir(tmp_path)
    export_checkpoint(checkpoint_of(val_dir), 7, "onnx", tmp_path / "net.onnx")
    rng = np.random.default_rng(0)
    wavs = []
    for seconds in (0.3, 1.0, 4.1):
        wavs.append(tmp_path / f"{seconds}.wav")
        sf.write(wavs[-1], (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR, subtype="FLOAT")
    done = run_engine("embed", "-o", str(tmp_path / "e.npz"), str(val_dir), *map(str, wavs))
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "e.npz", allow_pickle=False) as z:
        rows = z["embeddings"]
    docs = (Path(__file__).parents[2] / "docs" / "export.md").read_text()
    namespace: dict = {}
    exec(re.search(r"```python\n(import numpy as np\n\ndef embed.*?)```", docs, re.S).group(1), namespace)
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    for wav, row in zip(wavs, rows, strict=True):
        got = namespace["embed"](session, meta, sf.read(wav, dtype="float32")[0])
        assert got @ row / np.linalg.norm(got) / np.linalg.norm(row) > 0.99999, wav.name
