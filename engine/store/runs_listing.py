"""``spkemb-engine runs``: list the runs of the database as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from engine.console import out, out_text, printable, say, stdout_console
from engine.errors import StoreError
from engine.layout import PARAMS, checkpoint_file
from engine.records.labels import decode_tags
from engine.records.runs import clock_text, newest_picks, progress_text
from engine.requests import RunsRequest, TagRequest
from engine.store.db import default_db_path, read_only_reason
from engine.store.reads import DAMAGED
from engine.store.runs import Store, open_store
from engine.store.typed_reads import run_of

_STATUS_STYLE = {"queued": "dim", "running": "bold cyan",
                 "indexing": "cyan", "completed": "green", "failed": "bold red",
                 "stopped": "yellow", "lost": "magenta"}


def _when(t: float | None) -> str:
    return clock_text(t, "%m-%d %H:%M")


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _cells(run: dict[str, Any], now: float, picks: dict[int, dict[str, Any]]) -> dict[str, str]:
    epoch = progress_text(run["kind"], run["status"], run["epoch"], run["target_epoch"], run.get("progress"),
                          run.get("progress_total"))
    end = run["ended_at"] if run["ended_at"] is not None else now
    if run["kind"] == "train" and run["id"] in picks:  # as the TUI's list: its newest validation's pick
        run = {**run, **picks[run["id"]]}
    return {
        "id": str(run["id"]), "kind": run["kind"],
        "status": str(run["status"]),
        "name": run["name"] or "", "protocol.subset": f"{run['protocol'] or ''}.{run['subset'] or ''}",
        "epoch": epoch, "step": "" if run["step"] is None else str(run["step"]),
        "best EER": "" if run["best_eer"] is None else
        f"{100 * run['best_eer']:.2f}% @{run.get('best_checkpoint') or run['best_epoch']}",
        "started": _when(run["started_at"]),
        "duration": _duration(end - (run["started_at"] or end)),
        "host:pid": f"{run['host']}:{run['pid']}" if run['pid'] else "", "out_dir": run["out_dir"] or "",
        "group/tags": labels_text(run.get("run_group"), run.get("tags")),
        "seed": "" if run.get("seed") is None else str(run["seed"]),
    }


def labels_text(group: str | None, tags: Any) -> str:
    """``resnet34-lm #baseline #lm`` (a run's group, then its tags), as tables show them."""
    return " ".join([*([group] if group else []), *(f"#{t}" for t in decode_tags(tags))])


#: table columns, the first ones kept when the terminal is narrow
_COLUMNS = ["id", "kind", "status", "epoch", "step", "best EER", "started", "protocol.subset",
            "duration", "group/tags", "seed", "name", "host:pid", "out_dir"]
_RIGHT = {"id", "epoch", "step", "best EER", "duration", "seed"}
_PROTOCOL = "protocol.subset"
_MIN_PROTOCOL = 24


def elide_middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by replacing its middle with an ellipsis."""
    if len(text) <= width:
        return text
    if width < 2:
        return "…"[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[len(text) - tail:] if tail else "")


def _fit_columns(rows: list[dict[str, str]], terminal: int) -> tuple[list[str], int]:
    """The columns that fit a terminal of ``terminal`` characters, and the protocol's width.

    The protocol is always shown, with room for at least ``_MIN_PROTOCOL`` of its characters
    before any column after it; on a narrow terminal it loses its middle, not its ends (four
    folded lines of it do not read).
    """
    def need(name: str) -> int:
        # a column takes its text, 2 of padding and 1 of rule
        return max([len(name)] + [len(row[name]) for row in rows]) + 3

    # the table's edges add 2 and pad_edge=False takes 2 off: the columns sum to the width + 1
    room = terminal + 1
    reserve = min(_MIN_PROTOCOL + 3, need(_PROTOCOL))
    columns: list[str] = []
    width = reserve
    for name in _COLUMNS:
        if name == _PROTOCOL:
            width = min(room, width - reserve + need(name))
        elif columns and width + need(name) > room:
            continue
        else:
            width += need(name)
        columns.append(name)
    others = sum(need(name) for name in columns if name != _PROTOCOL)
    return columns, max(_MIN_PROTOCOL, room - others - 3)


def _picks(store: Store) -> dict[int, dict[str, Any]]:
    """The pick each training run's line shows (``newest_picks``), as the columns of its row."""
    validations = (run_of(row) for row in store.run_summaries() if row["kind"] == "validate")
    return {train: {"best_eer": v.best_eer, "best_epoch": v.best_epoch, "best_checkpoint": v.best_checkpoint}
            for train, v in newest_picks(validations).items()}


def _print_table(runs: list[dict[str, Any]], db: str, empty: str = "no runs yet",
                 picks: dict[int, dict[str, Any]] | None = None) -> None:
    from rich import box
    from rich.table import Table

    now = time.time()
    rows = [_cells(run, now, picks or {}) for run in runs]
    console = _console(sum(max([len(name)] + [len(row[name]) for row in rows]) + 3 for name in _COLUMNS))
    columns, protocol_width = _fit_columns(rows, console.width)
    table = Table(title=f"runs in {db}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in _RIGHT else "left",
                         overflow="fold", no_wrap=name == _PROTOCOL)
    for row in rows:
        row = {**row, _PROTOCOL: elide_middle(row[_PROTOCOL], protocol_width)}
        table.add_row(*(_cell(name, row[name]) for name in columns))
    _print(console, table)
    if not runs:
        console.print(empty)


def _console(full_width: int) -> Any:
    """The terminal's console; into a pipe or a file (no terminal, no $COLUMNS) as wide as the whole table,
    so that nothing is dropped or folded where nobody reads at 80 columns."""
    console = stdout_console()
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return stdout_console(width=max(full_width, 80))


def _print(console: Any, table: Any) -> None:
    """``table`` on ``console``; into a pipe or a file without the blanks that pad each line to the width
    of the widest row (a long out_dir made every line of a saved list hundreds of characters long)."""
    if console.is_terminal:
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    out_text("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _cell(column: str, text: str) -> str:
    """A cell as rich markup: the text shown as it is (a name may hold brackets or escape sequences:
    from an event file or another tool), the status in its colour."""
    from rich.markup import escape

    shown, style = escape(printable(text)), _STATUS_STYLE.get(text) if column == "status" else None
    return f"[{style}]{shown}" if style else shown


def _print_csv(runs: list[dict[str, Any]], columns: list[str]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for run in runs:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else printable(v) if isinstance(v, str) else v
                         for k, v in run.items()})
    out_text(text.getvalue())


def list_runs(store: Store, status: str | None = None, kind: str | None = None, *, group: str | None = None,
              tag: str | None = None) -> list[dict[str, Any]]:
    """Runs newest first, after marking the dead ones ``lost`` when the store is writable.

    A run whose config or command is not JSON is listed without it, after one warning line naming it.

    A database we may only read (someone else's), or whose write fails (its disk is full), still shows
    its dead runs ``lost``: never ``running`` for ever.
    """
    lost: dict[int, dict[str, Any]] = {}
    if store.readonly:
        lost = {r["id"]: r for r in store.lost_runs()}
    else:
        try:
            store.mark_lost()
        except StoreError as e:
            lost = {r["id"]: r for r in store.lost_runs()}
            say(f"runs: warning: cannot record that {len(lost)} run(s) are lost ({e}); shown lost here")
    runs = store.runs(status=None if lost else status, kind=kind, group=group, tag=tag)
    for run in runs:
        for column, why in run.pop(DAMAGED, {}).items():  # its row stays listed, the file as it is
            say(f"runs: warning: run {run['id']}: its {column} in {store.path} is {why}; shown without it")
        if run["id"] in lost:
            dead = lost[run["id"]]
            run.update(status="lost", reason=dead["reason"], ended_at=dead["heartbeat_at"])
    return [r for r in runs if status is None or r["status"] == status]


def cmd_runs(args: RunsRequest) -> int:
    """``spkemb-engine runs [--db FILE] [--status S] [--kind K] [--format table|json|csv]``."""
    db = default_db_path(args.db)
    if not db.exists():
        raise StoreError(f"no runs database at {db}: pass --db FILE or set SPKEMB_DB "
                         "(the first train/validate/apply run creates it)")
    # someone else's database we may only read: its dead runs shown lost, not marked
    if args.stale:
        return _print_stale(db, args.format)
    with open_store(db, readonly=read_only_reason(db) is not None) as store:
        runs = list_runs(store, status=args.status, kind=args.kind, group=args.group, tag=args.tag)
        columns, _ = store.query("SELECT * FROM runs LIMIT 0")
        held = 0 if runs else store.query("SELECT COUNT(*) FROM runs").rows[0][0]
        picks = _picks(store) if args.format not in ("json", "csv") else {}
    if args.format == "json":
        out(json.dumps(runs, indent=2))
    elif args.format == "csv":
        _print_csv(runs, columns)
    else:
        _print_table(runs, str(db), _nothing_listed(args, held), picks)
    return 0


def _nothing_listed(args: RunsRequest, held: int) -> str:
    """Why the table is empty: no run at all, or none the filters let through (a filter that matched
    nothing read as an empty database)."""
    given = [f"--{name} {value}" for name, value in
             (("status", args.status), ("kind", args.kind), ("group", args.group), ("tag", args.tag))
             if value is not None]
    if not held or not given:
        return "no runs yet"
    return (f"no run matches {' '.join(given)} (the database holds {held} run{'s' if held != 1 else ''}: "
            "`spkemb-engine runs` lists them all)")


_STALE_COLUMNS = ["extraction_id", "apply_run_id", "protocol", "subset", "extracted_epoch", "current_epoch",
                  "validate_run_id", "out_dir"]


def _print_stale(db: os.PathLike[str], fmt: str) -> int:
    """``runs --stale``: the rows of the ``stale_extractions`` view."""
    with open_store(db, readonly=True) as store:
        rows = store.stale_extractions()
        # averaged weights by name (the view's epochs are their last epoch: "2 now 2" said nothing)
        now = {r["validate_run_id"]: (store.run(r["validate_run_id"]) or {}).get("best_checkpoint") for r in rows}
    if fmt == "json":
        out(json.dumps(rows, indent=2))
    elif fmt == "csv":
        _print_csv(rows, list(rows[0]) if rows else _STALE_COLUMNS)
    else:
        from rich import box
        from rich.table import Table

        cells = [[str(r["extraction_id"]), str(r["apply_run_id"]), f"{r['protocol']}.{r['subset']}",
                  _extracted(r), str(now[r["validate_run_id"]] or r["current_epoch"]), r["out_dir"] or ""]
                 for r in rows]
        names = ("extraction", "apply run", "protocol.subset", "epoch", "now", "out_dir")
        widths = [max([len(name)] + [len(row[i]) for row in cells]) + 3 for i, name in enumerate(names)]
        console = _console(sum(widths))
        # a folder loses its middle, not its ends, and stays on one line (folded, it does not read)
        room = max(16, console.width + 1 - sum(widths[:-1]) - 3)
        table = Table(title=f"stale extractions in {db}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for name in names:
            table.add_column(name, overflow="fold", no_wrap=name == "out_dir")
        for row in cells:
            table.add_row(*row[:-1], elide_middle(row[-1], room))
        _print(console, table)
        if not rows:
            console.print(f"no stale extraction: every extraction uses the epoch its {PARAMS} points at")
    return 0


def _extracted(row: dict[str, Any]) -> str:
    """The checkpoint an extraction used: its epoch, or the averaged weights' name (``avg-top2``)."""
    found = checkpoint_file(Path(row["checkpoint"])) if row.get("checkpoint") else None
    return str(found[1]) if found is not None else str(row["extracted_epoch"])


def cmd_tag(args: TagRequest) -> int:
    """``spkemb-engine tag RUN_ID [--group G] [--add-tag T] [--remove-tag T] [--note TEXT]``: change
    how a run is compared, then print its group, tags, note (and its group's mean EER)."""
    db = default_db_path(args.db)
    if not db.exists():
        raise StoreError(f"no runs database at {db}: pass --db FILE or set SPKEMB_DB")
    reason = read_only_reason(db)
    changes = args.group is not None or args.add_tag or args.remove_tag or args.note is not None
    if changes and reason is not None:
        raise StoreError(f"runs database {db} is read-only ({reason}): tag runs where it can be written")
    with open_store(db, readonly=not changes and reason is not None) as store:
        if changes:
            run = store.set_labels(args.run_id, run_group=args.group, add_tags=list(args.add_tag or []),
                                   remove_tags=list(args.remove_tag or []), note=args.note)
        else:
            found = store.run(args.run_id)
            if found is None:
                raise StoreError(f"no run {args.run_id} in {db}: `spkemb-engine runs` lists the run ids")
            run = found
        summary = store.group_summary(run["run_group"]) if run["run_group"] else None
    out(f"run {run['id']}: {labels_text(run['run_group'], run['tags']) or 'no group, no tag'}")
    if run["note"]:
        out(f"note: {run['note']}")
    if summary is not None:
        out(summary.describe())
    return 0
