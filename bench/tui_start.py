"""Time to the first painted runs screen, and of one live refresh, on a large runs database.

A database of 1,000 runs (10 of them running) and 1,000,000 training-step rows is written
once through the store's schema; then the TUI is started headless (Textual's ``run_test``)
until the runs table holds every run, then five live refreshes are timed, each after the ten
running runs have written a batch of steps, as training does. Goals: < 0.5 s and < 50 ms.
Also measured: the first paint from a fresh interpreter (imports included), and the read of one
refresh's changes against a read of every run, in the same run.
Prints one summary line and writes bench/results/tui_start.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.store import open_store

RUNS, STEPS_PER_RUN, RUNNING = 1000, 1000, 10
STARTS = 5


def build(path: Path) -> None:
    """Fill the database with direct executemany into the store's tables (fast to build)."""
    with open_store(path) as store:
        conn = store.db.conn
        now = time.time()
        conn.execute("BEGIN")
        runs = []
        for i in range(1, RUNS + 1):
            status = "running" if i > RUNS - RUNNING else "completed"
            runs.append((i, f"run-{i}", "train", status, f"/exp/{i}", f"/exp/{i}/train/P.train", "P", "train",
                         "{}", "[]", "localhost", os.getpid(), None, "cpu", now - 3600, None, now, 10, 10,
                         STEPS_PER_RUN - 1))
        conn.executemany("INSERT INTO runs (id, name, kind, status, exp_dir, out_dir, protocol, subset, config, "
                         "command, host, pid, pid_start, device, started_at, ended_at, heartbeat_at, epoch, "
                         "target_epoch, step) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
        conn.executemany("INSERT INTO train_steps (run_id, step, epoch, loss, lr, chunks_per_s, time) "
                         "VALUES (?,?,?,?,?,?,?)",
                         ((r, s, s // 100, 10.0 / (1 + s), 0.01, 100.0, now) for r in range(1, RUNS + 1)
                          for s in range(STEPS_PER_RUN)))
        conn.executemany("INSERT INTO train_epochs (run_id, epoch, loss, lr, chunks_per_s, seconds, time) "
                         "VALUES (?,?,?,?,?,?,?)",
                         ((r, e, 1.0 / e, 0.01, 100.0, 60.0, now) for r in range(1, RUNS + 1) for e in range(1, 11)))
        conn.execute("COMMIT")


def train(path: Path) -> None:
    """One logging interval of every running run: a batch of steps each, as training writes them."""
    with open_store(path) as store:
        for run in store.runs(status="running"):
            step = (run["step"] or 0) + 1
            store.add_steps(run["id"], [{"step": step + i, "epoch": 10, "loss": 0.5, "lr": 0.01,
                                         "chunks_per_s": 100.0} for i in range(10)])


async def measure(path: Path) -> dict[str, float]:
    from app.app import make_app
    from app.widgets.runs_table import RunsTable

    start = time.perf_counter()
    app = make_app(path.parent, db=path, refresh_interval=3600)
    async with app.run_test(size=(120, 36)):
        table = None
        while table is None or table.first_paint_at is None:
            await asyncio.sleep(0.005)  # not pilot.pause(): see the refresh loop below
            table = app.screen.query_one(RunsTable) if app.screen.query(RunsTable) else None
        first_paint = table.first_paint_at - start
        while table.row_count < RUNS:
            await asyncio.sleep(0.005)
        all_rows = time.perf_counter() - start
        screen = app.screen
        refreshes = []
        for _ in range(5):
            train(path)  # what the live runs wrote since the last refresh: not timed
            shown = screen.shown
            t0 = time.perf_counter()
            screen.refresh_runs()
            # a plain sleep: pilot.pause() would itself keep the event loop busy and hold the
            # GIL that the refresh worker thread needs, which an idle terminal does not
            while screen.shown == shown:
                await asyncio.sleep(0.001)
            refreshes.append(time.perf_counter() - t0)
    return {"first_paint_s": first_paint, "all_rows_s": all_rows, "refresh_s": sorted(refreshes)[len(refreshes) // 2]}


async def first_paint_wall_time(path: Path) -> float:
    """Start the app and return the wall-clock time of its first painted runs screen."""
    from app.app import make_app
    from app.widgets.runs_table import RunsTable

    app = make_app(path.parent, db=path, refresh_interval=3600)
    async with app.run_test(size=(120, 36)):
        while not app.screen.query(RunsTable) or app.screen.query_one(RunsTable).first_paint_at is None:
            await asyncio.sleep(0.005)
        return time.time() - (time.perf_counter() - app.screen.query_one(RunsTable).first_paint_at)


def cold_start(path: Path) -> float:
    """Seconds from spawning a fresh interpreter to its first painted runs screen (imports included)."""
    start = time.time()
    out = subprocess.run([sys.executable, __file__, "--first-paint", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1]) - start


def reads(path: Path, times: int = 10) -> dict[str, float]:
    """Median seconds of reading every run (the first refresh) and of reading the changes of one
    logging interval (each later refresh), measured in the same run."""
    from app.data.reader import RunsFeed, read_runs

    full, changes = [], []
    feed = RunsFeed(path)
    feed.read()
    for _ in range(times):
        train(path)
        t0 = time.perf_counter()
        read_runs(path)
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        feed.read()
        changes.append(time.perf_counter() - t0)
    return {"full_read_s": statistics.median(full), "changes_read_s": statistics.median(changes)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.db"
        t = time.perf_counter()
        build(path)
        build_s = time.perf_counter() - t
        # the app is started STARTS times on the same file; the medians are reported
        trials = [asyncio.run(measure(path)) for _ in range(STARTS)]
        colds = [cold_start(path) for _ in range(STARTS)]
        read = reads(path)
    result = {key: statistics.median(t[key] for t in trials) for key in trials[0]}
    result["cold_first_paint_s"] = statistics.median(colds)
    result.update(read)
    result["read_speedup"] = read["full_read_s"] / read["changes_read_s"]
    result["trials"] = trials
    result["cold_trials"] = colds
    result.update({"runs": RUNS, "step_rows": RUNS * STEPS_PER_RUN, "build_s": build_s,
                   "goal_first_paint_s": 0.5, "goal_refresh_s": 0.05,
                   "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
                   "torch_imported": "torch" in sys.modules})
    out = Path(__file__).resolve().parent / "results" / "tui_start.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"tui_start (median of {STARTS} starts): first paint {result['first_paint_s'] * 1000:.0f} ms (goal 500), "
          f"{result['cold_first_paint_s'] * 1000:.0f} ms from a fresh interpreter, "
          f"all {RUNS} rows {result['all_rows_s'] * 1000:.0f} ms, "
          f"refresh {result['refresh_s'] * 1000:.1f} ms (goal 50); "
          f"read of one interval's changes {result['changes_read_s'] * 1000:.2f} ms vs every run "
          f"{result['full_read_s'] * 1000:.1f} ms ({result['read_speedup']:.0f}x); {RUNS} runs / "
          f"{RUNS * STEPS_PER_RUN:,} step rows, torch imported: {result['torch_imported']}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--first-paint"]:
        print(asyncio.run(first_paint_wall_time(Path(sys.argv[2]))))
    else:
        main()
