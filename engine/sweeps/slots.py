"""``--slots``: where queued runs may run at once, one run per slot.

``cpu*2`` is two CPU slots; ``cuda:0,cuda:1`` one slot per GPU; ``cuda:0*2`` two runs sharing GPU 0.
A run on a GPU slot sees that GPU alone (``CUDA_VISIBLE_DEVICES``) and is told ``--device cuda``; a
CPU run sees none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import SpkembError

_SPEC = re.compile(r"^(cpu|cuda:(\d+))(?:\*(\d+))?$")


@dataclass(frozen=True)
class Slot:
    """One place a run goes: its name (``cuda:1``, ``cpu/0``), the ``--device`` it is given and the
    ``CUDA_VISIBLE_DEVICES`` it sees ("" for none)."""

    name: str
    device: str
    visible: str


def parse_slots(text: str) -> list[Slot]:
    """The slots ``text`` names, in order.

    Raises
    ------
    SpkembError
        A part that is neither ``cpu`` nor ``cuda:N``, optionally followed by ``*K``.
    """
    slots: list[Slot] = []
    for part in (p.strip() for p in text.split(",")):
        match = _SPEC.match(part)
        if match is None or (match.group(3) is not None and int(match.group(3)) < 1):
            raise SpkembError(f"--slots: {part!r} is not a slot: use cpu, cuda:N, or either followed by *K "
                              "(K runs at once there), joined by commas, e.g. cpu*2 or cuda:0,cuda:1")
        count = int(match.group(3) or 1)
        gpu = match.group(2)
        for i in range(count):
            name = match.group(1) if count == 1 else f"{match.group(1)}/{i}"
            slots.append(Slot(name=name, device="cpu" if gpu is None else "cuda",
                              visible="" if gpu is None else gpu))
    names = [s.name for s in slots]
    if len(set(names)) != len(names):
        raise SpkembError(f"--slots {text}: a slot is named twice; write cuda:0*2 for two runs on one GPU")
    return slots
