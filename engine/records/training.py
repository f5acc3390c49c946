"""What training records: an epoch's summary and each checkpoint written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.records.fields import PathText, row_record


@dataclass(frozen=True, kw_only=True)
class EpochSummary:
    """One training epoch: its mean loss, last learning rate, speed and duration."""

    epoch: int
    loss: float | None
    lr: float | None
    chunks_per_s: float | None
    seconds: float | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EpochSummary:
        """The summary a ``train_epochs`` row holds (its ``time`` left out)."""
        return row_record(cls, row)


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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Checkpoint:
        """The checkpoint a ``checkpoints`` row holds (``averaged`` is JSON there, ``partial`` 0 or 1)."""
        averaged = row.get("averaged")
        return cls(epoch=int(row["epoch"]), step=row.get("step"), path=row["path"], partial=bool(row["partial"]),
                   name=row.get("name"), averaged=json.loads(averaged) if isinstance(averaged, str) else averaged,
                   sha256=row.get("sha256"))
