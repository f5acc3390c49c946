"""Runs-database throughput: 8 writer processes + 1 polling reader on one fresh file.

Each writer does what training does: create a run, then insert its metric rows in
batches (one short transaction per batch) and beat its heart; the reader polls
like the TUI (a short read every 0.2 s: the running runs, then each one's new
steps). Afterwards every row is counted: none may be lost, and no SQLITE_BUSY may
reach a caller. A single writer alone on a fresh file is the baseline of the same
run. Prints one summary line and writes bench/results/store.json.

    .venv/bin/python bench/store.py [--seconds 10] [--writers 8] [--batch 100]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.store import open_store

GOAL_ROWS_PER_S = 20_000
RESULTS = Path(__file__).resolve().parent / "results" / "store.json"


def writer(db: str, batch: int, start: mp.Event, stop_at: mp.Value, out: mp.Queue) -> None:
    """Insert batches of steps until ``stop_at``; report rows written per run and errors."""
    store = open_store(db)
    written: dict[int, int] = {}
    errors: list[str] = []
    run_id, step = None, 0
    start.wait()
    while time.time() < stop_at.value:
        try:
            if run_id is None or step >= 20_000:  # a new run now and then, as a sweep would
                run_id = store.create_run(kind="train", exp_dir="bench", out_dir=f"bench/{os.getpid()}",
                                          protocol="P", subset="train", config={"bench": True},
                                          command=["bench"], device="cpu")
                written[run_id], step = 0, 0
            rows = [{"step": step + i, "epoch": 0, "loss": 1.0 / (step + i + 1), "lr": 0.01,
                     "chunks_per_s": 100.0} for i in range(batch)]
            store.add_steps(run_id, rows)
            written[run_id] += batch
            step += batch
            if step % (10 * batch) == 0:
                store.heartbeat(run_id, step=step)
        except Exception as e:  # noqa: BLE001 - counted and reported: the benchmark's verdict
            errors.append(f"{type(e).__name__}: {e}")
    store.close()
    out.put({"written": written, "errors": errors})


def reader(db: str, start: mp.Event, stop_at: mp.Value, out: mp.Queue) -> None:
    """Poll like the TUI: every 0.2 s the run list, then the new steps of the selected run."""
    store = open_store(db, readonly=True)
    last: dict[int, int] = {}
    polls, rows, worst, errors = 0, 0, 0.0, []
    start.wait()
    while time.time() < stop_at.value:
        t0 = time.perf_counter()
        try:
            running = store.runs(status="running")
            if running:  # the plotted run: the newest one, as the TUI selects by default
                run_id = running[0]["id"]
                steps = store.steps(run_id, since_step=last.get(run_id, -1))
                if steps:
                    last[run_id] = steps[-1]["step"]
                rows += len(steps)
        except Exception as e:  # noqa: BLE001 - counted and reported, as in the writers
            errors.append(f"{type(e).__name__}: {e}")
        worst = max(worst, time.perf_counter() - t0)
        polls += 1
        time.sleep(0.2)
    store.close()
    out.put({"polls": polls, "rows": rows, "worst_poll_s": worst, "errors": errors})


def measure(writers: int, seconds: float, batch: int, with_reader: bool) -> dict:
    """One timed round on a fresh file; returns rows, rate, errors and the row audit."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="spkemb-bench-") as tmp:
        db = str(Path(tmp) / "runs.db")
        open_store(db).close()
        start, stop_at, out = ctx.Event(), ctx.Value("d", float("inf")), ctx.Queue()
        procs = [ctx.Process(target=writer, args=(db, batch, start, stop_at, out)) for _ in range(writers)]
        if with_reader:
            procs.append(ctx.Process(target=reader, args=(db, start, stop_at, out)))
        for p in procs:
            p.start()
        time.sleep(2.0 + 0.3 * len(procs))  # warm-up: interpreters started, stores open
        t0 = time.time()
        stop_at.value = t0 + seconds
        start.set()
        reports = [out.get(timeout=seconds + 120) for _ in procs]
        elapsed = time.time() - t0
        for p in procs:
            p.join()
        conn = sqlite3.connect(db)
        counted = dict(conn.execute("SELECT run_id, COUNT(*) FROM train_steps GROUP BY run_id").fetchall())
        conn.close()
    written: dict[int, int] = {}
    for r in reports:
        written.update({int(k): v for k, v in r.get("written", {}).items()})
    total = sum(written.values())
    return {
        "writers": writers, "seconds": round(elapsed, 2), "batch": batch, "rows": total,
        "rows_per_s": round(total / elapsed), "transactions_per_s": round(total / batch / elapsed),
        "runs": len(written),
        "rows_lost": sum(max(n - counted.get(run, 0), 0) for run, n in written.items()),
        "rows_unexpected": sum(counted.values()) - total,
        "errors": [e for r in reports for e in r["errors"]][:10],
        "error_count": sum(len(r["errors"]) for r in reports),
        "reader": next(({k: v for k, v in r.items() if k != "errors"}
                        for r in reports if "polls" in r), None),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds (default: 10)")
    parser.add_argument("--writers", type=int, default=8, help="writer processes (default: 8)")
    parser.add_argument("--batch", type=int, default=100, help="rows per transaction (default: 100)")
    parser.add_argument("--baseline-seconds", type=float, default=3.0,
                        help="seconds of the single-writer baseline (default: 3)")
    args = parser.parse_args()

    baseline = measure(1, args.baseline_seconds, args.batch, with_reader=False)
    result = measure(args.writers, args.seconds, args.batch, with_reader=True)
    ok = (result["rows_lost"] == 0 and result["rows_unexpected"] == 0 and result["error_count"] == 0
          and (result["reader"] or {}).get("polls", 0) > 0)
    met = result["rows_per_s"] >= GOAL_ROWS_PER_S
    summary = {
        "benchmark": "store", "ok": ok, "goal_rows_per_s": GOAL_ROWS_PER_S, "goal_met": met,
        "concurrent": result, "baseline_single_writer": baseline,
        "ratio_to_single_writer": round(result["rows_per_s"] / max(baseline["rows_per_s"], 1), 2),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "sqlite": sqlite3.sqlite_version},
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    reader_info = result["reader"] or {}
    print(f"store: {args.writers} writers + 1 reader, batches of {args.batch}, {result['seconds']} s: "
          f"{result['rows_per_s']:,} rows/s ({result['transactions_per_s']:,} txn/s; "
          f"{summary['ratio_to_single_writer']}x one writer alone at {baseline['rows_per_s']:,} rows/s) "
          f"goal >= {GOAL_ROWS_PER_S:,} rows/s: {'met' if met else 'NOT met'}; rows lost "
          f"{result['rows_lost']}, errors {result['error_count']}, reader polls {reader_info.get('polls')} "
          f"(slowest {1000 * reader_info.get('worst_poll_s', 0):.0f} ms) -> {RESULTS}")
    for error in result["errors"]:
        print(f"  error: {error}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
