"""Training throughput: how many chunks per second the data pipeline delivers.

Over the demo corpus (written to a temporary folder unless --data names one): first the raw
crop rate of one core (``read_crop`` of random chunks, no loader), then ``make_loader`` with
each --parallel N, a warm-up, then timed batches. Prints one line per measurement and writes
bench/results/train_throughput.json.

    .venv/bin/python bench/train_throughput.py [--parallel 0,1,2] [--seconds 5] [--augment]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.audio import read_crop  # noqa: E402
from engine.augment import build_augmentation  # noqa: E402
from engine.batches import SpeakerIndex, build_index, make_loader  # noqa: E402
from engine.config import AugmentationConfig, Config, TaskConfig  # noqa: E402
from engine.demo import make_demo_corpus  # noqa: E402
from engine.protocols import load_protocol, subset_files  # noqa: E402

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
    for row, start in zip(rows[:200], starts[:200]):  # warm-up: open the handles
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="demo corpus folder (default: a temporary one)")
    parser.add_argument("--speakers", type=int, default=60, help="demo corpus speakers (default: 60)")
    parser.add_argument("--parallel", default="0,1,2", help="worker counts to measure (default: 0,1,2)")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    parser.add_argument("--duration", type=float, default=2.0, help="chunk duration (default: 2.0 s)")
    parser.add_argument("--per-fold", type=int, default=32, help="speakers per batch (default: 32)")
    parser.add_argument("--augment", action="store_true", help="also measure with AddNoise on")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_throughput.json"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "demo"
        database = data / "database.yml"
        if not database.is_file():
            make_demo_corpus(data, speakers=args.speakers, seed=0)
        began = time.perf_counter()
        files = subset_files(load_protocol(PROTOCOL, str(database)), "train")
        task = TaskConfig(duration=args.duration, per_fold=args.per_fold, per_label=1, per_epoch=7.0)
        index = build_index(files, task.duration)
        index_s = time.perf_counter() - began
        per_fold = min(task.per_fold, len(index.speakers))
        config = Config(task=TaskConfig(duration=task.duration, per_fold=per_fold, per_label=1,
                                        per_epoch=7.0))
        results: dict[str, Any] = {
            "machine": machine(), "files": len(files), "speakers": len(index.speakers),
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
                                         sample_rate=config.sample_rate, database=str(database))
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

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
