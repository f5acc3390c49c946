"""What an extraction folder already holds, read before ``apply`` writes into it: the settings its
metadata.yml names (another extraction is never overwritten), the protocol subsets extracted into it,
and the audio each uri was embedded from (one database's embeddings never replace another's)."""

from __future__ import annotations

import os
from typing import Any

import yaml

from engine.errors import SpkembError
from engine.layout import CheckpointName, ExtractionDir


def replacing_extraction(extraction: ExtractionDir, found: dict[str, Any], epoch: CheckpointName, mode: str,
                         step: float, duration: float, checkpoint_sha256: str) -> bool:
    """Whether ``extraction`` already holds an extraction with these settings (it is then replaced);
    ``found``: its metadata.yml (``found_metadata``).

    A metadata.yml with other settings (a folder written before folders were named from their
    settings, or edited by hand) is refused: another extraction is never overwritten. So are other
    weights under the same name (``average`` run again replaces ``avg-last2.pt``): one folder's
    embeddings would be of two networks, its diarization check tuned on one and scored on the other.
    """
    if not extraction.metadata.is_file():
        return False
    ours = {"epoch": epoch, "mode": mode, "step": step, "duration": duration}
    if "checkpoint_sha256" in found:
        ours["checkpoint_sha256"] = checkpoint_sha256
    differ = [k for k, v in ours.items() if not _same(found.get(k), v)]
    if differ == ["checkpoint_sha256"]:
        raise SpkembError(f"{extraction.root} holds the embeddings of other weights named {epoch} (checkpoint "
                          f"sha256 {str(found['checkpoint_sha256'])[:12]}…, now {checkpoint_sha256[:12]}…: the file "
                          "was made again since) and is never overwritten: move that folder aside and run again")
    if differ:
        theirs = ", ".join(f"{k} {found.get(k)}" for k in differ)
        wanted = ", ".join(f"{k} {ours[k]}" for k in differ)
        raise SpkembError(f"{extraction.root} holds an extraction with other settings ({theirs}; this one: "
                          f"{wanted}) and is never overwritten: move that folder aside (folders made "
                          "before they were named from their settings hold any mode and step) and run again")
    return True


def found_metadata(extraction: ExtractionDir) -> dict[str, Any]:
    """The metadata.yml already in ``extraction``; {} when there is none or it is unreadable (not
    UTF-8, not YAML, no mapping), which ``replacing_extraction`` then refuses as other settings."""
    try:
        found = yaml.safe_load(extraction.metadata.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):  # `[[[[…` thousands deep included
        found = None
    return found if isinstance(found, dict) else {}


def subsets_with(found: dict[str, Any], protocol: str, subset: str) -> list[dict[str, str]]:
    """Every protocol subset extracted into the folder, this one last: one folder holds them all (the
    development subset ``diarize --num-speakers tuned`` tunes on, and the test subset).

    ``protocol`` and ``subset`` alone name the latest; a metadata.yml written before ``subsets``
    names its one subset with them. Entries that are not two names are dropped: the list is a record.
    """
    ours = {"protocol": protocol, "subset": subset}
    return [pair for pair in _listed(found) if pair != ours] + [ours]


def extracted_whole(found: dict[str, Any], protocol: str, subset: str) -> bool:
    """Whether metadata.yml lists ``protocol``'s ``subset`` as extracted: an apply lists it once its
    last file is written, so a stopped one's folder does not."""
    return {"protocol": protocol, "subset": subset} in _listed(found)


def _listed(found: dict[str, Any]) -> list[dict[str, str]]:
    earlier = found.get("subsets")
    if not isinstance(earlier, list):
        earlier = [{"protocol": found.get("protocol"), "subset": found.get("subset")}]
    return [{"protocol": e["protocol"], "subset": e["subset"]} for e in earlier
            if isinstance(e, dict) and isinstance(e.get("protocol"), str) and isinstance(e.get("subset"), str)]


def _same(found: Any, wanted: Any) -> bool:
    if isinstance(wanted, float):
        return isinstance(found, (int, float)) and not isinstance(found, bool) and abs(found - wanted) <= 1e-9
    return found == wanted


def other_audio(extraction: ExtractionDir, files: list, protocol: str, found: dict[str, Any] | None = None) -> None:
    """Refuse a uri whose ``.npy`` in ``extraction`` was embedded from other audio: two databases may
    name the same meetings (AMI's headset mix and its far-field array), and one's embeddings would
    replace the other's, which a diarization check of the first then scores as its own. ``found``: its
    metadata.yml, when already read."""
    earlier = (found_metadata(extraction) if found is None else found).get("audio")
    if not isinstance(earlier, dict):
        return
    for f in files:
        uri, audio = str(f["uri"]), str(f["audio"])
        theirs = earlier.get(uri)
        if isinstance(theirs, str) and theirs != audio and _other_file(theirs, audio) \
                and extraction.embeddings(uri).exists():
            raise SpkembError(f"{extraction.root} holds {uri}.npy embedded from {theirs}, and {protocol} names "
                              f"{uri} with other audio ({audio}): its embeddings would replace those — move that "
                              "folder aside (or extract with another --step), then run again")


def _other_file(theirs: str, ours: str) -> bool:
    """Whether two audio paths are two files: a path that is gone (a corpus moved, database.yml
    following it) or the same file reached otherwise (a symbolic link, ``..``) is the same audio."""
    try:
        return os.path.exists(theirs) and os.path.exists(ours) and not os.path.samefile(theirs, ours)
    except OSError:
        return False
