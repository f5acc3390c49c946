"""GPUs of this machine, found with nvidia-smi so that the TUI never imports torch."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mib: int

    @property
    def label(self) -> str:
        return f"cuda:{self.index}  {self.name} ({self.memory_mib / 1024:.0f} GiB)"


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        memory = parts[2].split()[0]
        gpus.append(Gpu(int(parts[0]), parts[1], int(memory) if memory.isdigit() else 0))
    return gpus


def list_gpus() -> list[Gpu]:
    """The GPUs nvidia-smi reports; none when it is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else []


def device_options() -> list[tuple[str, str]]:
    """(label, value) pairs for a device picker: the CPU, then each GPU with its memory."""
    return [("cpu", "cpu")] + [(g.label, f"cuda:{g.index}") for g in list_gpus()]
