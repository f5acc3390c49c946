"""What the run detail's header and side panels say, and which log it follows: pure formatting, no I/O.

``data`` is what ``reader.read_detail`` returns; ``show`` writes a path as the workspace shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.data.reader import RunDetail
from app.views.lineage import lineage_lines
from app.views.plain import safe
from app.views.runs_view import (
    LIVE,
    der_text,
    duration,
    eer_text,
    epoch_text,
    extraction_settings_text,
    protocol_text,
    scoring_text,
)
from app.views.validation_view import comparison_lines, figures
from engine import layout
from engine.records import Run

#: data problems listed in the side panel
MAX_PROBLEMS = 20


def summary_lines(run: Run, data: RunDetail, *, asnorm: bool, now: Callable[[], float],
                  show: Callable[[Any], str] = str) -> list[str]:
    """The header: status, network, protocol, epoch and duration; the reason it ended so; folders; lineage;
    best EER; averages."""
    train = data.train
    end = run.ended_at or (now() if run.status in LIVE else None)
    lines = [
        f"[b]#{run.id} {safe(run.name)}[/b]  {safe(run.kind)}  [b]{safe(run.status)}[/b]"
        f"{f'  network {safe(data.network)}' if data.network else ''}  {safe(protocol_text(run))}"
        f"  {progress_text(run, train)}  device {safe(run.device or '?')}"
        f"  pid {run.pid}@{safe(run.host)}"
        f"  {duration(None if end is None or run.started_at is None else end - run.started_at)}",
    ]
    if run.reason:  # second: the header is cut to four lines at 80x24, and a failure's fix is in its reason
        lines.append(f"[red]reason: {safe(run.reason)}[/red]")
    # then the pick, before the folders: at 80x24 it was below the cut, and `p` had no word of what it picked
    best = [v for v in data.validators if v.best_eer is not None]
    if best:
        lines.append(f"{picked_text(best[0], data)}  VAL_DIR {show(best[0].out_dir)}")
    lines.append(f"experiment {show(train.exp_dir)}   TRN_DIR {show(train.out_dir)}")
    lines += lineage_lines(train, data.init_parent, show)
    lines += labels_lines(run if run.tags or run.note else train, data)
    lines += comparison_lines(figures(data.shown_validations, asnorm))
    return lines


def labels_lines(run: Run, data: RunDetail) -> list[str]:
    """The run's group (with its seeds' mean ± std EER), tags and note (``t`` edits them)."""
    lines = []
    labels = " ".join(f"#{t}" for t in run.tags)
    if data.group is not None:
        seed = f"  seed {data.train.seed}" if data.train.seed is not None else ""
        lines.append(f"{safe(data.group.describe())}{seed}  {safe(labels)}".rstrip())
    elif labels:
        lines.append(f"tags {safe(labels)}")
    if run.note:
        lines.append(f"note: {safe(one_line(run.note))}")
    return lines


#: characters of a note the summary shows (``t`` shows it whole)
NOTE_CHARS = 160


def one_line(note: str) -> str:
    """A note's first line, cut to ``NOTE_CHARS``: the summary holds a few lines above the plots."""
    first, *more = note.strip().splitlines() or [""]
    if len(first) > NOTE_CHARS or more:
        return f"{first[:NOTE_CHARS].rstrip()}… (t: the whole note)"
    return first


def progress_text(run: Run, train: Run) -> str:
    """Where the run is: an extraction's epoch and files, else the training's epoch of its target."""
    if run.kind == "apply":
        extracted = run.best_checkpoint or run.target_epoch
        return f"epoch {'?' if extracted is None else extracted}  {epoch_text(run)}".rstrip()
    return f"epoch {epoch_text(train)}"


def picked_text(validator: Run, data: RunDetail) -> str:
    """The epoch params.yml points at, and the lowest EER when that is another epoch (a pick by hand)."""
    how = "lowest EER" if validator.best_how == "lowest-eer" else "picked by hand"
    text = f"picked EER {eer_text(validator)} ({how})"
    scored = [v for v in data.validations if v.run_id == validator.id] or data.validations
    # a row without an EER (a NaN stored as NULL) is no candidate for the lowest
    lowest = min((v for v in scored if v.eer is not None), key=lambda v: (v.eer, v.epoch), default=None)
    if lowest is not None and lowest.eer is not None and lowest.eer < (validator.best_eer or 0.0):
        text += f"; lowest EER {100 * lowest.eer:.2f} % @ {lowest.checkpoint_name or lowest.epoch}"
    return text


def extraction_lines(data: RunDetail, show: Callable[[Any], str] = str) -> list[str]:
    """The extractions panel: each apply run's settings, progress, DER checks, staleness and EMB_DIR.

    Each extraction is its own line, with the path, runtime and step that made it; each of its
    diarization checks (one per collar and overlap setting) its own line below it. A run whose
    files a later run with the same settings replaced says so.
    """
    ext = ["[b]extractions[/b]"]
    replaced_by = _replaced_by(data.applies)
    for a in data.applies:
        progress = epoch_text(a)
        epoch = f"epoch {a.target_epoch} " if a.target_epoch is not None else ""
        extraction = data.extractions.get(a.id)
        settings = f"· {extraction_settings_text(extraction)} " if extraction is not None else ""
        ext.append(f"#{a.id} {safe(a.status)} {safe(a.protocol)}.{safe(a.subset)} {epoch}{settings}{progress}"
                   .rstrip())
        newer = replaced_by.get(a.id)
        if newer is not None:
            ext.append(f"  [dim]replaced by #{newer} (same settings, same folder)[/]")
        for check in data.der.get(a.id, []):
            subset = f"{safe(check.subset)}: " if check.subset and check.subset != a.subset else ""
            ext.append(f"  {subset}{der_text(check)} · {scoring_text(check)}")
        stale = data.stale.get(a.id)
        if stale is not None:
            ext.append(f"  [b yellow]stale[/]: {layout.PARAMS} now points at epoch {stale.current_epoch} "
                       "— press e to extract again")
        ext.append(f"  → {show(a.out_dir)}")
    if len(ext) == 1:
        ext.append("none yet — press e to extract embeddings")
    return ext


def _replaced_by(applies: list[Run]) -> dict[int, int]:
    """Apply run id -> the id of the newest later run that wrote the same subset into the same folder."""
    newest: dict[tuple, int] = {}
    replaced = {}
    for a in sorted(applies, key=lambda r: r.id, reverse=True):
        if a.status == "failed" and not a.progress:  # refused before writing a file
            continue
        key = (a.out_dir, a.protocol, a.subset)
        if key in newest:
            replaced[a.id] = newest[key]
        else:
            newest[key] = a.id
    return replaced


def problem_lines(data: RunDetail, show: Callable[[Any], str] = str) -> list[str]:
    """The data problems panel: the first ``MAX_PROBLEMS`` recorded, fatal ones marked."""
    probs = ["[b]data problems[/b]"]
    for p in data.problems[:MAX_PROBLEMS]:
        probs.append(f"{'FATAL ' if p.fatal else ''}{show(p.path)}: {safe(p.problem)}")
    if len(probs) == 1:
        probs.append("none recorded")
    return probs


def log_path(run: Run) -> str | None:
    """The log the tail follows: the run's own, else its kind's log in its output folder (an
    extraction's: in the VAL_DIR above it, where the TUI writes ``apply.log``)."""
    if run.log_path:
        return run.log_path
    if not run.out_dir:
        return None
    if run.kind == "apply":
        return str(layout.ExtractionDir(Path(run.out_dir)).validation.apply_log)
    name = {"train": layout.TRAIN_LOG, "validate": layout.VALIDATE_LOG}.get(run.kind, layout.APPLY_LOG)
    return str(Path(run.out_dir) / name)


def drawn_from(data: RunDetail, rows: list, best: int | str | None, asnorm: bool) -> tuple:
    """What the EER plot and the epoch table are drawn from, in a few values: two reads that give the
    same need no redraw (a run of ten thousand epochs took seconds to refill its table, every refresh).

    The counts and the last of each list, not every row: rows are added at the end (epochs in order), and
    a checkpoint scored again is scored by another validate run, whose id and pick are in here.
    """
    def ends(items: list | tuple) -> tuple:
        return len(items), items[-1] if items else None

    return (asnorm, best, ends(rows), ends(data.epochs), ends(data.checkpoints), ends(data.group_epochs),
            tuple((v.id, v.status, v.best_epoch, v.best_checkpoint, v.best_eer) for v in data.validators))
