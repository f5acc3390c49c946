"""The speech of each speaker of a file: ``annotation`` ∩ ``annotated``, without overlapped speech.

Sorted, disjoint (start, end) intervals in plain floats (``speech_intervals``, ``intervals_of``:
what the training index is built from, a million files at start-up) or pyannote.core Timelines
(``speech_regions``). The files come from a protocol (``engine.data.protocols``) or from the fast
reader of its lists (``engine.data.fast_listing``), which shares the same interval arithmetic.
"""

from __future__ import annotations

import warnings
from typing import Any

from engine.errors import ProtocolError

Interval = tuple[float, float]


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Sorted union of intervals (empty ones dropped)."""
    merged: list[Interval] = []
    for start, end in sorted(iv for iv in intervals if iv[1] > iv[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """Intersection of two sorted unions."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if end > start:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """``a`` minus ``b``, both sorted unions."""
    out: list[Interval] = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > start:
                out.append((start, b[k][0]))
            start = max(start, b[k][1])
            k += 1
        if end > start:
            out.append((start, end))
    return out


def _overlap(unions: list[list[Interval]]) -> list[Interval]:
    """Where two or more of the unions overlap (a sweep over their boundaries)."""
    # at equal times, ends (-1) sort before starts (+1): touching turns do not overlap
    events = sorted([(s, 1) for u in unions for s, _ in u] + [(e, -1) for u in unions for _, e in u])
    out: list[Interval] = []
    depth, since = 0, 0.0
    for time, step in events:
        if step > 0 and depth == 1:
            since = time
        elif step < 0 and depth == 2 and time > since:
            out.append((since, time))
        depth += step
    return _merge(out)


def speech_intervals(file: Any, exclusive: bool = True) -> dict[str, list[Interval]]:
    """Speech of each speaker of a file, ``annotation`` ∩ ``annotated``, as sorted (start, end).

    The plain-tuple twin of ``speech_regions``, for indexing a million files at start-up
    without building pyannote.core Timelines for each.

    Parameters
    ----------
    file : ProtocolFile or dict
        With ``annotation`` (pyannote.core.Annotation) and optionally ``annotated``
        (Timeline; the annotation's extent when absent).
    exclusive : bool, optional
        Remove the regions where another speaker talks too (default), so that every training
        chunk is single-speaker speech (docs/data.md, "How training chunks are drawn").

    Returns
    -------
    dict
        Speaker label (as str) -> sorted, disjoint (start, end) intervals in seconds.
    """
    with warnings.catch_warnings():
        # pyannote.database crops annotation to annotated itself and warns that it did
        warnings.filterwarnings("ignore", message='Existing precomputed key "annotation"')
        annotation = file.get("annotation")
    if annotation is None:  # a protocol defined in Python may give files without speaker turns
        raise ProtocolError(f"file {file['uri']} has no annotation (speaker turns): training draws each "
                            "speaker's chunks from them — give the protocol's files an `annotation`")
    turns: dict[str, list[Interval]] = {}
    for segment, _, label in annotation.itertracks(yield_label=True):
        turns.setdefault(str(label), []).append((segment.start, segment.end))
    annotated = file.get("annotated")  # None where the protocol has no `annotated:` (UEM) entry
    spans = [(s.start, s.end) for s in annotated] if annotated is not None else None
    return intervals_of(turns, spans, exclusive)


def intervals_of(turns: dict[str, list[Interval]], annotated: list[Interval] | None,
                 exclusive: bool = True) -> dict[str, list[Interval]]:
    """``speech_intervals`` of plain numbers: speaker -> turns, and the annotated parts (or None).

    The one implementation behind both the pyannote.database listing and the fast reader of
    ``engine.data.fast_listing``, so that the two cannot differ after parsing.
    """
    if annotated is not None:
        allowed = _merge(annotated)
    else:
        allowed = _merge([iv for ivs in turns.values() for iv in ivs])
        allowed = [(allowed[0][0], allowed[-1][1])] if allowed else []
    regions = {label: _intersect(_merge(ivs), allowed) for label, ivs in turns.items()}
    if exclusive and len(regions) > 1:
        shared = _overlap(list(regions.values()))
        if shared:
            regions = {label: _subtract(ivs, shared) for label, ivs in regions.items()}
    return regions


def speech_regions(file: Any, exclusive: bool = True) -> dict[str, Any]:
    """Speech of each speaker of a file: ``annotation`` ∩ ``annotated``, as Timelines.

    Parameters
    ----------
    file : ProtocolFile or dict
        With ``annotation`` (pyannote.core.Annotation) and optionally ``annotated``
        (Timeline; the annotation's extent when absent).
    exclusive : bool, optional
        Remove the regions where another speaker talks too (default): see ``speech_intervals``.

    Returns
    -------
    dict
        Speaker label -> pyannote.core.Timeline of merged regions (possibly empty).
    """
    from pyannote.core import Segment, Timeline

    uri = file.get("uri") if hasattr(file, "get") else None
    return {label: Timeline([Segment(start, end) for start, end in ivs], uri=uri)
            for label, ivs in speech_intervals(file, exclusive).items()}
