"""Extraction speed: plain per-window vs exact vs shared vs onnxruntime, side by side in one run.

On one demo meeting (the demo corpus is written to a temporary folder unless --data names
one), for the tutorial's network (SincTDNN, stride (5, 1, 1), both normalisations, 512-wide
TDNN and embedding; random weights unless --checkpoint) with a 2 s window and step 0.1:
a warm-up, then each path timed --repeat times (best kept). Reports real-time factors,
the maximum deviation of exact from plain, cosine similarities of shared to exact, and the
demo EER (test trials, file embedding = mean of windows) by exact vs shared embeddings.
The onnxruntime path is the network exported to ONNX (``spkemb-engine export``) run by
onnxruntime with --threads intra-op threads over the same windows (the plain path's work);
its real-time factor is also given per thread and per second of audio through the network
(windows x window duration), the unit of WeSpeaker's runtime README (ResNet34: RTF 0.061 per
thread on CPU). Writes bench/results/extract.json.

    .venv/bin/python bench/extract.py [--threads 2] [--seconds 60] [--repeat 2]
        [--data DIR] [--checkpoint weights/NNNN.pt] [--device cpu|cuda]
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
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data.audio import read_file
from engine.data.protocols import load_protocol
from engine.demo import make_demo_corpus
from engine.extraction.export import export_checkpoint, onnx_bytes
from engine.extraction.exported import METADATA_FORMAT
from engine.extraction.onnx_runtime import OnnxEmbedder
from engine.inference.network import inference_model, load_model
from engine.inference.windows import ArraySignal, embed_exact, embed_plain, embed_shared, window_starts
from engine.model import SincTDNN
from engine.validation.metrics import equal_error_rate
from engine.validation.validate import cosine_scores, load_trials

SR = 16000
#: WeSpeaker runtime README (runtime/onnxruntime): ResNet34, RTF per thread on CPU
WESPEAKER_RTF = 0.061


def machine(device: torch.device, threads: int) -> dict[str, Any]:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "torch_threads": threads,
            "torch": torch.__version__, "device": str(device),
            "load_average_1min_at_start": os.getloadavg()[0]}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def timed(fn, repeat: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        began = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - began)
    return best, out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def demo_eer(model: torch.nn.Module, database: Path, window: int, hop: int) -> dict[str, float]:
    """Test-trial EER with file embeddings averaged over windows from exact vs shared."""
    trials, files = load_trials("Demo.SpeakerVerification.Voices", "test", str(database))
    by_mode: dict[str, dict[str, np.ndarray]] = {"exact": {}, "shared": {}}
    for uri, path in files.items():
        signal = ArraySignal(read_file(path, SR))
        starts = window_starts(signal.n_samples, window, hop)
        by_mode["exact"][uri] = embed_exact(model, signal, starts, window).mean(0)
        by_mode["shared"][uri] = embed_shared(model, signal, starts, window).mean(0)
    is_target = np.array([t for t, _, _ in trials], bool)
    return {mode: equal_error_rate(cosine_scores(emb, trials), is_target)[0] for mode, emb in by_mode.items()}


def onnx_path(model: torch.nn.Module, checkpoint: str | None, duration: float, threads: int) -> OnnxEmbedder:
    """The network exported to ONNX in a temporary file (what `spkemb-engine export` writes), in onnxruntime."""
    folder = Path(tempfile.mkdtemp(prefix="spkemb-bench-onnx-"))
    path = folder / "embedding.onnx"
    if checkpoint:
        export_checkpoint(Path(checkpoint), "bench", "onnx", path)
    else:  # random weights: no checkpoint to name in the metadata
        metadata = {"spkemb.format": METADATA_FORMAT, "spkemb.config": "", "spkemb.sample_rate": str(SR),
                    "spkemb.duration": repr(duration), "spkemb.dimension": str(model.dimension),
                    "spkemb.min_samples": str(model.min_samples), "spkemb.checkpoint": "none (random weights)",
                    "spkemb.checkpoint_sha256": "", "spkemb.epoch": "", "spkemb.version": "bench"}
        path.write_bytes(onnx_bytes(model, metadata))
    return OnnxEmbedder(path, threads=threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0, help="audio to extract (meetings repeated)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--data", default=None, help="demo corpus folder holding database.yml")
    parser.add_argument("--checkpoint", default=None, help="a trained checkpoint instead of random weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "extract.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    if args.data:
        database = Path(args.data) / "database.yml"
    else:
        database = make_demo_corpus(Path(tempfile.mkdtemp(prefix="spkemb-bench-")), speakers=12, seed=0)
    if args.checkpoint:
        model, config, _ = load_model(args.checkpoint, device)
        duration = config.task.duration
    else:
        torch.manual_seed(0)
        model = inference_model(SincTDNN(stride=(5, 1, 1), waveform_normalize=True, instance_normalize=True,
                                         embedding_dim=512, hidden_dim=512), device)
        duration = 2.0
    window = int(round(duration * SR))
    hop = int(round(args.step * window))

    meeting = next(iter(load_protocol("Demo.SpeakerDiarization.Meetings", database).test()))
    x = read_file(meeting["audio"], SR)
    x = np.resize(x, int(args.seconds * SR))  # the meeting, repeated up to --seconds
    signal = ArraySignal(x)
    starts = window_starts(signal.n_samples, window, hop)
    seconds = signal.n_samples / SR

    ort_model = onnx_path(model, args.checkpoint, duration, args.threads)
    paths = {"plain": embed_plain, "exact": embed_exact, "shared": embed_shared,
             "onnxruntime": lambda _, signal, starts, window, batch: ort_model.embed(signal, starts, window, batch)}
    for fn in paths.values():  # warm-up
        fn(model, ArraySignal(x[: 4 * window]), window_starts(4 * window, window, hop), window, batch=args.batch)
    wall, out = {}, {}
    for name, fn in paths.items():
        # fn=fn binds this iteration's path (timed() calls it at once; a late binding would be a trap)
        wall[name], out[name] = timed(lambda fn=fn: fn(model, signal, starts, window, batch=args.batch), args.repeat)
        print(f"{name:>6}: {seconds / wall[name]:8.1f}x real time ({wall[name]:.2f} s for {seconds:.0f} s)",
              flush=True)
    rtf = {name: seconds / w for name, w in wall.items()}
    deviation = float(np.abs(out["exact"] - out["plain"]).max())
    ort_deviation = float(np.abs(out["onnxruntime"] - out["plain"]).max())
    # seconds of compute per second of audio through the network, per thread (WeSpeaker's unit)
    network_seconds = len(starts) * duration
    ort_rtf_per_thread = wall["onnxruntime"] * args.threads / network_seconds
    cos = cosines(out["shared"], out["exact"])
    eer = demo_eer(model, database, window, int(round(0.25 * window)))
    result = {
        "machine": machine(device, args.threads), "meeting": meeting["uri"], "audio_seconds": seconds,
        "windows": len(starts), "window_seconds": duration, "step_seconds": hop / SR,
        "weights": args.checkpoint or "random (seed 0), tutorial architecture",
        "real_time_factor": rtf,
        "exact_over_plain": rtf["exact"] / rtf["plain"], "shared_over_exact": rtf["shared"] / rtf["exact"],
        "onnxruntime_over_plain": rtf["onnxruntime"] / rtf["plain"],
        "onnxruntime_over_exact": rtf["onnxruntime"] / rtf["exact"],
        "max_abs_deviation_onnxruntime_vs_plain": ort_deviation,
        "onnxruntime_rtf_per_thread_of_network_audio": ort_rtf_per_thread,
        "torch_plain_rtf_per_thread_of_network_audio": wall["plain"] * args.threads / network_seconds,
        "wespeaker_resnet34_rtf_per_thread_anchor": WESPEAKER_RTF,
        "max_abs_deviation_exact_vs_plain": deviation,
        "max_abs_embedding_plain": float(np.abs(out["plain"]).max()),
        "cosine_shared_vs_exact": {"mean": float(cos.mean()), "min": float(cos.min())},
        "demo_test_eer": {"exact": eer["exact"], "shared": eer["shared"],
                          "change": eer["shared"] - eer["exact"]},
    }
    print(f"exact/plain {result['exact_over_plain']:.2f}x  shared/exact {result['shared_over_exact']:.1f}x  "
          f"max |exact - plain| {deviation:.2e}  cos(shared, exact) mean {cos.mean():.4f} min {cos.min():.4f}  "
          f"demo EER exact {100 * eer['exact']:.1f} % shared {100 * eer['shared']:.1f} %")
    print(f"onnxruntime/plain {result['onnxruntime_over_plain']:.2f}x  onnxruntime/exact "
          f"{result['onnxruntime_over_exact']:.2f}x  max |onnxruntime - plain| {ort_deviation:.2e}  "
          f"RTF per thread of network audio: onnxruntime {ort_rtf_per_thread:.4f}, torch plain "
          f"{result['torch_plain_rtf_per_thread_of_network_audio']:.4f} (WeSpeaker ResNet34 {WESPEAKER_RTF})")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
