"""What training records: an epoch's summary and each checkpoint written."""

from __future__ import annotations

from dataclasses import dataclass

from engine.records.fields import PathText


@dataclass(frozen=True, kw_only=True)
class EpochSummary:
    """One training epoch: its mean loss, last learning rate, speed and duration."""

    epoch: int
    loss: float | None
    lr: float | None
    chunks_per_s: float | None
    seconds: float | None


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A checkpoint file already on disk (its row is the commit marker that watchers trust).

    Averaged weights (``spkemb-engine average``) carry their ``name`` (``avg-top5``), the epochs
    that went in (``averaged``) and, as ``epoch``, the last of them. ``sha256`` is the file's as
    written (None in rows and event files of earlier releases).
    """

    epoch: int
    step: int | None
    path: PathText
    partial: bool
    name: str | None = None
    averaged: list[int] | None = None
    sha256: str | None = None
