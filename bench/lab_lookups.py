"""The runs database's lookups that grow with a lab's runs, against a baseline checkout in the same run.

Writes the sweep of ``bench/clean.py`` (``--trials`` experiments, each a training run and a validate
run of ``--epochs`` validated epochs: 2 runs a trial) and times, each the best of three in a process of
its own, with this checkout and, with ``--baseline DIR`` (another checkout, e.g. ``git worktree add
/tmp/base REV``), that checkout's on the same database:

- every VAL_DIR's validate runs (``engine.validation.selection.validate_runs``: what ``clean`` asks for
  each VAL_DIR, and ``pick``, ``average --top`` and validate's reuse once);
- Compare's read of three training runs (``app.data.reader.read_curves``: steps, validations and each
  run's validate runs, read again every second while Compare is open).

Prints one line each and writes bench/results/lab_lookups.json.

    .venv/bin/python bench/lab_lookups.py [--trials 1000] [--epochs 50] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clean import best_seconds, make_sweep
from results_io import against, write_results

_VAL_DIRS = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from engine.layout import ValidationDir
from engine.store import open_store
from engine.validation.selection import validate_runs
vals = [ValidationDir(Path(line)) for line in Path(sys.argv[3]).read_text().splitlines()]
times = []
with open_store(sys.argv[2], readonly=True) as store:
    for _ in range(3):
        began = time.perf_counter()
        for val in vals:
            validate_runs(store, val)
        times.append(time.perf_counter() - began)
print(min(times))
"""

_COMPARE = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from app.data.reader import read_curves
ids = [int(i) for i in sys.argv[3].split(",")]
times = []
for _ in range(3):
    began = time.perf_counter()
    curves = read_curves(Path(sys.argv[2]), ids)
    times.append(time.perf_counter() - began)
assert [len(c.validators) for c in curves] == [1] * len(ids)
print(min(times))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--baseline", default=None, help="another checkout to time on the same database")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lab_lookups.json"))
    args = parser.parse_args(argv)
    result: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                    "trials": args.trials, "epochs": args.epochs, "runs": 2 * args.trials}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        made = make_sweep(Path(tmp), db, args.trials, args.epochs)
        listed = Path(tmp) / "vals.txt"
        listed.write_text("".join(f"{val}\n" for val, _ in made))
        three = ",".join(str(train) for _, train in made[:3])
        for name, script, what in (("val_dirs", _VAL_DIRS, str(listed)), ("compare", _COMPARE, three)):
            baseline = Path(args.baseline).resolve() if args.baseline else None
            result[name], said = against(best_seconds(script, ROOT, str(db), what),
                                         (lambda s=script, w=what, b=baseline: best_seconds(s, b, str(db), w))
                                         if baseline else None)
            print(f"{name}: {said}")
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
