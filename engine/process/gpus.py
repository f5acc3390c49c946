"""GPUs of this machine, found with nvidia-smi so that the TUI and the sweep queue's planning never
import torch, numbered as the engine commands started from here will number them: in nvidia-smi's order
(the TUI starts them with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``), those ``CUDA_VISIBLE_DEVICES`` of the
environment lists alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace

from engine.process import cuda_visible

#: what nvidia-smi is asked for, one line a GPU
QUERY = "--query-gpu=index,uuid,name,memory.total"


@dataclass(frozen=True)
class Gpu:
    #: its number for CUDA in the children started from here (nvidia-smi's own where nothing restricts them)
    index: int
    name: str
    memory_mib: int
    uuid: str = ""

    @property
    def label(self) -> str:
        memory = f" ({self.memory_mib / 1024:.0f} GiB)" if self.memory_mib else ""
        return f"cuda:{self.index}  {self.name}{memory}"


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        memory = parts[3].split()[0] if parts[3] else ""
        gpus.append(Gpu(int(parts[0]), parts[2], int(memory) if memory.isdigit() else 0, parts[1]))
    return gpus


def as_seen(gpus: list[Gpu], env: Mapping[str, str]) -> list[Gpu]:
    """The GPUs a child started with ``env`` sees, numbered as it numbers them: those
    ``CUDA_VISIBLE_DEVICES`` lists (by index or UUID prefix, as CUDA takes them), in its order."""
    entries = cuda_visible.visible_entries(env)
    if entries is None:
        return gpus
    seen = []
    for position, entry in enumerate(entries):
        match = next((g for g in gpus if (str(g.index) == entry if entry.isdigit()
                                          else g.uuid and g.uuid.startswith(entry))), None)
        if match is None and entry.isdigit():  # no such GPU: CUDA ignores it and every entry after it
            break
        if match is None:  # a MIG instance, which nvidia-smi's GPU list does not name: CUDA counts it
            match = Gpu(position, f"GPU {entry}", 0)
        seen.append(replace(match, index=position))
    return seen


def list_gpus() -> list[Gpu]:
    """The GPUs nvidia-smi reports that children started from here see; none when it is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, QUERY, "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return as_seen(parse_nvidia_smi(out.stdout), os.environ) if out.returncode == 0 else []

