"""Backbones side by side: ResNet34, ECAPA_TDNN and CAMPPlus on fbank beside SincTDNN, one run.

Default (the demo corpus, any machine): a demo workspace (a temporary one unless --workspace
names one); each network's packaged CPU-sized template (SincTDNN: demo.yml), every epoch
--per-epoch long, trained by ``spkemb-engine train`` with the same seed for the same wall-clock
budget (--seconds from launch, then SIGTERM: the completed epochs count); then ``validate
--chronological`` of up to --validations evenly spaced epochs (the last one among them) on the
demo's test trials (best epoch = lowest EER on those same trials, for every network alike:
optimistic, but the same for all) and ``apply`` of the best epoch to the demo meetings'
--apply-subset (default: development, one 2.2-minute meeting; exact path, step 0.1). Per
network: parameters (``model-summary``), training chunks/s (the epochs' rows; the first
network's, SincTDNN's, is the baseline ratio), best-epoch EER with its 95 % interval, extraction
real-time factor (the extraction's row), and the load average before and after its training.
Writes bench/results/backbones.json and prints a Markdown table.

The GPU half (training chunks/s and extraction real-time factor at the VoxCeleb2 recipe's sizes)
is bench/backbones_throughput.py, run by bench/gpu.sh.

    .venv/bin/python bench/backbones.py [--seconds 240] [--parallel 1] [--workspace DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine_commands import checkout_env, engine
from results_io import write_results

from engine.config import template_text
from engine.layout import ExperimentDir
from engine.store import open_store

PROTOCOL = "Demo.SpeakerVerification.Voices"
MEETINGS = "Demo.SpeakerDiarization.Meetings"
#: network name -> its packaged template; SincTDNN first: the baseline of every ratio
NETWORKS = {"SincTDNN": "demo", "ResNet34": "resnet34", "ECAPA_TDNN": "ecapa_tdnn", "CAMPPlus": "campplus"}
def machine() -> dict[str, Any]:
    """What the numbers were measured on (the load average: the development VM is shared)."""
    import torch

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def parameters(config: Path, cwd: Path) -> int:
    """``model-summary``'s last word on the network."""
    found = re.search(r"^parameters: ([0-9,]+)", engine("model-summary", str(config), cwd=cwd), re.M)
    if found is None:
        raise SystemExit(f"model-summary of {config} printed no `parameters: N`")
    return int(found[1].replace(",", ""))


def train_for(seconds: float, exp: Path, common: list[str], *, seed: int, parallel: int, device: str,
              cwd: Path) -> float:
    """``spkemb-engine train`` stopped by SIGTERM ``seconds`` after its launch; its wall time."""
    argv = [sys.executable, "-m", "engine", "train", *common, "--to", "100000", "--seed", str(seed),
            "--parallel", str(parallel), "--device", device, str(exp), PROTOCOL]
    began = time.monotonic()
    # its own process group: the loader workers too
    child = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, env=checkout_env())
    try:
        child.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGTERM)  # a stop request: training checkpoints and exits
    try:
        _, err = child.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        raise SystemExit(f"train of {exp} did not stop within 300 s of SIGTERM") from None
    if child.returncode not in (0, 130, -signal.SIGTERM):
        raise SystemExit(f"train of {exp} failed ({child.returncode}):\n{err[-2000:]}")
    return time.monotonic() - began


def demo_network(name: str, template: str, ws: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train, validate and apply one network in the demo workspace; its row of the table."""
    exp = ws / "backbones" / name
    exp.mkdir(parents=True, exist_ok=True)
    text, n = re.subn(r"^(\s*per_epoch:\s*)[0-9.e-]+", rf"\g<1>{args.per_epoch}", template_text(template), flags=re.M)
    if n != 1:
        raise SystemExit(f"bench/backbones.py: no `per_epoch:` in the {template} template")
    ExperimentDir(exp).config.write_text(text)
    common = ["--db", "runs.db", "--database", "data/database.yml"]
    row: dict[str, Any] = {"network": name, "template": template, "parameters": parameters(exp, ws)}
    load_before = os.getloadavg()[0]
    row["train_wall_seconds"] = round(train_for(args.seconds, exp, common, seed=args.seed,
                                                parallel=args.parallel, device=args.device, cwd=ws), 1)
    row["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    trn_dir = ExperimentDir(exp).training(PROTOCOL, "train")
    store = open_store(ws / "runs.db", readonly=True)
    (train_run,) = store.find_runs(out_dir=trn_dir.root, kind="train")
    epochs = store.epochs(train_run["id"])
    row["epochs"] = len(epochs)
    if not epochs:
        print(f"{name}: no epoch completed in {args.seconds:g} s", flush=True)
        return row
    seconds = sum(e["seconds"] for e in epochs)
    row["chunks_per_s"] = round(sum(e["chunks_per_s"] * e["seconds"] for e in epochs) / seconds, 1)
    last = max(e["epoch"] for e in epochs)
    every = max(1, -(-last // max(1, args.validations - 1)))  # at most --validations epochs, the last one in
    engine("validate", *common, "--chronological", "--from", str(last % every), "--every", str(every),
           "--to", str(last), "--device", args.device, str(trn_dir.root), PROTOCOL, cwd=ws)
    (val_run,) = store.find_runs(out_dir=trn_dir.validation(PROTOCOL, "test").root, kind="validate")
    best = min(store.validations(val_run["id"]), key=lambda r: (r["eer"], r["epoch"]))
    row.update(best_epoch=best["epoch"], eer=best["eer"], eer_low=best["eer_low"], eer_high=best["eer_high"],
               n_trials=best["n_trials"])
    val_dir = trn_dir.validation(PROTOCOL, "test").root
    engine("apply", *common, "--subset", args.apply_subset, "--device", args.device, str(val_dir), MEETINGS, cwd=ws)
    (apply_run,) = store.find_runs(exp_dir=exp, kind="apply")
    (extraction,) = store.extractions(apply_run["id"])
    row["extraction"] = {k: extraction[k] for k in ("mode", "files", "audio_seconds", "wall_seconds")}
    row["real_time_factor"] = round(extraction["audio_seconds"] / extraction["wall_seconds"], 1)
    print(f"{name}: {row['parameters']:,} parameters, {row['epochs']} epochs, {row['chunks_per_s']:,.1f} "
          f"chunks/s, best epoch {best['epoch']} EER {100 * best['eer']:.1f} % "
          f"[{100 * best['eer_low']:.1f}, {100 * best['eer_high']:.1f}], "
          f"{row['real_time_factor']:,.1f}x real time", flush=True)
    return row


def demo_table(rows: list[dict[str, Any]], seconds: float) -> str:
    base = rows[0].get("chunks_per_s")
    lines = [f"| network (CPU-sized template) | parameters | epochs in {seconds:g} s | training chunks/s "
             f"(× {rows[0]['network']}) | best-epoch EER [95 % CI] | extraction × real time |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "chunks_per_s" not in r:
            lines.append(f"| {r['network']} ({r['template']}.yml) | {r['parameters']:,} | 0 | — | — | — |")
            continue
        ratio = f" ({r['chunks_per_s'] / base:.2f}×)" if base else ""
        lines.append(f"| {r['network']} ({r['template']}.yml) | {r['parameters']:,} | {r['epochs']} | "
                     f"{r['chunks_per_s']:,.1f}{ratio} | {100 * r['eer']:.1f} % [{100 * r['eer_low']:.1f}, "
                     f"{100 * r['eer_high']:.1f}] (epoch {r['best_epoch']}) | {r['real_time_factor']:,.1f}× |")
    return "\n".join(lines)


def demo_main(args: argparse.Namespace) -> int:
    result: dict[str, Any] = {"machine": machine(), "seconds": args.seconds, "per_epoch": args.per_epoch,
                              "validations": args.validations,
                              "apply_subset": args.apply_subset,
                              "seed": args.seed,
                              "parallel": args.parallel, "device": args.device, "protocol": PROTOCOL}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(args.workspace or Path(tmp) / "ws").resolve()
        engine("demo-workspace", str(ws), cwd=ROOT)
        rows = [demo_network(name, NETWORKS[name], ws, args) for name in args.networks.split(",")]
    result["networks"] = rows
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["table"] = demo_table(rows, args.seconds)
    print(result["table"])
    write_results(args.out, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0,
                        help="wall-clock training budget of each network, from its launch (default: 240)")
    parser.add_argument("--per-epoch", type=float, default=0.005,
                        help="epoch length of every network, in days of audio (default: 0.005, 9 batches of "
                             "32 chunks of 1.5 s), so that a short budget still ends several epochs")
    parser.add_argument("--validations", type=int, default=4,
                        help="epochs validated per network at most, evenly spaced, the last one among them "
                             "(default: 4; validation is slow on a loaded CPU)")
    parser.add_argument("--apply-subset", default="development",
                        help="demo meetings extracted for the real-time factor (default: development, 2.2 min; "
                             "test: 4.8 min)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every network (default: 0)")
    parser.add_argument("--parallel", type=int, default=1, help="loader workers of each training (default: 1)")
    parser.add_argument("--device", default="cpu", help="device of training, validation, apply (default: cpu)")
    parser.add_argument("--networks", default=",".join(NETWORKS),
                        help=f"networks to compare, the first is the baseline (default: {','.join(NETWORKS)})")
    parser.add_argument("--workspace", default=None, help="demo workspace (default: a temporary one)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "backbones.json"))
    args = parser.parse_args(argv)
    unknown = set(args.networks.split(",")) - set(NETWORKS)
    if unknown:
        parser.error(f"--networks: unknown {', '.join(sorted(unknown))}; choose among {', '.join(NETWORKS)}")
    return demo_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
