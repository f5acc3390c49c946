"""The device picker's choices: the CPU, then each GPU nvidia-smi lists that the TUI's children see."""

from __future__ import annotations

from engine.process.gpus import list_gpus


def device_options() -> list[tuple[str, str]]:
    """(label, value) pairs for a device picker: the CPU, then each GPU with its memory."""
    return [("cpu", "cpu")] + [(g.label, f"cuda:{g.index}") for g in list_gpus()]
