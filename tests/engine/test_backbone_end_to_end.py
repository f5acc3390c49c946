"""A ResNet34 on filterbanks through every command: train, validate, apply, export; its checkpoint
alone describes it (the experiment's config.yml is replaced by a SincTDNN one after training)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

from engine.model import FbankNetwork
from engine.process.checkpoints import load_checkpoint
from engine.store import open_store
from engine.validation.embed import ArraySignal, embed_plain, load_model, window_starts
from engine.validation.selection import read_params
from tests.conftest import TINY_CONFIG

PROTOCOL = "Demo.SpeakerVerification.Voices"
MEETINGS = "Demo.SpeakerDiarization.Meetings"
SR = 16000

#: the tiny config's task on a ResNet34 of 4 channels over 16 mel bins
TINY_RESNET = """
feature_extraction: {name: Fbank, params: {num_mel_bins: 16, dither: 1.0}}
architecture: {name: ResNet34, params: {m_channels: 4, embed_dim: 16}}
task:
   name: AdditiveAngularMarginLoss
   params: {margin: 0.05, s: 10, duration: 1.0, per_fold: 4, per_label: 2, per_epoch: 0.0002}
scheduler: {name: ConstantScheduler, params: {learning_rate: 0.01}}
"""


def run_engine(*argv: str, database: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYANNOTE_DATABASE_CONFIG": str(database)}
    return subprocess.run([sys.executable, "-m", "engine", *argv], capture_output=True, text=True, env=env,
                          timeout=600, start_new_session=True)


@pytest.mark.slow
def test_resnet34_trains_validates_applies_and_exports_from_its_checkpoint_alone(
        tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_RESNET)
    done = run_engine("train", "--to", "1", "--parallel", "1", "--device", "cpu", "--log-every", "0",
                      str(exp), PROTOCOL, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    trn_dir = exp / "train" / f"{PROTOCOL}.train"
    checkpoint = trn_dir / "weights" / "0001.pt"
    saved = load_checkpoint(checkpoint)
    assert saved["config"]["architecture"]["name"] == "ResNet34"
    assert saved["config"]["feature_extraction"]["params"]["num_mel_bins"] == 16

    # from here on, nothing but the checkpoint says what the network is
    (exp / "config.yml").write_text(TINY_CONFIG)
    done = run_engine("validate", str(trn_dir), PROTOCOL, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    val_dir = trn_dir / "validate_equal_error_rate" / f"{PROTOCOL}.test"
    assert read_params(val_dir).checkpoint in (0, 1)
    (validation,) = open_store(db_path, readonly=True).find_runs(kind="validate")
    assert validation["status"] == "completed"

    done = run_engine("apply", "--epoch", "1", "--step", "0.5", str(val_dir), MEETINGS, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    out = val_dir / "apply" / "1-step0.5"  # a step other than the default is named in the folder
    metadata = yaml.safe_load((out / "metadata.yml").read_text())
    assert metadata["dimension"] == 16 and metadata["mode"] == "exact"
    torch_rows = {p.name: np.load(p) for p in out.glob("*.npy")}
    assert torch_rows and all(r.shape[1] == 16 and np.isfinite(r).all() for r in torch_rows.values())

    # the exact path of a filterbank network is every window through it (per-window normalisation)
    model, config, _ = load_model(checkpoint)
    assert isinstance(model, FbankNetwork) and not model.training
    from engine.data.audio import read_file
    from engine.data.protocols import load_protocol

    first = next(iter(load_protocol(MEETINGS, demo_corpus).test()))
    x = read_file(str(first["audio"]), SR)
    starts = window_starts(len(x), SR, SR // 2)
    plain = embed_plain(model, ArraySignal(x), starts, SR)
    assert np.abs(torch_rows[f"{first['uri']}.npy"] - plain).max() <= 1e-5

    done = run_engine("apply", "--epoch", "1", "--shared", str(val_dir), MEETINGS, database=demo_corpus)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--shared pools frames of SincTDNN only; ResNet34" in done.stderr and "Traceback" not in done.stderr

    onnx_file = tmp_path / "resnet.onnx"
    done = run_engine("export", "--epoch", "1", str(val_dir), "-o", str(onnx_file), database=demo_corpus)
    assert done.returncode == 0, done.stderr
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for samples in (model.min_samples, 8000, 16001, 3 * SR):
        wave = (0.1 * rng.standard_normal((2, samples))).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(wave)).numpy()
        got = session.run(None, {session.get_inputs()[0].name: wave})[0]
        assert np.abs(got - expected).max() <= 1e-4, samples

    done = run_engine("apply", "--epoch", "1", "--step", "0.5", "--runtime", "onnxruntime", "--model", str(onnx_file),
                      str(val_dir), MEETINGS, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    onnx_out = val_dir / "apply" / "1-onnxruntime-step0.5"  # its own folder: the torch extraction stays
    for name, rows in torch_rows.items():
        assert np.abs(np.load(onnx_out / name) - rows).max() <= 1e-4, name
        assert np.array_equal(np.load(out / name), rows), name
