"""How runs are grouped and compared: a run's group, tags and note, and a group's seeds summed up.

A group names runs meant to be compared together (``resnet34-lm``: the same setup trained with
several seeds); tags are free words (``baseline``, ``ablation``); the note is free text. Torch- and
database-free: the store writes and reads them, the CLI and the TUI check what a person typed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: a group or a tag: one word (letters, digits, ``. _ - + / : @ =``), so that it reads in a table
#: column and a filter box matches it as a word
_WORD = re.compile(r"[\w.+/:@=-]{1,64}")


def check_label(text: str, what: str) -> str:
    """``text`` stripped when it is a usable group or tag; ValueError saying why not."""
    word = text.strip()
    if not _WORD.fullmatch(word):
        raise ValueError(f"{what} {text!r} is not one word of at most 64 letters, digits or . _ - + / : @ = "
                         "(use e.g. resnet34-lm)")
    return word


def check_tags(tags: Iterable[str]) -> list[str]:
    """Checked tags, each once, in the order given."""
    out: list[str] = []
    for tag in tags:
        word = check_label(tag, "tag")
        if word not in out:
            out.append(word)
    return out


def decode_tags(value: Any) -> tuple[str, ...]:
    """A ``runs.tags`` value (JSON array text, a decoded list or NULL) as a tuple of words."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # edited by hand: `[[[[…` thousands deep ends the reader's stack
            return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def encode_tags(tags: Sequence[str] | None) -> str | None:
    """The ``runs.tags`` text of tags (NULL for none)."""
    return json.dumps(list(tags)) if tags else None


@dataclass(frozen=True, kw_only=True)
class GroupSummary:
    """The training runs of one group and the best EER each picked (``eers``: fractions, of the
    runs that have one): mean ± sample standard deviation over the seeds. A sweep's group (``sweep``)
    reads as its best run instead: its trials differ in their settings."""

    group: str
    runs: int
    eers: tuple[float, ...]
    seeds: tuple[int | None, ...] = ()
    #: the trial list the EERs were scored on (``PROTOCOL.subset``); None before any validation
    trials: str | None = None
    #: whether ``spkemb-engine sweep`` made the group, how many of its trials it pruned
    sweep: bool = False
    pruned: int = 0
    #: the run with the lowest of ``eers`` (the lower id among equals)
    best_run: int | None = None

    @property
    def mean(self) -> float | None:
        return sum(self.eers) / len(self.eers) if self.eers else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1); None for fewer than two EERs (no spread to speak of)."""
        mean = self.mean
        if mean is None or len(self.eers) < 2:
            return None
        return math.sqrt(sum((e - mean) ** 2 for e in self.eers) / (len(self.eers) - 1))

    def describe(self) -> str:
        """``group resnet34-lm: 4 runs, EER 2.10 ± 0.15 % on VoxCeleb.SpeakerVerification.VoxCeleb1.test
        (3 validated)``; ``sweep lr: 8 trials (3 pruned), best EER 2.05 % (#14) on …``."""
        if self.sweep:
            text = f"sweep {self.group}: {self.runs} trial{'s' if self.runs != 1 else ''}"
            text += f" ({self.pruned} pruned)" if self.pruned else ""
            if not self.eers:
                return text + ", no EER yet"
            text += f", best EER {100 * min(self.eers):.2f} % (#{self.best_run})"
        else:
            text = f"group {self.group}: {self.runs} run{'s' if self.runs != 1 else ''}"
            if self.mean is None:
                return text + ", no EER yet"
            spread = "" if self.std is None else f" ± {100 * self.std:.2f}"
            text += f", EER {100 * self.mean:.2f}{spread} %"
        text += f" on {self.trials}" if self.trials else ""
        if self.std is None and not self.sweep:
            text += " (one EER: no spread yet)"
        if len(self.eers) != self.runs:
            text += f" ({len(self.eers)} validated)"
        return text


@dataclass(frozen=True, kw_only=True)
class GroupEpoch:
    """The EER of one epoch over the seeds of a group that validated it: what the band is drawn from."""

    epoch: int
    #: the EER of each training run of the group at this epoch (fractions), by run id order
    eers: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.eers) / len(self.eers)

    @property
    def std(self) -> float:
        """Sample standard deviation (n - 1); 0 for one run."""
        if len(self.eers) < 2:
            return 0.0
        mean = self.mean
        return math.sqrt(sum((e - mean) ** 2 for e in self.eers) / (len(self.eers) - 1))
