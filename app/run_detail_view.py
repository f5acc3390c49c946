"""What the run detail's header and side panels say, and which log it follows: pure formatting, no I/O.

``data`` is what ``reader.read_detail`` returns; ``show`` writes a path as the workspace shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.lineage import lineage_lines
from app.runs_view import LIVE, der_text, duration, eer_text, epoch_text, protocol_text
from app.validation_view import comparison_lines, figures
from engine import layout

#: data problems listed in the side panel
MAX_PROBLEMS = 20


def summary_lines(run: dict, data: dict, *, asnorm: bool, now: Callable[[], float],
                  show: Callable[[Any], str] = str) -> list[str]:
    """The header: status, protocol, epoch and duration; folders; lineage; best EER; averages; reason."""
    train = data["train"]
    end = run.get("ended_at") or (now() if run.get("status") in LIVE else None)
    lines = [
        f"[b]#{run['id']} {run.get('name') or ''}[/b]  {run.get('kind')}  [b]{run.get('status')}[/b]"
        f"  {protocol_text(run)}  epoch {epoch_text(train)}  device {run.get('device') or '?'}"
        f"  pid {run.get('pid')}@{run.get('host')}"
        f"  {duration(None if end is None or run.get('started_at') is None else end - run['started_at'])}",
        f"experiment {show(train.get('exp_dir'))}   TRN_DIR {show(train.get('out_dir'))}",
    ]
    lines += lineage_lines(train, data.get("init_parent"), show)
    best = [v for v in data["validators"] if v.get("best_eer") is not None]
    if best:
        lines.append(f"best EER {eer_text(best[0])} ({best[0].get('best_how')}) "
                     f"VAL_DIR {show(best[0].get('out_dir'))}")
    lines += comparison_lines(figures(data.get("validations", []), asnorm))
    if run.get("reason"):
        lines.append(f"[red]reason: {run['reason']}[/red]")
    return lines


def extraction_lines(data: dict, show: Callable[[Any], str] = str) -> list[str]:
    """The extractions panel: each apply run's progress, DER check, staleness and EMB_DIR."""
    ext = ["[b]extractions[/b]"]
    for a in data["applies"]:
        total = a.get("progress_total")
        progress = f"{int(a.get('progress') or 0)}/{int(total)} files" if total else ""
        epoch = f"epoch {a['target_epoch']} " if a.get("target_epoch") is not None else ""
        ext.append(f"#{a['id']} {a.get('status')} {a.get('protocol')}.{a.get('subset')} {epoch}{progress}")
        check = data.get("der", {}).get(a["id"])
        if check is not None:
            ext.append(f"  {der_text(check)}")
        stale = data.get("stale", {}).get(a["id"])
        if stale is not None:
            ext.append(f"  [b yellow]stale[/]: {layout.PARAMS} now points at epoch {stale['current_epoch']} "
                       "— press e to extract again")
        ext.append(f"  → {show(a.get('out_dir'))}")
    if len(ext) == 1:
        ext.append("none yet — press e to extract embeddings")
    return ext


def problem_lines(data: dict, show: Callable[[Any], str] = str) -> list[str]:
    """The data problems panel: the first ``MAX_PROBLEMS`` recorded, fatal ones marked."""
    probs = ["[b]data problems[/b]"]
    for p in data["problems"][:MAX_PROBLEMS]:
        probs.append(f"{'FATAL ' if p.get('fatal') else ''}{show(p.get('path'))}: {p.get('problem')}")
    if len(probs) == 1:
        probs.append("none recorded")
    return probs


def log_path(run: dict) -> str | None:
    """The log the tail follows: the run's own, else its kind's log in its output folder."""
    if run.get("log_path"):
        return run["log_path"]
    out = run.get("out_dir")
    if out:
        name = {"train": layout.TRAIN_LOG, "validate": layout.VALIDATE_LOG}.get(run.get("kind"), layout.APPLY_LOG)
        return str(Path(out) / name)
    return None
