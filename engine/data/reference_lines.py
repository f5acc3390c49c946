"""RTTM and UEM files read as untrusted input, line by line.

pyannote.database reads them with pandas: a start that is not a number, or a byte that is not
UTF-8, fails with a traceback that names neither file nor line, and NaN, infinite, negative or
reversed bounds are read as they are (a UEM of NaN bounds scores DER 0 %, one of 1e308 seconds
overflows a frame count). :func:`check_lines` names the first line pyannote.database would fail
on or read wrongly, ``FILE:LINE``; :func:`check_subset_files` checks every file a subset's
``annotation`` and ``annotated`` entries name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.console import plural
from engine.data.cache_key import SubsetSource, is_template, subset_source
from engine.errors import ProtocolError

#: the latest time a reference names, seconds (116 days): past it a bound is a typo, not a recording
MAX_SECONDS = 1e7
#: a number as pandas' C parser reads it (no ``1_0``, no ``0x10``), with NaN and infinity
NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)", re.IGNORECASE)


@functools.cache
def _missing_tokens() -> frozenset[str]:
    """The fields pandas reads as missing (``<NA>``, ``NA``, ``nan``…): a uri or a speaker spelt so is lost."""
    from pandas._libs.parsers import STR_NA_VALUES

    return frozenset(STR_NA_VALUES)


@dataclass(frozen=True)
class Format:
    """One kind of reference file: how many fields a line has, and which hold what."""

    name: str  # with its article, for a message
    example: str
    fields: int  # the most a line has
    least: int  # the fewest a line describing speech has
    uri: int
    start: int  # followed by the duration (RTTM) or the end (UEM)
    speaker: int | None
    duration: bool


RTTM = Format("an RTTM", "SPEAKER uri 1 START DURATION <NA> <NA> SPEAKER <NA> <NA>", fields=10, least=8,
              uri=1, start=3, speaker=7, duration=True)  # pyannote.database reads the last two as <NA> if absent
UEM = Format("a UEM", "uri 1 START END", fields=4, least=4, uri=0, start=2, speaker=None, duration=False)
FORMATS = {"annotation": RTTM, "annotated": UEM}
#: what separates the fields for pandas' ``sep=r"\s+"`` (its C parser: spaces and tabs, not Unicode spaces)
SEPARATOR = re.compile(r"[ \t]+")


def _number(token: str) -> float | None:
    return float(token) if NUMBER.fullmatch(token) else None


def _times(fields: list[str], kind: Format) -> str | None:
    """What is wrong with the start and duration (or end) of a line that describes speech."""
    tokens = fields[kind.start:kind.start + 2]
    values = [_number(t) for t in tokens]
    for name, token, value in zip(("start", "duration" if kind.duration else "end"), tokens, values, strict=True):
        if value is None:
            return f"its {name} {token!r} is not a number"
        if not 0 <= value <= MAX_SECONDS:  # NaN fails it too
            return f"its {name} {token} is not a time from 0 to {MAX_SECONDS:,.0f} seconds"
    start, second = (v or 0.0 for v in values)
    if kind.duration and start + second > MAX_SECONDS:
        return f"it ends after {MAX_SECONDS:,.0f} seconds"
    if not kind.duration and second <= start:
        return f"its end {tokens[1]} is not after its start {tokens[0]}"
    return None


def line_problem(text: str, kind: Format) -> str | None:
    """What is wrong with one line of a ``kind`` file, or None."""
    fields = [f for f in SEPARATOR.split(text.strip(" \t")) if f]
    if not fields:
        return None  # pandas skips blank lines
    if len(fields) > kind.fields:  # pandas fails on the line, or shifts every column by one on the first
        return f"it has {plural(len(fields), 'field')} where a line of {kind.name} file has {kind.fields}"
    if kind is RTTM and fields[0] != "SPEAKER":
        # other types (SPKR-INFO, comments) are skipped, but their times must still parse as numbers
        odd = [t for t in fields[3:5] if _number(t) is None and t not in _missing_tokens()]
        return f"its field {odd[0]!r} is neither a number nor <NA>" if odd else None
    if len(fields) < kind.least:
        return f"it has {plural(len(fields), 'field')} where a line of {kind.name} file has {kind.fields}"
    names = [fields[kind.uri]] + ([fields[kind.speaker]] if kind.speaker is not None else [])
    lost = [t for t in names if t in _missing_tokens()]
    if lost:
        return f"its uri or speaker {lost[0]!r} is read as missing by pyannote.database"
    return _times(fields, kind)


#: what ``first_only`` reads of a file
FIRST_BYTES = 64 * 1024


def check_lines(path: Path, kind: Format, *, first_only: bool = False) -> None:
    """Refuse the first line of ``path`` pyannote.database would fail on or read wrongly (``first_only``:
    look at its first line only, which pandas reads as a header would be: a field too many there makes
    the first column the index and shifts every other one, with no error).

    Raises
    ------
    ProtocolError
        ``FILE:LINE: what is wrong — the line's format``.
    """
    try:
        with open(path, "rb") as f:
            # the first line: a few KiB of VoxCeleb2's 100 MB RTTM, not all of it
            data = f.read(FIRST_BYTES) if first_only else f.read()
    except FileNotFoundError:
        return  # pyannote.database names a missing file itself
    lines = data.splitlines()
    if first_only and len(data) == FIRST_BYTES:
        lines = lines[:-1]  # cut where the read stopped
    for number, raw in enumerate(lines, start=1):
        try:
            problem = line_problem(raw.decode("utf-8"), kind)
        except UnicodeDecodeError as e:
            problem = f"byte {e.start + 1} of the line is not UTF-8 text"
        if problem:
            raise ProtocolError(f"{path}:{number}: {problem} — fix the line ({kind.name} line reads "
                                f"`{kind.example}`, times in seconds)")
        if first_only and raw.strip():
            return


def entry_path(source: SubsetSource, key: str, file: Mapping[str, Any] | None) -> Path | None:
    """The file the entry ``key`` names: a whole-subset file (``file`` None), or from a template, the
    one of the file whose keys (``uri``, ``database``, ``subset``…) are ``file``."""
    value = source.entries.get(key)
    if not isinstance(value, str) or is_template(value) != (file is not None):
        return None
    if file is not None:
        try:  # pyannote.database fills a template with the file's own keys
            value = value.format(**file)
        except (KeyError, IndexError, ValueError):
            return None  # pyannote.database names the template itself
    return source.resolve(value)


def _listed_uris(source: SubsetSource) -> list[str]:
    """The uris of the subset's list, read as pyannote.database reads them (blank lines name no file)."""
    value = source.entries.get("uri", source.entries.get("uris"))
    try:
        lines = source.resolve(value).read_text(encoding="utf-8").splitlines() if isinstance(value, str) else []
    except (OSError, UnicodeDecodeError):
        return []  # pyannote.database names the list itself
    return [line.strip() for line in lines if line.strip()]


def check_subset_files(protocol: Any, subset: str, *, templates: bool = True, first_only: bool = False) -> None:
    """:func:`check_lines` on every RTTM and UEM the subset's ``annotation`` and ``annotated`` entries
    name: the files for the whole subset, and (``templates``) each uri's file of a ``{uri}`` template;
    ``first_only``: the first line of each.

    Raises
    ------
    ProtocolError
        ``FILE:LINE`` of the first bad line.
    """
    source = subset_source(protocol, subset)
    if source is None:  # a protocol defined in Python: no file to read
        return
    for key, kind in FORMATS.items():
        path = entry_path(source, key, None)
        if path is not None:
            check_lines(path, kind, first_only=first_only)
    if not templates:
        return
    for uri in _listed_uris(source):
        file = {"uri": uri, "database": source.database, "subset": subset}
        for key, kind in FORMATS.items():
            path = entry_path(source, key, file)
            if path is not None:
                check_lines(path, kind, first_only=first_only)
