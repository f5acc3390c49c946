"""Does the modern recipe help? The demo config's tutorial-style recipe vs the full recipe, same budget.

Both train the demo network on the demo corpus (a demo workspace, temporary unless --workspace names
one) for the same number of epochs (same steps, same batch) with the same seed:

- tutorial: the demo config as it is (constant learning rate 0.01, fixed margin 0.05, AddNoise);
- full: ExponentialDecrease with a one-epoch warm-up (initial_lr 0.05 -> final_lr 0.0005, about the same
  mean learning rate as the constant 0.01 over the run), the margin ramped from 0 to 0.2 (WeSpeaker's
  final margin) between epochs 2 and 4, SpeedPerturb [0.9, 1.0, 1.1] before the same AddNoise.

Every epoch is validated on the development trials; the best epoch (lowest development EER) and the
averages (``average --top K`` by development EER, ``average --last N``) are then scored on the
held-out test trials, raw and after AS-norm. Selecting on development keeps the test figures
unbiased; the test figures of every epoch are reported too. Writes bench/results/recipe_eer.json.

    .venv/bin/python bench/recipe_eer.py [--epochs 6] [--workspace DIR] [--top 3] [--last 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine_commands import checkout_env
from results_io import write_results

from engine.config import template_text
from engine.layout import ExperimentDir, TrainingDir
from engine.store import open_store

PROTOCOL = "Demo.SpeakerVerification.Voices"
FIGURES = ("eer", "eer_low", "eer_high", "mindcf_01", "eer_asnorm", "eer_asnorm_low", "eer_asnorm_high",
           "mindcf_01_asnorm")


def full_recipe(demo: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The demo config with the recipe's schedules and speed perturbation (network and batch unchanged)."""
    cfg = json.loads(json.dumps(demo))
    cfg["data_augmentation"] = [{"name": "SpeedPerturb", "params": {"factors": [0.9, 1.0, 1.1]}},
                                cfg["data_augmentation"]]
    # WeSpeaker ramps over epochs 20-40 of 150; over a short run: from epoch 2 to 2/3 of the run
    cfg["task"]["params"]["margin"] = 0.2
    cfg["task"]["params"]["margin_scheduler"] = {"increase_start_epoch": 2,
                                                 "fix_start_epoch": max(3, round(2 * epochs / 3)),
                                                 "increase_type": "exp"}
    cfg["scheduler"] = {"name": "ExponentialDecrease",
                        "params": {"initial_lr": 0.05, "final_lr": 0.0005, "warm_up_epoch": 1}}
    return cfg


class Bench:
    """One workspace, one runs database, the engine run as a subprocess from the workspace."""

    def __init__(self, ws: Path, args: argparse.Namespace) -> None:
        self.ws, self.args = ws, args
        self.root = ws / "recipe_eer"  # owned by this script: emptied at start
        self.db = self.root / "runs.db"

    def engine(self, *argv: str) -> None:
        common = ["--db", str(self.db)]
        if argv[0] in ("train", "validate"):
            common += ["--database", "data/database.yml"]
        done = subprocess.run([sys.executable, "-m", "engine", argv[0], *common, *argv[1:]], cwd=self.ws,
                              text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=checkout_env())
        if done.returncode != 0:
            raise SystemExit(f"spkemb-engine {' '.join(argv)} failed:\n{done.stderr[-2000:]}")

    def run_recipe(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        a = self.args
        exp = ExperimentDir(self.root / name)
        exp.root.mkdir(parents=True)
        exp.config.write_text(yaml.safe_dump(config, sort_keys=False))
        began = time.perf_counter()
        self.engine("train", "--to", str(a.epochs), "--seed", str(a.seed), "--parallel", str(a.parallel),
                    "--log-every", "0", str(exp.root), PROTOCOL)
        train_s = time.perf_counter() - began
        trn = exp.training(PROTOCOL, "train")
        self.engine("validate", "--subset", "development", "--from", "1", str(trn.root), PROTOCOL)
        self.engine("average", "--top", str(a.top), str(trn.validation(PROTOCOL, "development").root))
        self.engine("average", "--last", str(a.last), str(trn.root))
        began = time.perf_counter()
        self.engine("validate", "--subset", "test", "--from", "1", "--score-norm", "asnorm",
                    "--cohort-size", str(a.cohort_size), "--cohort-files", str(a.cohort_files),
                    str(trn.root), PROTOCOL)
        return self.summary(trn, train_s, time.perf_counter() - began)

    def summary(self, trn: TrainingDir, train_s: float, test_s: float) -> dict[str, Any]:
        with open_store(self.db, readonly=True) as store:
            (train,) = store.find_runs(kind="train", out_dir=trn.root)
            dev, test = (store.find_runs(kind="validate", out_dir=trn.validation(PROTOCOL, subset).root)[0]
                         for subset in ("development", "test"))
            dev_rows = store.validations(dev["id"])
            test_rows = store.validations(test["id"])
            averaged = {c["name"]: json.loads(c["averaged"]) for c in store.checkpoints(train["id"]) if c["name"]}
        epochs = {r["epoch"]: r for r in test_rows if not r["checkpoint_name"]}
        best_dev = min((r for r in dev_rows if not r["checkpoint_name"]), key=lambda r: (r["eer"], r["epoch"]))
        oracle = min(epochs.values(), key=lambda r: (r["eer"], r["epoch"]))
        names = {r["checkpoint_name"]: r for r in test_rows if r["checkpoint_name"]}

        def figures(row: dict[str, Any]) -> dict[str, Any]:
            return {k: row[k] for k in FIGURES}
        return {
            "train_seconds": round(train_s, 1), "test_validation_seconds": round(test_s, 1),
            "steps": train["step"], "n_trials": best_dev["n_trials"], "cohort_size": test_rows[0]["cohort_size"],
            "best_epoch": {"epoch": best_dev["epoch"], "dev_eer": best_dev["eer"],
                           **figures(epochs[best_dev["epoch"]])},
            "averages": {name: {"epochs": averaged[name], **figures(row)} for name, row in sorted(names.items())},
            "oracle_best_test_epoch": {"epoch": oracle["epoch"], **figures(oracle)},
            "per_epoch_test": [{"epoch": e, "dev_eer": next(r["eer"] for r in dev_rows if r["epoch"] == e
                                                            and not r["checkpoint_name"]), **figures(r)}
                               for e, r in sorted(epochs.items())],
        }


def pct(row: dict[str, Any], key: str) -> str:
    return f"{100 * row[key]:5.1f} % [{100 * row[key + '_low']:.1f}, {100 * row[key + '_high']:.1f}]"


def report(results: dict[str, dict[str, Any]]) -> None:
    print(f"{'recipe':10s} {'checkpoint':22s} {'EER raw [95 % CI]':26s} {'EER AS-norm [95 % CI]':26s}")
    for name, r in results.items():
        best = r["best_epoch"]
        lines = [(f"epoch {best['epoch']} (best dev)", best)] + list(r["averages"].items())
        for label, row in lines:
            print(f"{name:10s} {label:22s} {pct(row, 'eer'):26s} {pct(row, 'eer_asnorm'):26s}")
        print(f"{name:10s} {r['steps']} steps, training {r['train_seconds']:.0f} s")


def machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "load_average_1min_at_start": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--workspace", default=None, help="demo workspace (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parallel", type=int, default=0, help="data loader processes (default: 0)")
    parser.add_argument("--top", type=int, default=3, help="average --top K (by development EER)")
    parser.add_argument("--last", type=int, default=3, help="average --last N")
    parser.add_argument("--cohort-size", type=int, default=20, help="AS-norm cohort (of 40 training speakers)")
    parser.add_argument("--cohort-files", type=int, default=1)
    parser.add_argument("--per-epoch", type=float, default=None,
                        help="days of audio per epoch for both recipes (default: the demo config's 0.02)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "recipe_eer.json"))
    args = parser.parse_args(argv)
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(args.workspace or Path(tmp) / "ws").resolve()
        subprocess.run([sys.executable, "-m", "engine", "demo-workspace", str(ws)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=checkout_env())
        bench = Bench(ws, args)
        shutil.rmtree(bench.root, ignore_errors=True)
        bench.root.mkdir()
        demo = yaml.safe_load(template_text("demo"))
        if args.per_epoch:  # a smaller budget for both (a quick check of this script)
            demo["task"]["params"]["per_epoch"] = args.per_epoch
        configs = {"tutorial": demo, "full": full_recipe(demo, args.epochs)}
        results = {name: bench.run_recipe(name, cfg) for name, cfg in configs.items()}
    report(results)
    result = {"machine": info, "epochs": args.epochs, "seed": args.seed, "batch": 32,
              "selection": "best epoch and average --top by development EER; figures on the test trials",
              "top": args.top, "last": args.last, "configs": configs, "results": results}
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
