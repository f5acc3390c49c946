"""The short name of the network a config trains (``ResNet34``, ``SincTDNN+Fbank``), as every table
and legend shows it: the TUI's runs list and Compare, and ``spkemb-engine report``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.config.specs import FBANK_BACKBONES


def network_name(architecture: Any, front_end: Any) -> str:
    """A short name of the network a config trains: its architecture (``SincTDNN``, ``ResNet34``),
    with ``+Fbank``/``+RawAudio`` only where the front end is not the backbone's own ("" for no
    architecture). Full ``pyannote.audio.models.SincTDNN`` names are shortened."""
    if not isinstance(architecture, str) or not architecture:
        return ""
    name = architecture.rsplit(".", 1)[-1]
    front = front_end.rsplit(".", 1)[-1] if isinstance(front_end, str) and front_end else "RawAudio"
    own = "Fbank" if name in FBANK_BACKBONES else "RawAudio"
    return name if front == own else f"{name}+{front}"


def config_network(config: Mapping[str, Any] | None) -> str:
    """``network_name`` of a decoded config (a run's ``config`` column)."""
    if not isinstance(config, Mapping):
        return ""

    def name(section: str) -> Any:
        value = config.get(section)
        return value.get("name") if isinstance(value, Mapping) else None

    return network_name(name("architecture"), name("feature_extraction"))
