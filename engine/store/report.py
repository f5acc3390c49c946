"""``spkemb-engine runs``: list the runs of the database as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from typing import Any

from engine.errors import StoreError
from engine.store.db import default_db_path
from engine.store.runs import Store, open_store

_STATUS_STYLE = {"running": "bold cyan", "indexing": "cyan", "completed": "green", "failed": "bold red",
                 "stopped": "yellow", "lost": "magenta"}


def _when(t: float | None) -> str:
    return "" if t is None else time.strftime("%m-%d %H:%M", time.localtime(t))


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _cells(run: dict[str, Any], now: float) -> dict[str, str]:
    epoch = "" if run["epoch"] is None else str(run["epoch"])
    if run["target_epoch"] is not None:
        epoch += f"/{run['target_epoch']}"
    end = run["ended_at"] if run["ended_at"] is not None else now
    return {
        "id": str(run["id"]), "kind": run["kind"],
        "status": f"[{_STATUS_STYLE.get(run['status'], '')}]{run['status']}",
        "name": run["name"] or "", "protocol.subset": f"{run['protocol'] or ''}.{run['subset'] or ''}",
        "epoch": epoch, "step": "" if run["step"] is None else str(run["step"]),
        "best EER": "" if run["best_eer"] is None else f"{100 * run['best_eer']:.2f}% @{run['best_epoch']}",
        "started": _when(run["started_at"]),
        "duration": _duration(end - (run["started_at"] or end)),
        "host:pid": f"{run['host']}:{run['pid']}", "out_dir": run["out_dir"] or "",
    }


#: table columns, the first ones kept when the terminal is narrow
_COLUMNS = ["id", "kind", "status", "epoch", "step", "best EER", "started", "protocol.subset",
            "duration", "name", "host:pid", "out_dir"]
_RIGHT = {"id", "epoch", "step", "best EER", "duration"}


def _print_table(runs: list[dict[str, Any]], db: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    now = time.time()
    rows = [_cells(run, now) for run in runs]
    columns, width = [], 0
    for name in _COLUMNS:
        need = max([len(name)] + [len(_plain(row[name])) for row in rows]) + 2
        if columns and width + need > console.width and name != "protocol.subset":
            continue
        columns.append(name)
        width += need
    table = Table(title=f"runs in {db}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in _RIGHT else "left", overflow="fold")
    for row in rows:
        table.add_row(*(row[name] for name in columns))
    console.print(table)
    if not runs:
        console.print("no runs yet")


def _plain(markup: str) -> str:
    return markup.split("]", 1)[1] if markup.startswith("[") else markup


def _print_csv(runs: list[dict[str, Any]], columns: list[str]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for run in runs:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in run.items()})


def list_runs(store: Store, status: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """Runs newest first, after marking the dead ones ``lost`` when the store is writable."""
    if not store.readonly:
        store.mark_lost()
    return store.runs(status=status, kind=kind)


def cmd_runs(args: argparse.Namespace) -> int:
    """``spkemb-engine runs [--db FILE] [--status S] [--kind K] [--format table|json|csv]``."""
    db = default_db_path(args.db)
    if not db.exists():
        raise StoreError(f"no runs database at {db}: pass --db FILE or set SPKEMB_DB "
                         "(the first train/validate/apply run creates it)")
    # someone else's database we may only read: list it without marking lost runs
    with open_store(db, readonly=not os.access(db, os.W_OK)) as store:
        runs = list_runs(store, status=args.status, kind=args.kind)
        columns, _ = store.query("SELECT * FROM runs LIMIT 0")
    if args.format == "json":
        print(json.dumps(runs, indent=2))
    elif args.format == "csv":
        _print_csv(runs, columns)
    else:
        _print_table(runs, str(db))
    return 0
