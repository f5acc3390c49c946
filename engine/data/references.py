"""The references a diarization is scored against: a speaker diarization protocol's files, every RTTM
and UEM line checked (``engine.data.reference_lines``), every file read, and every file holding
reference speech.
"""

from __future__ import annotations

import warnings
from typing import Any

from engine.console import plural
from engine.data.cache_key import subset_source
from engine.data.protocols import subset_files
from engine.data.reference_lines import FORMATS, check_lines, check_subset_files, entry_path
from engine.errors import ProtocolError, SpkembError


def _load(file: Any, protocol: str, subset: str) -> None:
    """Read the reference of ``file`` now, so that a file pyannote.database cannot read is named."""
    try:
        with warnings.catch_warnings():
            # pyannote.database crops the turns to the UEM itself, and says so
            warnings.filterwarnings("ignore", message='Existing precomputed key "annotation"')
            for key in FORMATS:
                if key in file:
                    file[key]
    except (ValueError, TypeError, UnicodeDecodeError) as e:  # pandas' and pyannote.core's, on the file's text
        raise ProtocolError(f"protocol {protocol}, {subset}: the reference of {file['uri']} cannot be read "
                            f"({type(e).__name__}: {e}) — fix its RTTM (annotation) or UEM (annotated)") from e


def reference_files(protocol: Any, name: str, subset: str) -> list[Any]:
    """The files of ``subset`` with their references read and checked, line by line.

    Raises
    ------
    ProtocolError
        ``FILE:LINE`` of the first bad line of an RTTM or UEM; a reference pyannote.database
        cannot read otherwise (a protocol defined in Python), by uri.
    """
    # the whole-subset files first: their NaN, negative or reversed times do not stop pyannote.database
    # (a line of a file per uri that pandas fails on is named by the listing itself)
    check_subset_files(protocol, subset, templates=False)
    files = subset_files(protocol, subset)
    source = subset_source(protocol, subset)
    for file in files:
        # one file per uri (rttms/{uri}.rttm): pyannote.database read it while listing, NaN and all
        for key, kind in FORMATS.items():
            each = entry_path(source, key, abs(file)) if source is not None else None
            if each is not None:
                check_lines(each, kind)
        _load(file, name, subset)
    return files


def speech_seconds(file: Any) -> float:
    """Seconds of reference speech of ``file``: its turns inside its UEM (the whole turns without one)."""
    annotation = file["annotation"] if "annotation" in file else None
    if annotation is None:
        return 0.0
    annotated = file["annotated"] if "annotated" in file else None
    turns = annotation.crop(annotated) if annotated is not None else annotation
    return float(turns.get_timeline().support().duration())


def reference_of(protocol: Any, subset: str, file: Any) -> str:
    """The RTTM that holds ``file``'s turns, for a message; the entry's name where unknown."""
    source = subset_source(protocol, subset)
    if source is None:
        return "its annotation"
    path = entry_path(source, "annotation", abs(file)) or entry_path(source, "annotation", None)
    return str(path) if path is not None else "its annotation"


def _turns(file: Any) -> int:
    annotation = file["annotation"] if "annotation" in file else None
    return len(annotation) if annotation is not None else 0


def require_diarization(protocol: Any, name: str) -> None:
    """Refuse a protocol of another task before its files are read: a verification protocol's files
    carry one speaker each (their embeddings are judged on trials), a collection's none."""
    from pyannote.database.protocol import CollectionProtocol, SpeakerVerificationProtocol

    if isinstance(protocol, (SpeakerVerificationProtocol, CollectionProtocol)):
        task = "speaker verification" if isinstance(protocol, SpeakerVerificationProtocol) else "collection"
        raise SpkembError(f"{name} is a {task} protocol, not a diarization protocol: its files carry no "
                          "speaker annotation of recordings with several speakers to score a clustering against "
                          "— give diarize (and apply --diarize) a Database.SpeakerDiarization.Protocol with an "
                          "RTTM of speaker turns; embeddings are judged on verification trials by "
                          "`spkemb-engine validate`")


def require_references(files: list[Any], protocol: Any, name: str, subset: str) -> None:
    """Refuse a protocol subset without speaker turns, or with a file without reference speech,
    before anything is computed.

    pyannote.database gives a file of a diarization protocol without an RTTM an empty
    annotation: a subset none of whose files has a turn has no reference to score against, and
    a file with no speech inside its UEM would be scored DER 0 % whatever the embeddings; and the
    hypothesis of a uri holding a space could not be written as RTTM lines.
    """
    spaced = next((f["uri"] for f in files if " " in f["uri"]), None)
    if spaced is not None:
        raise SpkembError(f"uri {spaced!r} cannot name an RTTM: it holds a space, which RTTM lines cannot; "
                          "fix the protocol's uri list")
    if not any(_turns(f) for f in files):
        where = ("" if len(files) == 1 else "any of ") + f"its {plural(len(files), 'file')}"
        raise SpkembError(f"{name} {subset} has no reference speaker turns in {where}: it has no speaker "
                          "annotation (not a diarization protocol?); "
                          "the diarization check needs a speaker diarization protocol whose files have "
                          "them (annotation: an RTTM in database.yml)")
    silent = [f for f in files if speech_seconds(f) <= 0]
    if silent:
        first = silent[0]
        inside = " inside its UEM" if first.get("annotated") is not None else ""
        have = "has" if len(silent) == 1 else "have"
        reference = reference_of(protocol, subset, first)
        raise SpkembError(f"{name} {subset}: {len(silent)} of its {plural(len(files), 'file')} {have} no reference "
                          f"speech ({first['uri']!r} first: no SPEAKER turn for it in {reference}"
                          f"{inside}), and a reference without speech cannot be scored: add its turns, or take "
                          "the file out of the subset's uri list")


def diarization_references(protocol: Any, name: str, subset: str) -> list[Any]:
    """The files of ``subset`` of a diarization protocol, their references read and checked, each
    holding reference speech to score against.

    Raises
    ------
    ProtocolError
        A subset the protocol lacks; a bad line of an RTTM or UEM (``FILE:LINE``).
    SpkembError
        A protocol of another task; a subset without speaker turns, or a file without reference speech.
    """
    require_diarization(protocol, name)
    files = reference_files(protocol, name, subset)
    require_references(files, protocol, name, subset)
    return files
