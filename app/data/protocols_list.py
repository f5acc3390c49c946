"""Protocol names of the workspace's database.yml, for the pickers (torch-free)."""

from __future__ import annotations

from pathlib import Path

#: extraction defaults, in order of preference: the AMI-style test set of the demo, then AMI itself
EXTRACT_DEFAULTS = ("Demo.SpeakerDiarization.Meetings", "AMI.SpeakerDiarization.MixHeadset")


def protocols(database_yml: Path | None) -> list[str]:
    """Every protocol the registry knows; raises the engine's ProtocolError when it cannot."""
    from engine.data.protocols import list_protocols

    return list_protocols(str(database_yml) if database_yml else None)


def default_extract(names: list[str]) -> str | None:
    for name in EXTRACT_DEFAULTS:
        if name in names:
            return name
    diarization = [n for n in names if ".SpeakerDiarization." in n]
    return diarization[0] if diarization else (names[0] if names else None)


def default_train(names: list[str]) -> str | None:
    verification = [n for n in names if ".SpeakerVerification." in n]
    return verification[0] if verification else (names[0] if names else None)
