"""Each filterbank backbone through every command, on generated audio and a real runs database: train
(ECAPA_TDNN under torchrun, two gloo ranks), validate (ResNet34 with AS-norm), average, apply with the
diarization check, export to ONNX (parity) and apply that export in onnxruntime; and a large-margin
fork of a trained epoch. Each network is trained once for the module (tiny sizes), by engine processes;
from then on its checkpoints alone describe it: the experiment's config.yml is replaced by a SincTDNN one.
The commands after training and validation run through ``engine.cli.main`` in this process: what a
process of each adds (its start, its exit status) is the recipe's end-to-end test's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

from engine.config import load_config
from engine.config.forks import fork_dict
from engine.data.audio import read_file
from engine.data.protocols import load_protocol
from engine.inference.network import load_model
from engine.inference.windows import ArraySignal, embed_plain, window_starts
from engine.layout import ExperimentDir, TrainingDir, ValidationDir
from engine.model import FbankNetwork
from engine.process.checkpoints import load_checkpoint
from engine.store import open_store
from engine.training.schedulers import learning_rate
from engine.validation.params import read_params
from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import engine_env, run_engine, run_in_process, torchrun_argv

PROTOCOL = "Demo.SpeakerVerification.Voices"
MEETINGS = "Demo.SpeakerDiarization.Meetings"
SR = 16000
TRAIN = ["--to", "1", "--parallel", "0", "--device", "cpu", "--seed", "1", "--log-every", "0"]
ASNORM = ["--score-norm", "asnorm", "--cohort-size", "3", "--cohort-files", "1"]

_TASK = """
task:
   name: AdditiveAngularMarginLoss
   params: {margin: 0.05, s: 10, duration: 1.0, per_fold: 4, per_label: 2, per_epoch: 0.0002}
scheduler: {name: ConstantScheduler, params: {learning_rate: 0.01}}
"""
_FBANK = "feature_extraction: {name: Fbank, params: {num_mel_bins: 16, dither: 1.0}}\n"
#: the tiny config's task on each backbone, a few channels over 16 mel bins, 16-dim embeddings
TINY = {
    "ResNet34": _FBANK + "architecture: {name: ResNet34, params: {m_channels: 4, embed_dim: 16}}" + _TASK,
    "ECAPA_TDNN": _FBANK + "architecture: {name: ECAPA_TDNN, params: {channels: 16, embed_dim: 16}}" + _TASK,
    "CAMPPlus": (_FBANK + "architecture: {name: CAMPPlus, params: {embed_dim: 16, growth_rate: 4, bn_size: 2, "
                 "init_channels: 8}}" + _TASK),
}
#: trained by torchrun with two ranks (gloo)
UNDER_TORCHRUN = "ECAPA_TDNN"
#: validated with AS-norm beside the raw scores
WITH_ASNORM = "ResNet34"


@dataclass(frozen=True)
class Trained:
    """A backbone trained one epoch and validated (epochs 0 and 1), in a runs database of its own."""

    network: str
    exp: ExperimentDir
    trn: TrainingDir
    val: ValidationDir
    db: Path
    database: Path


def close(got: np.ndarray, expected: np.ndarray) -> bool:
    """Parity within 1e-4 of the embedding's scale: a trained CAM++'s values reach hundreds, where
    float32 itself rounds at 3e-5 and two runtimes summing in other orders differ by a few of those."""
    return float(np.abs(got - expected).max()) <= 1e-4 * max(1.0, float(np.abs(expected).max()))


def same_directions(got: np.ndarray, expected: np.ndarray) -> bool:
    """Every row pointing where the other does (cosine above 1 - 1e-5), as scoring sees embeddings.
    A CAM++ trained one epoch on the demo gives rows of norm 1e5 whose small coordinates are what
    is left after cancellation: the two runtimes' sums, in batches of other sizes, differed there by
    8e-4 of the row's norm (a cosine of 1 - 3e-7), while a wrong window or pooling turns rows by far
    more."""
    dot = (got.astype(np.float64) * expected).sum(axis=1)
    norms = np.linalg.norm(got.astype(np.float64), axis=1) * np.linalg.norm(expected.astype(np.float64), axis=1)
    return got.shape == expected.shape and bool((dot >= (1 - 1e-5) * norms).all())


def engine_ok(*args: str, on: Trained) -> str:
    """``spkemb-engine ARGS`` in this process; what it printed."""
    done = run_in_process(*args, db=on.db, database=on.database)
    assert done.returncode == 0, done.stderr
    return done.stdout


def engine_process_ok(*args: str, on: Trained) -> None:
    done = run_engine(*args, db=on.db, database=on.database, timeout=600)
    assert done.returncode == 0, done.stderr


def _train_and_validate(root: Path, network: str, database: Path) -> Trained:
    exp = ExperimentDir(root / network.lower())
    exp.root.mkdir()
    exp.config.write_text(TINY[network])
    trn, db = exp.training(PROTOCOL, "train"), root / "runs.db"
    trained = Trained(network, exp, trn, trn.validation(PROTOCOL, "test"), db, database)
    if network == UNDER_TORCHRUN:
        done = children.run(torchrun_argv(2, "train", *TRAIN, str(exp.root), PROTOCOL),
                            env=engine_env(db, database), timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        engine_process_ok("train", *TRAIN, str(exp.root), PROTOCOL, on=trained)
    # from here on, nothing but the checkpoints says what the network is
    exp.config.write_text(TINY_CONFIG)
    norm = ASNORM if network == WITH_ASNORM else []
    engine_process_ok("validate", "--poll", "0.2", *norm, str(trn.root), PROTOCOL, on=trained)
    return trained


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, demo_corpus: Path) -> Callable[[str], Trained]:
    """``trained(network)``: that backbone trained and validated once for the module."""
    done: dict[str, Trained] = {}

    def get(network: str) -> Trained:
        if network not in done:
            done[network] = _train_and_validate(tmp_path_factory.mktemp(network), network, demo_corpus)
        return done[network]

    return get


@pytest.mark.slow(seconds=35)
@pytest.mark.parametrize("network", list(TINY))
def test_each_backbone_trains_validates_averages_applies_diarizes_and_exports(
        trained: Callable[[str], Trained], network: str, tmp_path: Path) -> None:
    on = trained(network)
    saved = load_checkpoint(on.trn.checkpoint(1))
    assert saved["config"]["architecture"]["name"] == network
    assert saved["config"]["feature_extraction"]["params"]["num_mel_bins"] == 16
    assert saved["world_size"] == (2 if network == UNDER_TORCHRUN else 1)
    with open_store(on.db, readonly=True) as store:
        (train,) = store.find_runs(kind="train", out_dir=on.trn.root)
        (validation,) = store.find_runs(kind="validate", out_dir=on.val.root)
        rows = store.validations(validation["id"])
    assert train["status"] == validation["status"] == "completed"
    assert sorted(r["epoch"] for r in rows) == [0, 1]
    assert all(r["eer_low"] <= r["eer"] <= r["eer_high"] for r in rows)
    if network == WITH_ASNORM:
        assert all(r["cohort_size"] == 3 and r["eer_asnorm_low"] <= r["eer_asnorm"] <= r["eer_asnorm_high"]
                   for r in rows)
    assert read_params(on.val).checkpoint in (0, 1)

    # the best trained epoch as averaged weights (epoch 0, the network before training, is never one of
    # them), then extracted on the meetings and diarized
    engine_ok("average", "--top", "1", str(on.val.root), on=on)
    assert load_checkpoint(on.trn.checkpoint("avg-top1"))["averaged"]["epochs"] == [1]
    out = engine_ok("apply", "--epoch", "avg-top1", "--step", "0.5", "--diarize", str(on.val.root), MEETINGS, on=on)
    extraction = on.val.extraction("avg-top1", step=0.5)
    metadata = yaml.safe_load(extraction.metadata.read_text())
    assert metadata["dimension"] == 16 and metadata["mode"] == "exact"
    rows_of = {p.name: np.load(p) for p in extraction.root.glob("*.npy")}
    files = list(load_protocol(MEETINGS, on.database).test())
    assert sorted(rows_of) == sorted(f"{f['uri']}.npy" for f in files)
    assert all(r.shape[1] == 16 and np.isfinite(r).all() for r in rows_of.values())
    assert all((extraction.root / f"{f['uri']}.rttm").is_file() for f in files) and " DER " in out
    with open_store(on.db, readonly=True) as store:
        (diarization,) = store.diarizations(extraction.root)
    assert diarization["files"] == len(files) and 0.0 <= diarization["der"]

    # the averaged network exported to ONNX: the same embeddings at five lengths, and through apply
    onnx_file = tmp_path / f"{network}.onnx"
    engine_ok("export", "--epoch", "avg-top1", str(on.val.root), "-o", str(onnx_file), on=on)
    model, _, _ = load_model(on.trn.checkpoint("avg-top1"))
    assert isinstance(model, FbankNetwork) and not model.training
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for samples in (model.min_samples, 8000, SR + 1, 24000, 3 * SR):
        wave = (0.1 * rng.standard_normal((2, samples))).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(wave)).numpy()
        got = session.run(None, {session.get_inputs()[0].name: wave})[0]
        assert close(got, expected), samples
    engine_ok("apply", "--epoch", "avg-top1", "--step", "0.5", "--runtime", "onnxruntime", "--model", str(onnx_file),
              str(on.val.root), MEETINGS, on=on)
    onnx_out = on.val.extraction("avg-top1", mode="onnxruntime", step=0.5)
    for name, rows in rows_of.items():
        assert same_directions(np.load(onnx_out.root / name), rows), name


@pytest.mark.slow
def test_resnet34_exact_path_is_every_window_through_the_network_and_shared_is_refused(
        trained: Callable[[str], Trained]) -> None:
    on = trained("ResNet34")
    engine_ok("apply", "--epoch", "1", "--step", "0.5", str(on.val.root), MEETINGS, on=on)
    out = on.val.extraction(1, step=0.5)  # a step other than the default is named in the folder
    # the exact path of a filterbank network is every window through it (per-window normalisation)
    model, _, _ = load_model(on.trn.checkpoint(1))
    first = next(iter(load_protocol(MEETINGS, on.database).test()))
    x = read_file(str(first["audio"]), SR)
    plain = embed_plain(model, ArraySignal(x), window_starts(len(x), SR, SR // 2), SR)
    assert np.abs(np.load(out.root / f"{first['uri']}.npy") - plain).max() <= 1e-5

    done = run_in_process("apply", "--epoch", "1", "--shared", str(on.val.root), MEETINGS, db=on.db,
                          database=on.database)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--shared pools frames of SincTDNN only; ResNet34" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_large_margin_template_forks_a_resnet34_epoch_and_trains_it(trained: Callable[[str], Trained],
                                                                    tmp_path: Path) -> None:
    on = trained("ResNet34")
    source = on.trn.checkpoint(1)
    parent = load_checkpoint(source)
    lm = ExperimentDir(tmp_path / "resnet34-lm")
    lm.root.mkdir()
    # the checkpoint's own config (the experiment's config.yml is a SincTDNN one by now)
    lm.config.write_text(engine_ok("config", "large-margin", str(source), on=on))
    assert yaml.safe_load(lm.config.read_text()) == fork_dict(parent["config"])
    engine_ok("train", "--init-from", str(source), "--init-classifier", *TRAIN, str(lm.root), PROTOCOL, on=on)

    cfg = load_config(lm.config)
    assert (cfg.architecture.name, cfg.task.margin, cfg.task.margin_scheduler, cfg.task.duration) == (
        "ResNet34", 0.5, None, 3.0)
    lm_trn = lm.training(PROTOCOL, "train")
    start = load_checkpoint(lm_trn.checkpoint(0))
    for part in ("model", "loss"):  # the network and the classifier of the parent's epoch 1
        assert all(torch.equal(start[part][k], parent[part][k]) for k in parent[part])
    assert start["config"]["architecture"] == parent["config"]["architecture"]
    with open_store(on.db, readonly=True) as store:
        (run,) = store.find_runs(kind="train", out_dir=lm_trn.root)
        steps = store.steps(run["id"])
    assert run["status"] == "completed" and (run["init_epoch"], run["init_from"]) == (1, str(source.resolve()))
    assert steps and {s["margin"] for s in steps} == {0.5}
    # lr 1e-4 -> 2.5e-5 with a one-epoch warm-up from zero (WeSpeaker's lm stage), here over the one epoch
    assert [s["lr"] for s in steps] == pytest.approx([learning_rate(cfg.scheduler, s["step"] - 1, len(steps), 1)
                                                      for s in steps])
    assert steps[0]["lr"] == 0.0 and max(s["lr"] for s in steps) <= 1e-4
