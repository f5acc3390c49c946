"""``--slots``: where queued runs may run at once, one run per slot.

``cpu*2`` is two CPU slots; ``cuda:0,cuda:1`` one slot per GPU; ``cuda:0*2`` two runs sharing GPU 0.
Left out, it is one slot per GPU nvidia-smi lists here, or ``cpu`` where it lists none.
A run on a GPU slot sees that GPU alone (``CUDA_VISIBLE_DEVICES``) and is told ``--device cuda``; a
CPU run sees none. ``cuda:N`` numbers the GPUs the queue sees, as torch does: under
``CUDA_VISIBLE_DEVICES=2,3``, ``cuda:0`` is the machine's GPU 2.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from engine.errors import SpkembError
from engine.process import cuda_visible
from engine.process.gpus import list_gpus

_SPEC = re.compile(r"(cpu|cuda:([0-9]+))(?:\*([0-9]+))?")
#: the most runs one slot takes at once: each is a process with its loaders and its memory
MAX_RUNS_PER_SLOT = 64
#: the most slots in all: runs at once on one machine
MAX_SLOTS = 1024
#: the highest CUDA device index: far beyond any node, and CUDA_VISIBLE_DEVICES is read as an int
MAX_CUDA_INDEX = 1023


@dataclass(frozen=True)
class Slot:
    """One place a run goes: its name (``cuda:1``, ``cpu/0``), the ``--device`` it is given and the
    ``CUDA_VISIBLE_DEVICES`` it sees ("" for none)."""

    name: str
    device: str
    visible: str


def default_slots() -> str:
    """``--slots`` left out: one slot per GPU of this machine that nvidia-smi lists (those
    ``CUDA_VISIBLE_DEVICES`` leaves visible), else ``cpu``."""
    gpus = list_gpus()
    return ",".join(f"cuda:{g.index}" for g in gpus) if gpus else "cpu"


def why_default(slots: str) -> str:
    """The line said when ``--slots`` was left out: no command line shows the slots it took."""
    if slots == "cpu":
        return ("--slots cpu: nvidia-smi lists no GPU here, so runs train on the CPU one at a time "
                "(--slots cpu*2 runs two; --slots cuda:0,cuda:1 names GPUs)")
    return f"--slots {slots}: every GPU nvidia-smi lists here, one run each (--slots chooses others)"


def parse_slots(text: str) -> list[Slot]:
    """The slots ``text`` names, in order.

    Raises
    ------
    SpkembError
        A part that is neither ``cpu`` nor ``cuda:N``, optionally followed by ``*K``; a count, a device
        index or a number of slots beyond its bound.
    """
    slots: list[Slot] = []
    for part in (p.strip() for p in text.split(",")):
        match = _SPEC.fullmatch(part)
        if match is None or (match.group(3) is not None and not _at_most(match.group(3), MAX_RUNS_PER_SLOT)):
            raise SpkembError(f"--slots: {part[:40]!r} is not a slot: use cpu, cuda:N, or either followed by *K "
                              f"(K runs at once there, 1 to {MAX_RUNS_PER_SLOT}), joined by commas, "
                              "e.g. cpu*2 or cuda:0,cuda:1")
        gpu = match.group(2)
        if gpu is not None and not _at_most(gpu, MAX_CUDA_INDEX, low=0):
            raise SpkembError(f"--slots: {part[:40]!r} names no GPU: a CUDA device index is 0 to {MAX_CUDA_INDEX} "
                              "(nvidia-smi lists them), e.g. cuda:0")
        count = int(match.group(3) or 1)
        if len(slots) + count > MAX_SLOTS:
            raise SpkembError(f"--slots names more than {MAX_SLOTS} slots: that many runs at once would not fit "
                              "one machine; name fewer")
        for i in range(count):
            name = match.group(1) if count == 1 else f"{match.group(1)}/{i}"
            slots.append(Slot(name=name, device="cpu" if gpu is None else "cuda",
                              visible="" if gpu is None else gpu))
    names = [s.name for s in slots]
    if len(set(names)) != len(names):
        raise SpkembError(f"--slots {text}: a slot is named twice; write cuda:0*2 for two runs on one GPU")
    return slots


def same_slots(running: str, asked: str) -> bool:
    """Whether the slots a queue runs on are those asked for (``cpu`` and ``cpu*1`` are)."""
    try:
        return parse_slots(running) == parse_slots(asked)
    except SpkembError:  # a row written by hand: compared as text
        return running == asked


def _at_most(digits: str, high: int, low: int = 1) -> bool:
    """Whether ``digits`` is a number from ``low`` to ``high``; thousands of digits are never turned into one."""
    return len(digits.lstrip("0")) <= len(str(high)) and low <= int(digits) <= high


def check_gpus_here(slots: list[Slot], text: str) -> None:
    """Refuse GPU slots this machine's CUDA does not see, before a queue here is asked to use them (each
    trial would otherwise fail at its start).

    Raises
    ------
    SpkembError
        A ``cuda:N`` slot with N at or beyond the number of GPUs torch sees here.
    """
    wanted = sorted({int(s.visible) for s in slots if s.device == "cuda"})
    if not wanted:
        return
    import torch  # only here: the CPU slots' queue and every other queue command start without it

    seen = torch.cuda.device_count()
    if wanted[-1] < seen:
        return
    restricted = cuda_visible.visible_entries(os.environ)
    where = "" if restricted is None else f" ({cuda_visible.VARIABLE}={os.environ[cuda_visible.VARIABLE]!r})"
    if seen == 0:
        raise SpkembError(f"--slots {text}: CUDA sees no GPU here{where}: use --slots cpu, or queue the trials "
                          "with --no-queue and start the queue on a GPU machine")
    raise SpkembError(f"--slots {text}: CUDA sees {seen} GPU(s) here{where}, numbered cuda:0 to cuda:{seen - 1}: "
                      f"cuda:{wanted[-1]} is not one of them")
