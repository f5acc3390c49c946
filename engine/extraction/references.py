"""The references of the diarization check: every RTTM and UEM line checked
(``engine.data.reference_lines``), every file read, and every file holding reference speech.
"""

from __future__ import annotations

import warnings
from typing import Any

from engine.data.cache_key import subset_source
from engine.data.protocols import subset_files
from engine.data.reference_lines import FORMATS, check_lines, check_subset_files, entry_path
from engine.errors import ProtocolError


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
