"""Reading what runs leave on disk, checked line by line: an event file (``import``, validate's
watch of an event file) and a score file (validate reading back scored epochs, ``pick``, DET).

Writes an event file of a long run (``--steps`` step rows in batches of 100) and a score file of
``--trials`` trials (VoxCeleb1-H has 550,894), then times this checkout's readers and, with
``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/base REV``), that checkout's on
the same files in the same run: the best of three, each in a process of its own. Prints one line per
reader and writes bench/results/file_reads.json.

    .venv/bin/python bench/file_reads.py [--steps 200000] [--trials 580000] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_io import against, write_results

from engine.layout import EVENTS
from engine.records import EpochSummary
from engine.store import EventWriter

_TIMER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from engine.store.importing import read_events
from engine.validation.score_files import read_scores
read = read_events if sys.argv[2] == "events" else read_scores
times = []
for _ in range(3):
    began = time.perf_counter()
    read(sys.argv[3])
    times.append(time.perf_counter() - began)
print(min(times))
"""


def write_event_file(path: Path, steps: int) -> None:
    with EventWriter(path) as writer:
        run = writer.create_run(kind="train", exp_dir=str(path.parent), out_dir=str(path.parent), protocol="P",
                                subset="train", config=None, command=["train"], device="cpu")
        for first in range(0, steps, 100):
            writer.add_steps(run, [{"step": s, "epoch": 1 + s // 5000, "loss": 1.0 / (s + 1), "lr": 0.01}
                                   for s in range(first, min(first + 100, steps))])
            if (first + 100) % 5000 == 0:
                writer.add_epoch(run, EpochSummary(epoch=(first + 100) // 5000, loss=0.5, lr=0.01,
                                                   chunks_per_s=100.0, seconds=60.0))


def write_score_file(path: Path, trials: int) -> None:
    rng = random.Random(0)
    path.write_text("".join(f"{rng.randint(0, 1)} {rng.uniform(-1, 1):.6f} id{i:05d}/a.wav id{i:05d}/b.wav\n"
                            for i in range(trials)))


def best_seconds(checkout: Path, kind: str, path: Path) -> float:
    done = subprocess.run([sys.executable, "-c", _TIMER, str(checkout), kind, str(path)], capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(checkout)})
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--trials", type=int, default=580_000)
    parser.add_argument("--baseline", default=None, help="another checkout to time on the same files")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "file_reads.json"))
    args = parser.parse_args(argv)
    result: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                    "steps": args.steps, "trials": args.trials}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"events": Path(tmp) / EVENTS, "scores": Path(tmp) / "scores.txt"}
        write_event_file(files["events"], args.steps)
        write_score_file(files["scores"], args.trials)
        for kind, path in files.items():
            baseline = Path(args.baseline).resolve() if args.baseline else None
            row, said = against(best_seconds(ROOT, kind, path),
                                (lambda b=baseline, k=kind, p=path: best_seconds(b, k, p)) if baseline else None)
            result[kind] = {"bytes": path.stat().st_size, **row}
            print(f"{kind}: {path.stat().st_size / 2**20:.1f} MiB in {said}")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
