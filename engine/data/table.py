"""The training index as columns: what a listing found, and what the cache keeps.

``Listed`` is what listing a subset yields (before any audio file is opened): every file's
uri and audio path, and each speaker's speech regions in it. ``assemble`` joins it with the
file checks into an ``IndexTable``: readable files only, regions clipped to each file's
duration, speakers sorted. An ``IndexTable`` is saved as one ``.npy`` per column in a
folder, with a manifest written last, and loaded memory-mapped after the manifest's check, so
that every process of a run shares the same pages and none trains on a damaged column.
"""

from __future__ import annotations

import json
import math
import reprlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.audio_checks import Problem
from engine.data.columns import StringColumn, StringColumnBuilder
from engine.data.manifest import open_checked, parse_json, write_manifest
from engine.errors import CacheError
from engine.regular_files import read_regular

#: bump when the meaning of a column changes: caches of another format are rebuilt
#: (2: a manifest checked on load)
FORMAT = 2
#: meta.json lists every unusable file (~250 bytes each): a million of them is ~0.25 GB
MAX_META_BYTES = 1 << 30

_ARRAYS = ("duration", "frames", "sample_rate", "mtime_ns", "size", "label_file",
           "reg_label", "reg_file", "reg_start", "reg_end")
_STRINGS = ("uris", "paths", "labels")


@dataclass
class Listed:
    """A subset as listed: files in protocol order, regions in (file, label, start) order.

    ``mentions`` pair a file with every label its annotation names, even one whose turns all
    fall outside ``annotated``: such a speaker is reported, not silently dropped.
    """

    uris: StringColumn
    paths: StringColumn
    labels: list[str]  # label id -> label, in order of first mention
    men_file: np.ndarray  # (mentions,) int32
    men_label: np.ndarray  # (mentions,) int32
    reg_file: np.ndarray  # (regions,) int32
    reg_label: np.ndarray  # (regions,) int32
    reg_start: np.ndarray  # (regions,) float64, seconds
    reg_end: np.ndarray  # (regions,) float64


class ListedBuilder:
    """Collects a listing file by file into compact arrays (no per-file object kept)."""

    def __init__(self) -> None:
        self.uris, self.paths = StringColumnBuilder(), StringColumnBuilder()
        self.label_ids: dict[str, int] = {}
        self.men_file, self.men_label = array("i"), array("i")
        self.reg_file, self.reg_label = array("i"), array("i")
        self.reg_start, self.reg_end = array("d"), array("d")

    def __len__(self) -> int:
        return len(self.uris)

    def add(self, uri: str, path: str, regions: dict[str, list[tuple[float, float]]]) -> None:
        f = len(self.uris)
        self.uris.append(uri)
        self.paths.append(path)
        for label, intervals in regions.items():
            s = self.label_ids.setdefault(label, len(self.label_ids))
            self.men_file.append(f)
            self.men_label.append(s)
            for start, end in intervals:
                self.reg_file.append(f)
                self.reg_label.append(s)
                self.reg_start.append(start)
                self.reg_end.append(end)

    def build(self) -> Listed:
        return Listed(uris=self.uris.build(), paths=self.paths.build(), labels=list(self.label_ids),
                      men_file=np.frombuffer(self.men_file, dtype=np.int32).copy(),
                      men_label=np.frombuffer(self.men_label, dtype=np.int32).copy(),
                      reg_file=np.frombuffer(self.reg_file, dtype=np.int32).copy(),
                      reg_label=np.frombuffer(self.reg_label, dtype=np.int32).copy(),
                      reg_start=np.frombuffer(self.reg_start, dtype=np.float64).copy(),
                      reg_end=np.frombuffer(self.reg_end, dtype=np.float64).copy())


@dataclass
class Checked:
    """What the file checks found, one row per listed file."""

    frames: np.ndarray  # (files,) int64; 0 where unusable
    sample_rate: np.ndarray  # (files,) int32
    mtime_ns: np.ndarray  # (files,) int64
    size: np.ndarray  # (files,) int64
    problems: dict[int, str]  # listed file -> why it cannot be used
    reused: int = 0  # files whose check was taken from an earlier index


@dataclass
class IndexTable:
    """Readable files, their speakers' speech regions (clipped to the audio), sorted speakers."""

    uris: StringColumn
    paths: StringColumn
    duration: np.ndarray  # (files,) float64 seconds: frames / sample rate
    frames: np.ndarray  # (files,) int64
    sample_rate: np.ndarray  # (files,) int32
    mtime_ns: np.ndarray  # (files,) int64, when checked
    size: np.ndarray  # (files,) int64, when checked
    labels: StringColumn  # (speakers,) sorted
    label_file: np.ndarray  # (speakers,) int32: first file that names the speaker
    reg_label: np.ndarray  # (regions,) int32, sorted (label, then file order, then start)
    reg_file: np.ndarray  # (regions,) int32
    reg_start: np.ndarray  # (regions,) float64
    reg_end: np.ndarray  # (regions,) float64
    problems: list[Problem] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def silent_files(self) -> np.ndarray:
        """Readable files in which no speaker has a speech region (no turn in the annotation, or none
        inside annotated and the audio), as indices."""
        spoken = np.zeros(len(self.paths), dtype=bool)
        spoken[self.reg_file] = True
        return np.flatnonzero(~spoken)


def assemble(listed: Listed, checked: Checked) -> IndexTable:
    """Join a listing and its file checks: unreadable files out, regions clipped, labels sorted."""
    n = len(listed.uris)
    ok = np.ones(n, dtype=bool)
    ok[list(checked.problems)] = False
    problems = [Problem(path=listed.paths[i], problem=checked.problems[i]) for i in sorted(checked.problems)]
    keep = np.flatnonzero(ok)
    renum = np.cumsum(ok, dtype=np.int64) - 1  # listed file -> readable file
    duration = checked.frames[keep] / checked.sample_rate[keep].astype(np.float64)

    men = ok[listed.men_file]
    present = np.unique(listed.men_label[men])
    names = [listed.labels[i] for i in present]
    order = sorted(range(len(names)), key=names.__getitem__)
    new_label = np.full(len(listed.labels), -1, dtype=np.int32)
    new_label[present[order]] = np.arange(len(order), dtype=np.int32)
    label_file = np.full(len(order), np.iinfo(np.int32).max, dtype=np.int64)
    np.minimum.at(label_file, new_label[listed.men_label[men]], renum[listed.men_file[men]])

    rows = ok[listed.reg_file]
    files = renum[listed.reg_file[rows]]
    start = np.maximum(0.0, listed.reg_start[rows])
    end = np.minimum(duration[files], listed.reg_end[rows])
    inside = end > start
    label = new_label[listed.reg_label[rows]][inside]
    # stable: within a speaker, regions stay in file order, then in time order
    by_label = np.argsort(label, kind="stable")
    return IndexTable(
        uris=listed.uris.take(keep), paths=listed.paths.take(keep), duration=duration,
        frames=checked.frames[keep],
        sample_rate=checked.sample_rate[keep].astype(np.int32), mtime_ns=checked.mtime_ns[keep],
        size=checked.size[keep], labels=StringColumn.from_strings(names[i] for i in order),
        label_file=label_file.astype(np.int32), reg_label=label[by_label].astype(np.int32),
        reg_file=files[inside][by_label].astype(np.int32), reg_start=start[inside][by_label],
        reg_end=end[inside][by_label], problems=problems)


def _column_files() -> list[str]:
    return ([f"{name}.{part}.npy" for name in _STRINGS for part in ("data", "offsets")]
            + [f"{name}.npy" for name in _ARRAYS])


def save_table(table: IndexTable, folder: Path) -> None:
    """Write every column of ``table`` into ``folder`` (which must exist and be empty), then its
    manifest, last (``engine.data.manifest``): a folder without one is not an index."""
    for name in _STRINGS:
        getattr(table, name).save(folder, name)
    for name in _ARRAYS:
        np.save(folder / f"{name}.npy", np.asarray(getattr(table, name)))
    meta = {"format": FORMAT, "info": table.info,
            "problems": [{"path": p.path, "problem": p.problem} for p in table.problems]}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    write_manifest(folder, key=str(table.info.get("key", folder.name)), format=FORMAT)


def read_meta(folder: Path) -> dict[str, Any] | None:
    """The cache folder's meta.json, its ``info`` checked (``load_table`` checks the rest), or None
    when absent, unreadable, of another format or with an unusable ``info``: enough to tell whether
    an entry is recent."""
    try:
        meta = parse_json(read_regular(folder / "meta.json", MAX_META_BYTES))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or info_wrong(meta.get("info")) is not None:
        return None
    return meta


def _real(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float: float() of it fails where the time is used
        return False


def info_wrong(info: Any) -> str | None:
    """What makes ``info`` unusable (a field the index's users read, of another type), or None: a
    forged meta.json under a manifest of its own would otherwise fail where the field is used."""
    if not isinstance(info, dict):
        return f"info is {type(info).__name__}, not an object"
    if "built_at" in info and not _real(info["built_at"]):
        return f"info.built_at is {reprlib.repr(info['built_at'])}, not a time"
    repeated = info.get("repeated")
    if repeated is not None and not (isinstance(repeated, int) and not isinstance(repeated, bool) and repeated >= 0):
        return f"info.repeated is {reprlib.repr(repeated)}, not a count"
    first = info.get("repeated_file")
    if first is not None and not (isinstance(first, list) and all(isinstance(p, str) for p in first)):
        return f"info.repeated_file is {reprlib.repr(first)}, not a list of paths"
    return None


def load_table(folder: Path, mmap: bool = True, *, key: str | None = None) -> IndexTable:
    """The table saved in ``folder``, checked against its manifest, its columns memory-mapped
    (read-only) unless ``mmap`` is False.

    Raises
    ------
    CacheError
        When a file of ``folder`` is missing, damaged or altered, or the manifest does not
        describe an index of ``key`` (default: the folder's name) in this format.
    """
    opened = open_checked(folder, _column_files() + ["meta.json"], key=key or folder.name, format=FORMAT,
                          mmap=mmap)
    try:
        meta = parse_json(opened.texts["meta.json"])
        problems = [Problem(path=p["path"], problem=p["problem"]) for p in meta.get("problems", [])]
        info = meta.get("info", {})
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise CacheError(f"meta.json is not an index's ({type(e).__name__}: {e})", folder=folder) from e
    wrong = info_wrong(info) or next(("a problem whose path or reason is not text" for p in problems
                                      if not (isinstance(p.path, str) and isinstance(p.problem, str))), None)
    if wrong is not None:
        raise CacheError(f"meta.json is not an index's ({wrong})", folder=folder)
    a = opened.arrays
    columns: dict[str, Any] = {name: StringColumn(a[f"{name}.data.npy"], a[f"{name}.offsets.npy"])
                               for name in _STRINGS}
    columns.update({name: a[f"{name}.npy"] for name in _ARRAYS})
    table = IndexTable(**columns, problems=problems, info=dict(info))
    wrong = inconsistency(table)
    if wrong is not None:
        raise CacheError(f"its columns do not agree ({wrong})", folder=folder)
    return table


def _strings_wrong(column: StringColumn) -> bool:
    offsets = column.offsets
    return offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(column.data) \
        or bool(np.any(np.diff(offsets) < 0))


def inconsistency(t: IndexTable) -> str | None:
    """What makes ``t`` no index (a column of another length, a region of a file or speaker that is
    not there, a bound out of its file), or None. The manifest proves a cache entry is what its
    builder wrote; these checks keep an entry forged with a manifest of its own from failing deep in
    a loader worker (an IndexError) or training on regions outside the audio."""
    files, speakers, regions = len(t.paths), len(t.labels), len(t.reg_file)
    wrong_string = next((n for n in _STRINGS if _strings_wrong(getattr(t, n))), None)
    if wrong_string is not None:
        return f"{wrong_string}: offsets that are not increasing from 0 to the data's end"
    expected = {**dict.fromkeys(("uris", "duration", "frames", "sample_rate", "mtime_ns", "size"), files),
                "label_file": speakers, **dict.fromkeys(("reg_label", "reg_start", "reg_end"), regions)}
    off = next((n for n, rows in expected.items() if len(getattr(t, n)) != rows), None)
    if off is not None:
        return f"{off} has {len(getattr(t, off))} rows, not {expected[off]}"
    checks = [
        ("sample_rate", lambda: bool(np.all(t.sample_rate > 0))),
        ("duration", lambda: bool(np.all(np.isfinite(t.duration) & (t.duration > 0)))),
        ("label_file", lambda: bool(np.all((t.label_file >= 0) & (t.label_file < files)))),
        ("reg_file", lambda: bool(np.all((t.reg_file >= 0) & (t.reg_file < files)))),
        ("reg_label", lambda: bool(np.all((t.reg_label >= 0) & (t.reg_label < speakers)))
         and bool(np.all(np.diff(t.reg_label) >= 0))),
        ("reg_start", lambda: bool(np.all(np.isfinite(t.reg_start) & (t.reg_start >= 0)))),
        ("reg_end", lambda: bool(np.all((t.reg_end > t.reg_start) & (t.reg_end <= t.duration[t.reg_file])))),
    ]
    return next((f"{name} out of its range" for name, ok in checks if not ok()), None)
