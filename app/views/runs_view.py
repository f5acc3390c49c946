"""How a run row reads in the tables: pure formatting, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from engine.console import printable
from engine.records import DiarizationCheck, Extraction, Run
from engine.records.runs import clock_text, progress_text

if TYPE_CHECKING:
    from app.data.reader import RunSummary

STATUSES = ("queued", "running", "indexing", "completed", "failed", "stopped", "lost")
#: a process at work (``indexing``: training before its first step)
LIVE = ("running", "indexing")

#: (column key, header) of the runs table: what a run is at and its figures first, so that an 80-column
#: terminal shows them (behind a 37-character protocol, the best EER was six presses of → away)
COLUMNS = [("id", "#"), ("name", "name"), ("status", "status"), ("epoch", "epoch"), ("loss", "last loss"),
           ("eer", "best EER @ epoch"), ("kind", "kind"), ("protocol", "protocol"), ("network", "network"),
           ("device", "device"), ("started", "started"), ("duration", "duration"), ("labels", "group/tags")]

STATUS_STYLE = {"queued": "dim", "running": "bold green", "indexing": "green",
                "completed": "cyan", "failed": "bold red",
                "stopped": "yellow", "lost": "bold magenta"}


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def started(ts: float | None) -> str:
    return clock_text(ts)


def epoch_text(run: Run) -> str:
    """The epoch column, as ``spkemb-engine runs`` shows it (``progress_text``)."""
    return progress_text(run.kind, run.status, run.epoch, run.target_epoch, run.progress, run.progress_total)


#: the longest a figure is printed with its fixed decimals (``12345.6789``)
FIXED_WIDTH = 10


def short_number(value: float, decimals: int) -> str:
    """``value`` with ``decimals`` fixed decimals, or in 4 significant digits where that would be
    longer than ``FIXED_WIDTH`` (an imported 1e300 loss printed as a 300-digit number)."""
    text = f"{value:.{decimals}f}"
    return text if len(text) <= FIXED_WIDTH else f"{value:.4g}"


def eer_text(run: Run) -> str:
    eer, epoch = run.best_eer, run.best_checkpoint or run.best_epoch
    if eer is None:
        return ""
    return f"{short_number(100 * eer, 2)} % @ {epoch}"


def der_text(check: DiarizationCheck) -> str:
    """``DER 12.34 % (missed …, false alarm …, confusion …) oracle`` of a diarization check."""
    total = check.total or 0.0
    share = (lambda s: 100 * (s or 0.0) / total) if total > 0 else (lambda s: 0.0)
    how = "oracle speakers" if check.num_speakers == "oracle" else f"threshold {check.threshold or 0:.2f}"
    return (f"DER {100 * check.der:.2f} % (missed {share(check.missed):.2f} %, false alarm "
            f"{share(check.false_alarm):.2f} %, confusion {share(check.confusion):.2f} %) {how}")


def scoring_text(check: DiarizationCheck) -> str:
    """``collar 0.5 s, overlap skipped``: how a diarization check was scored."""
    return f"collar {check.collar or 0:g} s, overlap {'skipped' if check.skip_overlap else 'scored'}"


def extraction_settings_text(extraction: Extraction) -> str:
    """``shared path, torch, step 0.5 s``: what made an extraction (its folder's name says it too)."""
    # onnxruntime runs every window through the whole exported network: the plain path's work
    path, runtime = ("plain", "onnxruntime") if extraction.mode == "onnxruntime" else (extraction.mode, "torch")
    return f"{path} path, {runtime}, step {extraction.step:g} s"


def protocol_text(run: Run) -> str:
    protocol, subset = run.protocol or "", run.subset
    return f"{protocol}.{subset}" if subset else protocol


def cells(run: RunSummary, now: float) -> tuple[str, ...]:
    """The text of each column of the runs table for one run."""
    end = run.ended_at or (now if run.status in LIVE else run.heartbeat_at)
    start = run.started_at
    loss = run.last_loss
    # the table draws its text as it is: a control character from a run's name would reach the terminal;
    # a launch not recorded yet has a negative id of the TUI's own: its number is not known yet
    return (str(run.id) if run.id > 0 else "…", name_cell(run.name), run.status or "", epoch_text(run),
            "" if loss is None else short_number(loss, 4), eer_text(run), printable(run.kind or ""),
            printable(protocol_text(run)), printable(run.network), printable(run.device or ""), started(start),
            duration(None if start is None or end is None else end - start), printable(labels_text(run)))


#: the widest a name is shown in the table (the run's detail shows it whole): an apply run's
#: ``apply Demo.SpeakerDiarization.Meetings.test`` pushed the status, loss and best EER past 80 columns
NAME_WIDTH = 20


def name_cell(name: str | None) -> str:
    text = printable(name or "")
    return text if len(text) <= NAME_WIDTH else text[:NAME_WIDTH - 1] + "…"


def labels_text(run: Run) -> str:
    """``resnet34-lm #baseline #lm``: a run's group, then its tags."""
    return " ".join([*([run.run_group] if run.run_group else []), *(f"#{t}" for t in run.tags)])


def sort_key(column: str, now: float) -> Callable[[RunSummary], tuple[bool, Any]]:
    """How a column sorts the way a reader expects (numbers as numbers, a missing value last):
    chosen once per sort, then applied to every run (a lab's ten thousand at each refresh)."""
    value: Callable[[RunSummary], Any]
    if column in ("id", "epoch"):
        value = attrgetter(column)
    elif column == "loss":
        value = attrgetter("last_loss")
    elif column == "eer":
        value = attrgetter("best_eer")
    elif column == "started":
        value = lambda run: run.started_at or 0.0  # noqa: E731 - one expression per column
    elif column == "duration":
        value = lambda run: (run.ended_at or now) - (run.started_at or 0.0)  # noqa: E731
    elif column == "protocol":
        value = protocol_text
    elif column == "labels":
        value = labels_text
    else:  # a column shown as the run's field of that name (name, kind, network, status, device)
        value = lambda run: getattr(run, column, None) or ""  # noqa: E731

    def key(run: RunSummary) -> tuple[bool, Any]:
        v = value(run)
        return (v is None, v if v is not None else 0)
    return key


#: the fields the filter box matches its words against (and the group and tags: ``labels_text``,
#: so that ``#baseline`` matches the tag only)
FILTERED = ("id", "name", "kind", "network", "protocol", "subset", "status", "device", "exp_dir", "host",
            "run_group")


def matches(run: Run, text: str, status: str | None) -> bool:
    """Whether a run passes the filter box (all words, any column) and the status choice."""
    if status and run.status != status:
        return False
    if not text:
        return True
    hay = " ".join([*(str(getattr(run, k) or "") for k in FILTERED), labels_text(run)]).lower()
    return all(word in hay for word in text.lower().split())
