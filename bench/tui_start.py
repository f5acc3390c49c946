"""The TUI at a lab's size: start-up, the whole runs table, a live refresh, a long run's detail.

For each size of ``--runs`` (1,000 and 10,000 by default, in the same invocation), a database is
written once through the store's schema: that many runs (10 of them running), 1,000 training
step rows each (10,000,000 at 10,000 runs), and one more run with 1,000,000 step rows. Then the
TUI is started headless (Textual's ``run_test``) and timed, the median of ``--starts`` starts:

- first paint: the runs screen painted with rows (goal < 0.5 s);
- usable: every run in the table, then sorted by loss, filtered, and scrolled to the last row,
  each step painted (goal < 2 s from the start);
- live refresh: after the running runs wrote a batch of steps each, as training does (< 50 ms);
- detail: the run with 1,000,000 steps opened, its loss plot drawn (< 1 s);
- compare: that run and two others compared, their loss curves drawn (< 1 s); beside it, the
  compare read (``reader.read_curves``, 2,000 evenly spaced steps a run) against the read of every
  step that Compare made before (``Store.steps`` whole), time and Python memory (tracemalloc);
- config form: back on the runs screen, ``n`` pressed, until the new config's form is checked and
  painted (< 1 s);
- memory: the peak resident size of a fresh TUI process holding the whole table.

Prints one line per size and writes bench/results/tui_start.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_results

from engine.layout import ExperimentDir
from engine.store import open_store

STEPS_PER_RUN, RUNNING, LONG_RUN_STEPS = 1000, 10, 1_000_000
GOALS = {"first_paint_s": 0.5, "usable_s": 2.0, "refresh_s": 0.05, "detail_s": 1.0, "compare_s": 1.0,
         "config_form_s": 1.0}


def build(path: Path, runs: int) -> int:
    """Fill the database with direct executemany into the store's tables (fast to build); the id
    of the run with a million steps."""
    long_run = runs + 1
    with open_store(path) as store:
        conn = store.db.conn
        now = time.time()
        conn.execute("BEGIN")
        rows = []
        for i in range(1, long_run + 1):
            status = "running" if runs - RUNNING < i <= runs else "completed"
            steps = LONG_RUN_STEPS if i == long_run else STEPS_PER_RUN
            exp = ExperimentDir(Path(f"/exp/{i}"))
            trn_dir = exp.training("P", "train").root
            rows.append((i, f"run-{i}", "train", status, str(exp.root), str(trn_dir), "P", "train",
                         '{"architecture": {"name": "SincTDNN"}}', "[]", "localhost", os.getpid(), None, "cpu",
                         now - 3600, None, now, 10, 10, steps - 1))
        conn.executemany("INSERT INTO runs (id, name, kind, status, exp_dir, out_dir, protocol, subset, config, "
                         "command, host, pid, pid_start, device, started_at, ended_at, heartbeat_at, epoch, "
                         "target_epoch, step) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.executemany("INSERT INTO train_steps (run_id, step, epoch, loss, lr, chunks_per_s, time) "
                         "VALUES (?,?,?,?,?,?,?)",
                         ((r, s, s // 100, 10.0 / (1 + s) + r * 1e-5, 0.01, 100.0, now)
                          for r in range(1, runs + 1) for s in range(STEPS_PER_RUN)))
        conn.executemany("INSERT INTO train_steps (run_id, step, epoch, loss, lr, chunks_per_s, time) "
                         "VALUES (?,?,?,?,?,?,?)",
                         ((long_run, s, s // 100_000, 10.0 / (1 + s), 0.01, 100.0, now)
                          for s in range(LONG_RUN_STEPS)))
        conn.executemany("INSERT INTO train_epochs (run_id, epoch, loss, lr, chunks_per_s, seconds, time) "
                         "VALUES (?,?,?,?,?,?,?)",
                         ((r, e, 1.0 / e, 0.01, 100.0, 60.0, now) for r in range(1, long_run + 1)
                          for e in range(1, 11)))
        conn.execute("COMMIT")
    return long_run


def train(path: Path) -> None:
    """One logging interval of every running run: a batch of steps each, as training writes them."""
    with open_store(path) as store:
        for run in store.runs(status="running"):
            step = (run["step"] or 0) + 1
            store.add_steps(run["id"], [{"step": step + i, "epoch": 10, "loss": 0.5, "lr": 0.01,
                                         "chunks_per_s": 100.0} for i in range(10)])


async def until(predicate, timeout: float = 120.0) -> None:
    """Wait for ``predicate()`` with plain sleeps: pilot.pause() would itself keep the event loop
    busy and hold the GIL that the reader's worker thread needs, which an idle terminal does not."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the TUI did not get there")
        await asyncio.sleep(0.002)


async def painted(app) -> float:
    """perf_counter time once the screen has been painted with what was set before this call."""
    done: list[float] = []
    app.screen.call_after_refresh(lambda: done.append(time.perf_counter()))
    await until(lambda: bool(done))
    return done[0]


async def measure(path: Path, runs: int, long_run: int) -> dict[str, float]:
    from textual.widgets import Input

    from app.app import make_app
    from app.screens.compare import CompareScreen
    from app.screens.configs import ConfigsScreen
    from app.screens.host import reading
    from app.screens.run_detail import RunDetailScreen
    from app.widgets.plots import LossPlot
    from app.widgets.runs_table import RunsTable

    total = runs + 1
    start = time.perf_counter()
    app = make_app(path.parent, db=path, refresh_interval=3600)
    async with app.run_test(size=(120, 36)):
        await until(lambda: bool(app.screen.query(RunsTable))
                    and app.screen.query_one(RunsTable).first_paint_at is not None)
        table = app.screen.query_one(RunsTable)
        first_paint = table.first_paint_at - start  # type: ignore[operator]
        await until(lambda: table.row_count == total)
        all_rows = await painted(app) - start
        t0 = time.perf_counter()
        table.sort_by("loss")
        sort_s = await painted(app) - t0
        t0 = time.perf_counter()
        app.screen.query_one("#filter", Input).value = "run-9"
        await until(lambda: table.row_count < total)
        filter_s = await painted(app) - t0
        table.focus()
        await painted(app)
        t0 = time.perf_counter()
        app.simulate_key("end")  # as a terminal delivers it (pilot.press also waits for every worker)
        await until(lambda: table.cursor_row == table.row_count - 1)
        end_s = await painted(app) - t0
        usable = time.perf_counter() - start
        app.screen.query_one("#filter", Input).value = ""
        await until(lambda: table.row_count == total)
        screen = app.screen
        refreshes = []
        for _ in range(5):
            train(path)  # what the live runs wrote since the last refresh: not timed
            shown = screen.shown
            # the last read's thread ends a moment after it delivered: a refresh skips while it runs
            await until(lambda: not reading(screen._reading))
            t0 = time.perf_counter()
            screen.refresh_runs()
            await until(lambda shown=shown: screen.shown != shown)
            refreshes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        app.action_open_run(long_run)
        await until(lambda: isinstance(app.screen, RunDetailScreen) and bool(app.screen.steps)
                    and bool(app.screen.query_one(LossPlot).series))
        detail = await painted(app) - t0
        points = len(app.screen.steps)
        app.pop_screen()
        await painted(app)
        t0 = time.perf_counter()
        app.push_screen(CompareScreen([long_run, 1, 2]))
        await until(lambda: isinstance(app.screen, CompareScreen) and bool(app.screen.query(LossPlot))
                    and len(app.screen.query_one(LossPlot).series) == 3)
        compare = await painted(app) - t0
        app.pop_screen()
        await painted(app)
        t0 = time.perf_counter()
        app.simulate_key("n")
        await until(lambda: isinstance(app.screen, ConfigsScreen) and app.screen.data is not None)
        config_form = await painted(app) - t0
    return {"first_paint_s": first_paint, "all_rows_s": all_rows, "sort_s": sort_s, "filter_s": filter_s,
            "end_s": end_s, "usable_s": usable, "refresh_s": statistics.median(refreshes), "detail_s": detail,
            "detail_points": points, "compare_s": compare, "config_form_s": config_form}


async def hold_every_run(path: Path, runs: int) -> None:
    """Start the app and return once its table holds every run (for the memory figure)."""
    from app.app import make_app
    from app.widgets.runs_table import RunsTable

    app = make_app(path.parent, db=path, refresh_interval=3600)
    async with app.run_test(size=(120, 36)):
        await until(lambda: bool(app.screen.query(RunsTable)) and app.screen.query_one(RunsTable).row_count == runs)
        await painted(app)


def peak_memory_mb(path: Path, runs: int) -> float:
    """Peak resident size (MiB) of a fresh interpreter running the TUI until it holds every run."""
    out = subprocess.run([sys.executable, __file__, "--hold", str(path), str(runs + 1)], check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return float(out.split()[-1])


def compare_reads(path: Path, long_run: int) -> dict[str, float]:
    """Compare's read of three runs (one of a million steps) against the read of every step it made
    before: seconds and peak Python memory of each, one after the other in this process."""
    import tracemalloc

    from app.data import reader

    def timed(read) -> tuple[float, float]:
        tracemalloc.start()
        t0 = time.perf_counter()
        read()
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return seconds, peak

    def every_step() -> None:
        with open_store(path, readonly=True) as store:
            for run_id in (long_run, 1, 2):
                store.steps(run_id)

    before_s, before_mib = timed(every_step)
    now_s, now_mib = timed(lambda: reader.read_curves(path, [long_run, 1, 2]))
    return {"compare_read_s": now_s, "compare_read_mib": now_mib, "every_step_read_s": before_s,
            "every_step_read_mib": before_mib}


def one_size(runs: int, starts: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.db"
        t = time.perf_counter()
        long_run = build(path, runs)
        build_s = time.perf_counter() - t
        trials = [asyncio.run(measure(path, runs, long_run)) for _ in range(starts)]
        memory = peak_memory_mb(path, runs)
        reads = compare_reads(path, long_run)
    result: dict = {key: statistics.median(t[key] for t in trials) for key in trials[0]}
    result.update(reads)
    result.update({"runs": runs + 1, "step_rows": runs * STEPS_PER_RUN + LONG_RUN_STEPS, "build_s": build_s,
                   "peak_rss_mib": memory, "trials": trials})
    met = [k for k, goal in GOALS.items() if result[k] < goal]
    print(f"tui_start {runs + 1:,} runs / {result['step_rows']:,} step rows (median of {starts}): "
          f"first paint {result['first_paint_s'] * 1000:.0f} ms, every row {result['all_rows_s'] * 1000:.0f} ms, "
          f"sort {result['sort_s'] * 1000:.0f} ms, filter {result['filter_s'] * 1000:.0f} ms, "
          f"end {result['end_s'] * 1000:.0f} ms, usable at {result['usable_s'] * 1000:.0f} ms, "
          f"refresh {result['refresh_s'] * 1000:.1f} ms, detail of 1M steps {result['detail_s'] * 1000:.0f} ms, "
          f"compare with it {result['compare_s'] * 1000:.0f} ms (its read {reads['compare_read_s']:.2f} s, "
          f"{reads['compare_read_mib']:.0f} MiB, against every step {reads['every_step_read_s']:.2f} s, "
          f"{reads['every_step_read_mib']:.0f} MiB), config form {result['config_form_s'] * 1000:.0f} ms, "
          f"peak RSS {memory:.0f} MiB; goals met: {', '.join(met) or 'none'}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="1000,10000", help="comma-separated numbers of runs (default 1000,10000)")
    parser.add_argument("--starts", type=int, default=3, help="TUI starts per size, the median reported (3)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "tui_start.json"))
    args = parser.parse_args()
    sizes = {str(n): one_size(int(n), args.starts) for n in args.runs.split(",")}
    load = os.getloadavg()
    write_results(args.out, {
        "sizes": sizes, "goals": GOALS,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}",
        "load_average": load, "torch_imported": "torch" in sys.modules})


if __name__ == "__main__":
    if sys.argv[1:2] == ["--hold"]:
        asyncio.run(hold_every_run(Path(sys.argv[2]), int(sys.argv[3])))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    else:
        main()
