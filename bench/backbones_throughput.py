"""The GPU half of bench/backbones.py: each backbone's training chunks/s and extraction speed.

Per network, in one run: the model step alone (forward, loss, backward, SGD step on batches
already on the device; bf16 autocast on cuda), the whole loop (a real ``spkemb-engine train``
of --loop-batches batches over --database/--protocol, its chunks/s read back from the runs
database) and the exact path's real-time factor over --extract-seconds of one demo meeting
(random weights, seed 0, best of --repeat after a warm-up). SincTDNN is the baseline of every
ratio: --baseline names its config (default: the tutorial's). --size recipe puts each fbank
template's VoxCeleb2 recipe values (its ``# recipe:`` comments) in place of the CPU sizes;
--size template keeps them. Every network gets the same batch shape (--per-fold, --per-label,
--duration). Writes --out (bench/gpu.sh: bench/results/gpu_backbones.json) and prints a table.

    python bench/backbones_throughput.py --device cuda --size recipe --data DEMO_DIR \
        --database 'VOX2.yml;DEMO.yml' --protocol Scale.SpeakerVerification.VoxCeleb2
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backbones import machine
from results_io import write_results
from train_throughput import loop_chunks_per_s, model_chunks_per_s

from engine.config import parse_config, template_text
from engine.data.audio import read_file
from engine.data.protocols import load_protocol
from engine.inference.network import inference_model
from engine.inference.windows import ArraySignal, embed_exact, window_starts
from engine.layout import CONFIG
from engine.model import build_model

#: the fbank backbones and their packaged templates (SincTDNN, the baseline, is --baseline)
BACKBONES = {"ResNet34": "resnet34", "ECAPA_TDNN": "ecapa_tdnn", "CAMPPlus": "campplus"}
MEETINGS = "Demo.SpeakerDiarization.Meetings"
#: `key: value   # recipe: VALUE ...` in a template: the VoxCeleb2 recipe's value of that key
RECIPE = re.compile(r"^(?P<head>[ \t]*(?P<key>\w+):[ \t]*)(?P<value>[^#\s][^#\n]*?)(?P<gap>[ \t]*#[ \t]*recipe:[ \t]*)"
                    r"(?P<recipe>[^\s(]+)(?P<tail>.*)$", re.M)
#: keys whose recipe value is no size: the epoch length is the bench's own
NOT_A_SIZE = {"per_epoch"}


def recipe_text(text: str) -> str:
    """The template with each ``# recipe:`` value put in place of the CPU-sized one."""
    def put(m: re.Match[str]) -> str:
        if m["key"] in NOT_A_SIZE:
            return m[0]
        return f"{m['head']}{m['recipe']}{m['gap']}{m['recipe']}{m['tail']}"
    return RECIPE.sub(put, text)


def with_batch(text: str, *, per_fold: int, per_label: int, duration: float) -> str:
    """The config with the batch shape that every network of the run shares."""
    for key, value in (("per_fold", per_fold), ("per_label", per_label), ("duration", duration)):
        text, n = re.subn(rf"^([ \t]*{key}:[ \t]*)[0-9.]+", rf"\g<1>{value}", text, count=1, flags=re.M)
        if n != 1:
            raise SystemExit(f"bench/backbones_throughput.py: no `{key}:` in a config")
    return text


def configs(args: argparse.Namespace) -> dict[str, str]:
    """Network name -> config text, SincTDNN (the baseline) first."""
    texts = {"SincTDNN": Path(args.baseline).read_text() if args.baseline else template_text("tutorial")}
    for name, template in BACKBONES.items():
        text = template_text(template)
        texts[name] = recipe_text(text) if args.size == "recipe" else text
    return {name: with_batch(text, per_fold=args.per_fold, per_label=args.per_label, duration=args.duration)
            for name, text in texts.items()}


def extraction_rtf(model: torch.nn.Module, audio: np.ndarray, *, duration: float, device: str,
                   batch: int, repeat: int) -> float:
    """Seconds of audio per second of the exact path (windows of ``duration``, step 0.1)."""
    net = inference_model(model, device)
    window = int(round(duration * 16000))
    hop = int(round(0.1 * window))
    signal = ArraySignal(audio)
    starts = window_starts(signal.n_samples, window, hop)
    embed_exact(net, ArraySignal(audio[: 8 * window]), window_starts(8 * window, window, hop), window, batch=batch)
    best = float("inf")
    for _ in range(repeat):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        began = time.perf_counter()
        embed_exact(net, signal, starts, window, batch=batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - began)
    return signal.n_samples / 16000 / best


def measure(name: str, text: str, audio: np.ndarray, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    config = parse_config(text, name)
    torch.manual_seed(0)
    model = build_model(config)
    row: dict[str, Any] = {"network": name, "parameters": sum(p.numel() for p in model.parameters()),
                           "architecture": config.architecture.name}
    row["model_chunks_per_s"] = round(model_chunks_per_s(config, device=args.device, speakers=args.speakers,
                                                         seconds=args.seconds), 1)
    folder = work / name
    folder.mkdir()
    row["loop_chunks_per_s"] = round(loop_chunks_per_s(text, args.database, device=args.device,
                                                       workers=args.parallel, batches=args.loop_batches,
                                                       work=folder, protocol=args.protocol), 1)
    row["extraction_rtf"] = round(extraction_rtf(model, audio, duration=config.task.duration, device=args.device,
                                                 batch=args.batch, repeat=args.repeat), 1)
    print(f"{name}: {row['parameters']:,} parameters; model step {row['model_chunks_per_s']:,.1f} chunks/s, "
          f"whole loop {row['loop_chunks_per_s']:,.1f} chunks/s; exact extraction "
          f"{row['extraction_rtf']:,.1f}x real time", flush=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = ["| network | parameters | model step chunks/s (× SincTDNN) | whole loop chunks/s (× SincTDNN) "
             "| exact extraction × real time (× SincTDNN) |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = [f"{r[k]:,.1f} ({r[k] / base[k]:.2f}×)" for k in ("model_chunks_per_s", "loop_chunks_per_s",
                                                                     "extraction_rtf")]
        lines.append(f"| {r['network']} | {r['parameters']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=("recipe", "template"), default="recipe",
                        help="the fbank networks at the VoxCeleb2 recipe's sizes or the templates' CPU sizes")
    parser.add_argument("--baseline", default=None, help=f"SincTDNN's {CONFIG} (default: the tutorial's)")
    parser.add_argument("--per-fold", type=int, default=256)
    parser.add_argument("--per-label", type=int, default=1)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--speakers", type=int, default=5994, help="classes of the model step (default: 5994)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds of the model step")
    parser.add_argument("--database", required=True, help="database.yml of --protocol (several joined by ';')")
    parser.add_argument("--protocol", required=True, help="protocol the whole loop trains on")
    parser.add_argument("--parallel", type=int, default=2, help="loader workers of the whole loop")
    parser.add_argument("--loop-batches", type=int, default=40)
    parser.add_argument("--data", required=True, help="demo corpus folder (its meetings are extracted)")
    parser.add_argument("--extract-seconds", type=float, default=600.0)
    parser.add_argument("--batch", type=int, default=1024, help="windows per extraction batch")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu_backbones.json"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    meeting = next(iter(load_protocol(MEETINGS, str(Path(args.data) / "database.yml")).test()))
    audio = np.resize(read_file(meeting["audio"], 16000), int(args.extract_seconds * 16000))
    result: dict[str, Any] = {"machine": machine(), "device": args.device, "size": args.size,
                              "batch": {"per_fold": args.per_fold, "per_label": args.per_label,
                                        "duration": args.duration},
                              "protocol": args.protocol, "loop_batches": args.loop_batches,
                              "loop_parallel": args.parallel, "extract_seconds": args.extract_seconds,
                              "extract_batch": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, text, audio, Path(tmp), args) for name, text in configs(args).items()]
    result["networks"] = rows
    result["table"] = table(rows)
    print(result["table"])
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
