"""Does training help? EER of the demo config per epoch, from the untrained network (epoch 0) on.

Makes a demo workspace (a temporary one unless --workspace names one), trains the demo config
for --epochs epochs with ``spkemb-engine train``, validates every checkpoint with
``spkemb-engine validate --chronological`` on the held-out test speakers, prints one line per
epoch and the ratio trained / untrained EER, and writes bench/results/demo_eer.json.

    .venv/bin/python bench/demo_eer.py [--epochs 10] [--workspace DIR] [--parallel 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine_commands import engine
from results_io import write_results

from engine.layout import ExperimentDir
from engine.store import open_store

PROTOCOL = "Demo.SpeakerVerification.Voices"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workspace", default=None, help="demo workspace (default: a temporary one)")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "demo_eer.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(args.workspace or Path(tmp) / "ws").resolve()
        engine("demo-workspace", str(ws), cwd=ROOT)
        common = ["--db", "runs.db", "--database", "data/database.yml"]
        began = time.perf_counter()
        engine("train", *common, "--to", str(args.epochs), "--parallel", str(args.parallel), ".", PROTOCOL, cwd=ws)
        train_s = time.perf_counter() - began
        trn_dir = ExperimentDir(ws).training(PROTOCOL, "train").root
        engine("validate", *common, "--chronological", str(trn_dir), PROTOCOL, cwd=ws)
        store = open_store(ws / "runs.db", readonly=True)
        (run,) = store.runs(kind="validate")
        rows = sorted(store.validations(run["id"]), key=lambda r: r["epoch"])
    for r in rows:
        print(f"epoch {r['epoch']:3d}  EER {100 * r['eer']:5.1f} %  "
              f"[95 % CI {100 * r['eer_low']:.1f}, {100 * r['eer_high']:.1f}]  minDCF(0.01) {r['mindcf_01']:.3f}")
    untrained, best = rows[0], min(rows, key=lambda r: r["eer"])
    print(f"untrained EER {100 * untrained['eer']:.1f} %, best {100 * best['eer']:.1f} % at epoch "
          f"{best['epoch']} ({best['eer'] / untrained['eer']:.2f} of untrained); training took {train_s:.0f} s")
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
              "epochs": args.epochs, "train_seconds": round(train_s, 1), "n_trials": rows[0]["n_trials"],
              "per_epoch": [{k: r[k] for k in ("epoch", "eer", "eer_low", "eer_high", "mindcf_01", "mindcf_005")}
                            for r in rows],
              "untrained_eer": untrained["eer"], "best_eer": best["eer"], "best_epoch": best["epoch"]}
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
