"""Listing a database.yml subset without building a million pyannote objects — same answer.

pyannote.database reads a subset's RTTM into one ``Annotation`` per uri row by row
(``pandas.iterrows``) and crops each to its UEM ``Timeline``: at VoxCeleb2's size that is
minutes and gigabytes. For the common shape (a uri list, one RTTM and one UEM file or none, read
by pyannote.database's own RTTM and UEM loaders) this module reads the same files with the
same ``pandas.read_csv`` call, keeps the same rows (``SPEAKER`` lines, segments longer than
pyannote.core's precision), and hands each file's turns to the same ``intervals_of`` that
the pyannote listing uses. pyannote's crop of annotation by annotated changes nothing there
(the regions are intersected with annotated anyway) except through its microsecond
tolerance: a file with two boundaries closer than ``DELICATE`` seconds is built and cropped
with pyannote.core's own objects instead. The uri list is read by pyannote.database's
``load_lst``; tests compare the two readers on lists made to trip them.

Anything else (templated entries, other loaders, glob audio templates, rounding set on
``Segment``) returns None: the caller lists through pyannote.database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import numpy as np

from engine.data.cache_key import SubsetSource, is_template
from engine.data.protocols import expected_audio
from engine.data.reference_lines import RTTM, UEM, Format, check_lines
from engine.data.speech_regions import _intersect, _merge, intervals_of, speech_intervals
from engine.data.table import Listed, ListedBuilder
from engine.errors import ProtocolError

#: boundaries closer than this (and segments shorter) go through pyannote.core's objects
DELICATE = 1e-5
#: rows per pandas chunk: a stop request is handled between two chunks
ROWS_PER_CHUNK = 200_000
_RTTM_NAMES = ["type", "uri", "NA2", "start", "duration", "NA3", "NA4", "speaker", "NA5", "NA6"]


def _default_loader(suffix: str, name: str) -> bool:
    from pyannote.database.custom import LOADERS

    ep = LOADERS.get(suffix)
    return ep is not None and ep.value == f"pyannote.database.loader:{name}"


def applies(source: SubsetSource, templates: list[str]) -> bool:
    """Whether the fast reader gives pyannote.database's answer for this subset."""
    from pyannote.core import segment

    e = source.entries
    uri = e.get("uri", e.get("uris"))
    ann, annotated = e.get("annotation"), e.get("annotated")
    # no `annotated:` at all (many VoxCeleb lists): nothing is cropped, every turn counts
    uem = annotated is None or (isinstance(annotated, str) and not is_template(annotated)
                                and Path(annotated).suffix == ".uem" and _default_loader(".uem", "UEMLoader"))
    return (isinstance(uri, str) and isinstance(ann, str) and uem
            and not any(is_template(v) for v in (uri, ann))
            and Path(ann).suffix == ".rttm" and _default_loader(".rttm", "RTTMLoader")
            and not getattr(segment, "AUTO_ROUND_TIME", False)
            and bool(templates) and not any("*" in t for t in templates))


def _read(path: Path, kind: Format, names: list[str], dtype: dict[str, Any], **kw: Any) -> Any:
    """pyannote.database's ``read_csv`` call, in chunks (so that a stop is not held back)."""
    import pandas as pd

    try:
        chunks = list(pd.read_csv(path, names=names, dtype=dtype, sep=r"\s+", chunksize=ROWS_PER_CHUNK, **kw))
    except Exception as e:  # pandas' parser errors: the file's fault, named by its line where it can be
        check_lines(path, kind)
        raise ProtocolError(f"{path} cannot be read: {e} — fix the file") from e
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=names)


def _check_times(path: Path, kind: Format, times: np.ndarray) -> None:
    """Refuse by ``FILE:LINE`` a file whose speech lines hold a time that is not finite: pandas reads
    ``nan`` as a number, and such a turn left training unsaid. (A negative duration is an empty turn,
    which pyannote.database drops too: the listing keeps to what it lists.)"""
    if not np.isfinite(times).all():
        check_lines(path, kind)


def _grouped(uris: Any, keys: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row order grouping equal uris (stable), and each key's [lo, hi) slice of it (empty if absent)."""
    import pandas as pd

    codes, uniques = pd.factorize(uris)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    where = pd.Index(uniques).get_indexer(keys)
    lo = np.where(where >= 0, bounds[np.maximum(where, 0)], 0)
    hi = np.where(where >= 0, bounds[np.maximum(where, 0) + 1], 0)
    return order, lo, hi


def _audio_paths(uris: list[str], templates: list[str], database: str) -> list[str] | None:
    """What ``engine.data.protocols``'s audio preprocessor (pyannote's FileFinder) gives each uri."""
    single = len(templates) == 1
    paths = []
    for uri in uris:
        candidates = [t.format(uri=uri, database=database) for t in templates]
        if single:
            p = candidates[0]
            if "//" in p or "/./" in p or p.endswith("/") or p.endswith("/."):
                p = str(Path(p)) if os.path.isfile(p) else p  # FileFinder's Path normalises
            paths.append(p)
            continue
        found = [p for p in candidates if os.path.isfile(p)]
        if len(found) > 1:
            return None  # FileFinder refuses it: let pyannote.database say so
        paths.append(str(Path(found[0])) if found else expected_audio(candidates))
    return paths


def _delicate(turns: dict[str, list[tuple[float, float]]], annotated: list[tuple[float, float]]) -> bool:
    """Whether pyannote.core's microsecond tolerance could matter for this file."""
    ends = sorted({x for ivs in turns.values() for iv in ivs for x in iv} | {x for iv in annotated for x in iv})
    if any(b - a <= DELICATE for a, b in pairwise(ends)):
        return True
    return any(e - s <= DELICATE for ivs in turns.values() for s, e in ivs) or \
        any(e - s <= DELICATE for s, e in annotated)


def _regions(turns: dict[str, list[tuple[float, float]]],
             annotated: list[tuple[float, float]]) -> dict[str, list[tuple[float, float]]]:
    """``intervals_of``, less the speakers pyannote's crop removes.

    pyannote.database crops the annotation by a non-empty annotated that does not cover it;
    a speaker with no turn inside annotated then leaves the annotation (with a covering or
    empty annotated it stays, with no region). Boundaries are far apart here (not delicate),
    so covering and overlapping are plain interval questions.
    """
    regions = intervals_of(turns, annotated)
    if not annotated:
        return regions
    allowed = _merge(annotated)
    inside = {label: _intersect(_merge(ivs), allowed) for label, ivs in turns.items()}
    if all(inside[label] == _merge(ivs) for label, ivs in turns.items()):
        return regions
    return {label: ivs for label, ivs in regions.items() if inside[label]}


def _with_pyannote(uri: str, rows: list[tuple[int, float, float, str]],
                   annotated: list[tuple[float, float]]) -> dict[str, list[tuple[float, float]]]:
    """One file through pyannote.core's Annotation, Timeline and pyannote.database's crop."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.database.protocol.segmentation import crop_annotation

    annotation = Annotation(uri=uri)
    for track, start, end, label in rows:
        annotation[Segment(start, end), track] = label
    timeline = Timeline([Segment(s, e) for s, e in annotated], uri=uri)
    # pyannote annotates a ProtocolFile; crop_annotation reads these two keys, of any mapping
    cropped = crop_annotation({"annotation": annotation, "annotated": timeline})  # type: ignore[arg-type]
    return speech_intervals({"annotation": cropped, "annotated": timeline})


@dataclass(frozen=True)
class _Spans:
    """Every file's UEM spans: ``start[lo[i]:hi[i]]`` and ``end[lo[i]:hi[i]]`` are file ``i``'s."""

    start: list[float]
    end: list[float]
    lo: np.ndarray
    hi: np.ndarray

    def of(self, i: int) -> list[tuple[float, float]]:
        return [(self.start[r], self.end[r]) for r in range(self.lo[i], self.hi[i])]


def _uem_spans(source: SubsetSource, uris: list[str], precision: float) -> _Spans | None:
    """The subset's UEM read as pyannote.database reads it, grouped by uri; None without `annotated:`."""
    entry = source.entries.get("annotated")
    if entry is None:
        return None
    path = source.resolve(entry)
    uem = _read(path, UEM, ["uri", "NA1", "start", "end"],
                {"uri": str, "NA1": "category", "start": float, "end": float})
    u_start, u_end = uem["start"].to_numpy(np.float64), uem["end"].to_numpy(np.float64)
    _check_times(path, UEM, np.column_stack([u_start, u_end]))
    u_keep = np.flatnonzero(uem["uri"].notna().to_numpy() & ((u_end - u_start) > precision))
    u_order, u_lo, u_hi = _grouped(uem["uri"].to_numpy(object)[u_keep], uris)
    return _Spans(u_start[u_keep][u_order].tolist(), u_end[u_keep][u_order].tolist(), u_lo, u_hi)


def list_fast(source: SubsetSource, templates: list[str], advance: Callable[[int], None]) -> Listed | None:
    """The subset as ``listing.list_with_pyannote`` would list it, or None where this reader does not apply."""
    if not applies(source, templates):
        return None
    from pyannote.core.segment import SEGMENT_PRECISION
    from pyannote.database.loader import load_lst

    e = source.entries
    # a str: applies() checked it; blank lines name no file (iter_subset skips them too)
    uris = [uri for uri in load_lst(source.resolve(cast(str, e.get("uri", e.get("uris"))))) if uri]
    paths = _audio_paths(uris, templates, source.database)
    if paths is None:
        return None
    # the columns pyannote.database uses, parsed by the same parser with the same dtypes; the others
    # (and the repeated "SPEAKER") as categories, not a million Python strings each. Every column is
    # read: with `usecols`, pandas cut a line of too many fields (`John Smith` as the speaker) unsaid
    rttm_path = source.resolve(e["annotation"])
    rttm = _read(rttm_path, RTTM, _RTTM_NAMES,
                 {"type": "category", "uri": str, "start": float, "duration": float, "speaker": str,
                  **{name: "category" for name in _RTTM_NAMES if name.startswith("NA")}},
                 keep_default_na=True)
    start = rttm["start"].to_numpy(np.float64)
    end = start + rttm["duration"].to_numpy(np.float64)
    speech = (rttm["type"] == "SPEAKER").to_numpy()  # other lines (SPKR-INFO) may leave their times <NA>
    _check_times(rttm_path, RTTM, np.column_stack([start, end - start])[speech])
    # the rows an Annotation keeps: SPEAKER lines, non-empty segments (Segment.__bool__)
    keep = speech & rttm["uri"].notna().to_numpy() & ((end - start) > SEGMENT_PRECISION)
    rows = np.flatnonzero(keep)
    labels = rttm["speaker"].to_numpy(object)[rows]
    r_order, r_lo, r_hi = _grouped(rttm["uri"].to_numpy(object)[rows], uris)
    spans = _uem_spans(source, uris, SEGMENT_PRECISION)

    t_rows, t_start, t_end = rows[r_order].tolist(), start[rows][r_order].tolist(), end[rows][r_order].tolist()
    t_label = [str(x) for x in labels[r_order]]
    del rttm
    builder = ListedBuilder()
    for i, uri in enumerate(uris):
        turns: dict[str, list[tuple[float, float]]] = {}
        for r in range(r_lo[i], r_hi[i]):
            turns.setdefault(t_label[r], []).append((t_start[r], t_end[r]))
        annotated = spans.of(i) if spans is not None else None
        if annotated is None:  # no `annotated:` entry: as speech_intervals of such a file, nothing cropped
            regions = intervals_of(turns, None)
        elif _delicate(turns, annotated):
            track = [(t_rows[r], t_start[r], t_end[r], t_label[r]) for r in range(r_lo[i], r_hi[i])]
            regions = _with_pyannote(uri, track, annotated)
        else:
            regions = _regions(turns, annotated)
        builder.add(uri, paths[i], regions)
        if i % 1000 == 999:
            advance(1000)
    advance(len(uris) % 1000)
    return builder.build()
