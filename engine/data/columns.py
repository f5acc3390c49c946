"""Columns of strings as two arrays, so that a million paths are two objects, not a million.

A forked DataLoader worker that reads ``paths[i]`` from a Python list touches the string's
reference count, which copies its memory page into the worker (copy-on-write): over an
epoch every worker ends up with its own copy of every path. One UTF-8 buffer and its
offsets, memory-mapped from the cache, are read without writing anything.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np


class StringColumn:
    """``n`` strings: string ``i`` is ``data[offsets[i]:offsets[i + 1]]`` decoded as UTF-8."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self.data = data  # (bytes,) uint8
        self.offsets = offsets  # (n + 1,) int64

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> StringColumn:
        encoded = [s.encode("utf-8") for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return cls(data, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int | np.integer) -> str:
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"string {i} of a column of {len(self)}")
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self[i]

    def __contains__(self, item: object) -> bool:
        return any(s == item for s in self)

    def tolist(self) -> list[str]:
        return list(self)

    def take(self, rows: np.ndarray) -> StringColumn:
        """The strings of ``rows``, in that order, as a new column."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == len(self) and np.array_equal(rows, np.arange(len(self))):
            return self  # every string, in order: nothing to copy
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # every byte's source position, without a Python loop over the strings
        source = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return StringColumn(np.asarray(self.data)[source], offsets)

    def save(self, folder: Path, name: str) -> None:
        np.save(folder / f"{name}.data.npy", np.asarray(self.data))
        np.save(folder / f"{name}.offsets.npy", np.asarray(self.offsets))

    @classmethod
    def load(cls, folder: Path, name: str, mmap: bool = True) -> StringColumn:
        mode: Literal["r"] | None = "r" if mmap else None
        return cls(np.load(folder / f"{name}.data.npy", mmap_mode=mode),
                   np.load(folder / f"{name}.offsets.npy", mmap_mode=mode))


class StringColumnBuilder:
    """Appends strings into a growing buffer (no per-string object kept)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("q")

    def append(self, s: str) -> None:
        self._data += s.encode("utf-8")
        self._ends.append(len(self._data))

    def __len__(self) -> int:
        return len(self._ends)

    def build(self) -> StringColumn:
        offsets = np.zeros(len(self._ends) + 1, dtype=np.int64)
        offsets[1:] = np.frombuffer(self._ends, dtype=np.int64)
        # a view of the buffer, not a copy (a million paths are ~100 MB)
        data, self._data = self._data, bytearray()
        return StringColumn(np.frombuffer(data, dtype=np.uint8), offsets)
