"""``spkemb-engine clean`` at a lab's size: a folder of ``--trials`` experiments (a sweep), each one
training run of ``--epochs`` epoch checkpoints (hard links of a small file) and one validation of
every epoch, recorded in one runs database (2 runs a trial, a validation row an epoch).

Times the listing of the whole folder (``spkemb-engine clean SWEEP_DIR``, which deletes nothing), the
best of three in a process of its own; ``bench/lab_lookups.py`` times the database lookups it makes
against a baseline checkout. Prints one line and writes bench/results/clean.json.

    .venv/bin/python bench/clean.py [--trials 1000] [--epochs 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_io import write_results

from engine.layout import ExperimentDir
from engine.records import ValidationResult
from engine.store import open_store

PROTOCOL = "Demo.SpeakerVerification.Voices"

_LISTING = """
import contextlib, io, sys, time
sys.path.insert(0, sys.argv[1])
from engine.cli import main
times = []
for _ in range(3):
    began = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["clean", "--db", sys.argv[2], sys.argv[3]]) == 0
    times.append(time.perf_counter() - began)
print(min(times))
"""


def make_sweep(root: Path, db: Path, trials: int, epochs: int) -> list[tuple[Path, int]]:
    """The sweep's folder (``root/sweep``) and database; each VAL_DIR with its training run's id."""
    vals = []
    with open_store(db) as store:
        for n in range(trials):
            exp = ExperimentDir(root / "sweep" / f"trial-{n:03d}")
            trn, val = exp.training(PROTOCOL, "train"), exp.training(PROTOCOL, "train").validation(PROTOCOL, "test")
            trn.weights.mkdir(parents=True)
            val.root.mkdir(parents=True)
            exp.config.write_text("{}\n")
            one = root / f"checkpoint-{n // 1000}.pt"  # a file takes at most 65,000 links (ext4)
            if not one.exists():
                one.write_bytes(b"x" * 4096)
            for e in range(epochs):
                os.link(one, trn.checkpoint(e))
            train = store.create_run(kind="train", exp_dir=exp.root, out_dir=trn.root, protocol=PROTOCOL,
                                     subset="train", config=None, command=["train"], device="cpu")
            validate = store.create_run(kind="validate", exp_dir=exp.root, out_dir=val.root, protocol=PROTOCOL,
                                        subset="test", config=None, command=["validate"], device="cpu",
                                        parent_id=train)
            for e in range(epochs):
                store.add_validation(validate, ValidationResult(epoch=e, eer=0.3 - 0.001 * ((e * 7 + n) % 50),
                                                                n_trials=100), train_run_id=train)
            vals.append((val.root, train))
    return vals


def best_seconds(script: str, checkout: Path, *args: str) -> float:
    done = subprocess.run([sys.executable, "-c", script, str(checkout), *args], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(checkout)})
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "clean.json"))
    args = parser.parse_args(argv)
    result: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                    "trials": args.trials, "epochs": args.epochs}
    with tempfile.TemporaryDirectory() as tmp:
        root, db = Path(tmp), Path(tmp) / "runs.db"
        began = time.perf_counter()
        make_sweep(root, db, args.trials, args.epochs)
        print(f"made {args.trials} trials x {args.epochs} epochs in {time.perf_counter() - began:.0f} s")
        listing = best_seconds(_LISTING, ROOT, str(db), str(root / "sweep"))
        result["listing_seconds"] = round(listing, 3)
        print(f"clean's listing of the {args.trials} trials ({args.trials * args.epochs} checkpoints): {listing:.2f} s")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
