"""Training throughput: the data pipeline alone, the model step alone, the whole loop.

Over the demo corpus (written to a temporary folder unless --data names one): first the raw
crop rate of one core (``read_crop`` of random chunks, no loader), then ``make_loader`` with
each --parallel N, a warm-up, then timed batches; then the model step alone (forward, loss,
backward, SGD step on batches already on the device) for --config's network; then the whole
loop, a real ``spkemb-engine train`` subprocess for one epoch, its chunks/s read back from the
runs database. Prints one line per measurement, the data/model ratio (goal >= 3 on CPU), and
writes bench/results/train_throughput.json. With --database and --protocol the loader and the
loop read that protocol's train subset instead (through the cached training index; several
database.yml files may be joined with ';', as in $PYANNOTE_DATABASE_CONFIG): bench/gpu.sh
points them at a hard-linked VoxCeleb2-shaped protocol.

    .venv/bin/python bench/train_throughput.py [--parallel 0,1,2] [--seconds 5] [--augment]
        [--config demo|tutorial|FILE] [--device cpu|cuda] [--loop-parallel N]
        [--database YML[;YML] --protocol NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import TEMPLATES, AugmentationConfig, Config, TaskConfig, parse_config, template_text
from engine.data.audio import read_crop
from engine.data.augment import build_augmentation
from engine.data.batch_loader import make_loader
from engine.data.protocols import load_protocol, subset_files
from engine.data.speech_index import SpeakerIndex, build_index, derive_index
from engine.data.training_index import IndexRequest, training_table
from engine.demo import make_demo_corpus
from engine.layout import CONFIG, ExperimentDir
from engine.progress import Progress

PROTOCOL = "Demo.SpeakerVerification.Voices"
NOISE = ("Demo.Collection.BackgroundNoise", "Demo.Collection.Music")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version()}


def crops_per_s_per_core(index: SpeakerIndex, *, duration: float, sample_rate: int,
                         seconds: float, seed: int = 0) -> float:
    """Random ``duration`` crops of the indexed speech read in a loop by this one process."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(len(index.seg_file), size=100_000)
    starts = index.seg_start[rows] + rng.random(len(rows)) * index.seg_span[rows]
    out = np.empty(int(round(duration * sample_rate)), dtype=np.float32)
    for row, start in zip(rows[:200], starts[:200], strict=True):  # warm-up: open the handles
        read_crop(index.paths[index.seg_file[row]], start, duration, sample_rate, out=out)
    n, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        i = n % len(rows)
        read_crop(index.paths[index.seg_file[rows[i]]], starts[i], duration, sample_rate, out=out)
        n += 1
    return n / (time.perf_counter() - began)


def data_chunks_per_s(index: SpeakerIndex, config: Config, *, workers: int, seconds: float,
                      warmup: int = 10, augment: Any = None, seed: int = 0) -> float:
    """Chunks per second delivered by ``make_loader`` with ``workers`` processes, after a warm-up."""
    loader = make_loader(index, config, workers=workers, seed=seed, epochs=None, augment=augment)
    batches = iter(loader)
    for _ in range(warmup):
        next(batches)
    chunks, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        waveforms, _ = next(batches)
        chunks += len(waveforms)
    rate = chunks / (time.perf_counter() - began)
    del batches, loader
    return rate


def model_chunks_per_s(config: Config, *, device: str, speakers: int, seconds: float,
                       warmup: int = 3) -> float:
    """Training steps on random batches already on the device: what the model consumes."""
    import torch

    from engine.model import build_loss, build_model
    from engine.training.optimizer import build_optimizer
    from engine.training.train import NetworkWithLoss

    dev = torch.device(device)
    net = NetworkWithLoss(build_model(config), build_loss(config, n_classes=speakers)).to(dev)
    optimizer = build_optimizer(net, config)
    batch = config.task.batch_size
    samples = int(round(config.task.duration * config.sample_rate))
    waveforms = torch.randn(batch, samples, device=dev)
    labels = torch.randint(0, speakers, (batch,), device=dev)
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda"
           else torch.autocast("cpu", enabled=False))

    def step() -> torch.Tensor:
        with amp:
            loss = net(waveforms, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    steps, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds or steps < 2:
        step()
        steps += 1
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - began)


@contextlib.contextmanager
def unfolded_waveform_norm() -> Iterator[None]:
    """SincNet's forward as it was before the waveform norm's affine step was folded into the sinc
    filters (the norm, then every block): the baseline of the fold's speed-up."""
    import torch

    from engine.model.sincnet import SincNet

    def plain(self: SincNet, waveforms: torch.Tensor) -> torch.Tensor:
        x = waveforms.unsqueeze(1)
        if self.waveform_norm is not None:
            x = self.waveform_norm(x)
        for block in self.blocks:
            x = block(x)
        return x

    folded = SincNet.forward
    SincNet.forward = plain  # type: ignore[method-assign]
    try:
        yield
    finally:
        SincNet.forward = folded  # type: ignore[method-assign]


def loop_chunks_per_s(config_text: str, database: str, *, device: str, workers: int,
                      batches: int, work: Path, protocol: str = PROTOCOL) -> float:
    """A real ``spkemb-engine train --to 1`` of ``batches`` batches; chunks/s of its epoch row."""
    import re
    import subprocess

    from engine_commands import checkout_env

    from engine.store import open_store

    cfg = parse_config(config_text, "bench")
    per_epoch = batches * cfg.task.batch_size * cfg.task.duration / 86400
    text = re.sub(r"per_epoch:\s*[0-9.e-]+", f"per_epoch: {per_epoch:.8f}", config_text)
    text = text.replace("MUSAN.Collection.", "Demo.Collection.")  # the demo corpus has its own
    exp = work / "loop-exp"
    exp.mkdir(parents=True, exist_ok=True)
    ExperimentDir(exp).config.write_text(text)
    db = work / "loop.db"
    env = {**os.environ, "PYANNOTE_DATABASE_CONFIG": str(database)}  # one file, or several joined by ';'
    done = subprocess.run([sys.executable, "-m", "engine", "train", "--to", "1", "--parallel", str(workers),
                           "--device", device, "--db", str(db), str(exp), protocol],
                          capture_output=True, text=True, env=checkout_env(env))
    if done.returncode != 0:
        raise SystemExit(f"the training loop failed:\n{done.stderr[-2000:]}")
    store = open_store(db, readonly=True)
    (run,) = store.runs(kind="train")
    return float(store.epochs(run["id"])[0]["chunks_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="demo corpus folder (default: a temporary one)")
    parser.add_argument("--speakers", type=int, default=60, help="demo corpus speakers (default: 60)")
    parser.add_argument("--parallel", default="0,1,2", help="worker counts to measure (default: 0,1,2)")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    parser.add_argument("--duration", type=float, default=2.0, help="chunk duration (default: 2.0 s)")
    parser.add_argument("--per-fold", type=int, default=32, help="speakers per batch (default: 32)")
    parser.add_argument("--augment", action="store_true", help="also measure with AddNoise on")
    parser.add_argument("--config", default="demo",
                        help=f"network of the model step and loop: demo, tutorial or a {CONFIG} (default: demo)")
    parser.add_argument("--device", default="cpu", help="device of the model step and loop (default: cpu)")
    parser.add_argument("--loop-parallel", type=int, default=1, help="--parallel of the loop run (default: 1)")
    parser.add_argument("--loop-batches", type=int, default=12, help="batches of the loop run (default: 12)")
    parser.add_argument("--database", default=None,
                        help="database.yml of --protocol (several joined by ';'); default: the demo corpus")
    parser.add_argument("--protocol", default=PROTOCOL, help=f"protocol to train on (default: {PROTOCOL})")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_throughput.json"))
    args = parser.parse_args(argv)
    config_text = (template_text(args.config) if args.config in TEMPLATES
                   else Path(args.config).read_text())
    model_config = parse_config(config_text, args.config)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "demo"
        database = data / "database.yml"
        if args.database is None and not database.is_file():
            make_demo_corpus(data, speakers=args.speakers, seed=0)
        began = time.perf_counter()
        task = TaskConfig(duration=args.duration, per_fold=args.per_fold, per_label=1, per_epoch=7.0)
        if args.database is None:
            files = subset_files(load_protocol(PROTOCOL, str(database)), "train")
            index = build_index(files, task.duration)
        else:
            database = args.database
            os.environ["PYANNOTE_DATABASE_CONFIG"] = database
            table = training_table(IndexRequest(args.protocol, "train"), Progress(quiet=True))
            files = table.paths
            index = derive_index(table, task.duration)
        index_s = time.perf_counter() - began
        per_fold = min(task.per_fold, len(index.speakers))
        config = Config(task=TaskConfig(duration=task.duration, per_fold=per_fold, per_label=1,
                                        per_epoch=7.0))
        results: dict[str, Any] = {
            "machine": machine(), "protocol": args.protocol, "files": len(files), "speakers": len(index.speakers),
            "speech_seconds": round(index.total_speech, 1), "index_seconds": round(index_s, 3),
            "chunk_seconds": task.duration, "batch": per_fold, "sample_rate": config.sample_rate}
        print(f"index: {len(files)} files, {len(index.speakers)} speakers in {index_s:.2f} s")

        rate = crops_per_s_per_core(index, duration=task.duration, sample_rate=config.sample_rate,
                                    seconds=args.seconds)
        results["crops_per_s_per_core"] = round(rate, 1)
        print(f"read_crop, one core: {rate:,.0f} crops/s of {task.duration:g} s")

        loader_rates: dict[str, float] = {}
        noisy_rates: dict[str, float] = {}
        augment = None
        if args.augment:
            augment = build_augmentation(AugmentationConfig(collection=NOISE, snr_min=5, snr_max=20),
                                         sample_rate=config.sample_rate,
                                         database=None if args.database else str(database))
        for workers in (int(w) for w in args.parallel.split(",")):
            rate = data_chunks_per_s(index, config, workers=workers, seconds=args.seconds)
            loader_rates[str(workers)] = round(rate, 1)
            print(f"make_loader --parallel {workers}: {rate:,.0f} chunks/s")
            if augment is not None:
                rate = data_chunks_per_s(index, config, workers=workers, seconds=args.seconds,
                                         augment=augment)
                noisy_rates[str(workers)] = round(rate, 1)
                print(f"make_loader --parallel {workers} + AddNoise: {rate:,.0f} chunks/s")
        results["data_chunks_per_s"] = loader_rates
        if noisy_rates:
            results["data_chunks_per_s_addnoise"] = noisy_rates

        # the model step and the loop use --config's own chunks (duration, batch)
        model_rate = model_chunks_per_s(model_config, device=args.device, speakers=len(index.speakers),
                                        seconds=args.seconds)
        best_data = max(loader_rates.values()) * args.duration / model_config.task.duration
        results["model"] = {"config": args.config, "device": args.device,
                            "chunk_seconds": model_config.task.duration,
                            "batch": model_config.task.batch_size,
                            "model_chunks_per_s": round(model_rate, 1),
                            "data_over_model": round(best_data / model_rate, 2)}
        print(f"model step ({args.config}, {args.device}, batch {model_config.task.batch_size} x "
              f"{model_config.task.duration:g} s): {model_rate:,.1f} chunks/s")
        if model_config.architecture.name == "SincTDNN" and model_config.architecture.sincnet.waveform_normalize:
            with unfolded_waveform_norm():
                unfolded = model_chunks_per_s(model_config, device=args.device, speakers=len(index.speakers),
                                              seconds=args.seconds)
            results["model"]["model_chunks_per_s_unfolded_norm"] = round(unfolded, 1)
            print(f"model step, the waveform norm not folded into the sinc filters (the baseline): "
                  f"{unfolded:,.1f} chunks/s; folded / baseline: {model_rate / unfolded:.2f}x")
        print(f"data pipeline / model step: {best_data / model_rate:.1f}x (goal >= 3x on CPU)")
        loop_rate = loop_chunks_per_s(config_text, str(database), protocol=args.protocol,
                                      device=args.device, workers=args.loop_parallel,
                                      batches=args.loop_batches, work=Path(tmp))
        results["model"]["loop_chunks_per_s"] = round(loop_rate, 1)
        results["model"]["loop_parallel"] = args.loop_parallel
        print(f"whole loop (spkemb-engine train, --parallel {args.loop_parallel}): {loop_rate:,.1f} chunks/s "
              f"({loop_rate / model_rate:.2f} of the model step alone)")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
