"""Every listed file checked once — and, when an earlier index exists, only files new or changed.

A file is stat'ed; when its (path, mtime, size) is the one an earlier index of the same
subset checked, that check is reused; otherwise ``soundfile`` opens it (``engine.data.audio_checks.probe``).
Checks run in threads (libsndfile releases the GIL; on a network filesystem the latency of
the opens dominates), submitted in bounded chunks: a stop request waits for at most the
chunks in flight, never for a million queued checks.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

import numpy as np

from engine.data.audio_checks import CHECK_THREADS, Problem, changed_error, probe, sane_rate
from engine.data.table import Checked, IndexTable
from engine.errors import AudioError

#: files per submitted chunk, and chunks in flight per thread
CHUNK = 256
IN_FLIGHT = 2

class Paths(Protocol):
    """What ``check_files`` reads of its paths: their number and each by position (a list, a ``StringColumn``)."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int, /) -> str: ...


#: (frames, sample rate, mtime_ns, size, problem or None) of one file
Result = tuple[int, int, int, int, str | None]


def _digest(path: str) -> int:
    return int.from_bytes(hashlib.blake2b(path.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


class Earlier:
    """The checks an earlier index made, looked up by path (hashes sorted, no dict of a million keys)."""

    def __init__(self, table: IndexTable) -> None:
        self.table = table
        digests = np.fromiter((_digest(p) for p in table.paths), dtype=np.int64, count=len(table.paths))
        self.order = np.argsort(digests, kind="stable")
        self.sorted = digests[self.order]

    def lookup(self, path: str, mtime_ns: int, size: int) -> tuple[int, int] | None:
        """(frames, sample rate) when ``path`` was checked with this mtime and size."""
        d = _digest(path)
        i = int(np.searchsorted(self.sorted, d))
        t = self.table
        while i < len(self.sorted) and self.sorted[i] == d:
            row = int(self.order[i])
            if t.paths[row] == path and int(t.mtime_ns[row]) == mtime_ns and int(t.size[row]) == size:
                return int(t.frames[row]), int(t.sample_rate[row])
            i += 1
        return None


def check_one(path: str, earlier: Earlier | None) -> tuple[Result, bool]:
    """The check of one file, and whether it was reused from ``earlier``."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and earlier is not None:
        known = earlier.lookup(path, st.st_mtime_ns, st.st_size)
        # an index written before rates were bounded may hold one: probed again, it is refused
        if known is not None and sane_rate(known[1]):
            return (known[0], known[1], st.st_mtime_ns, st.st_size, None), True
    try:
        info = probe(path)
    except AudioError as e:
        return (0, 0, 0, 0, str(e)), False
    assert st is not None  # probe found the file
    return (info.frames, info.samplerate, st.st_mtime_ns, st.st_size, None), False


def _check_chunk(paths: list[str], earlier: Earlier | None) -> tuple[list[Result], int]:
    results, reused = [], 0
    for path in paths:
        result, again = check_one(path, earlier)
        results.append(result)
        reused += again
    return results, reused


def check_files(paths: Paths, *, earlier: IndexTable | None = None,
                advance: Callable[[int], None] | None = None, threads: int = CHECK_THREADS) -> Checked:
    """Check every path; reuse ``earlier``'s checks of unchanged files.

    Parameters
    ----------
    paths : sequence of str
        Audio files, in listing order (a ``StringColumn`` is fine).
    earlier : IndexTable, optional
        An earlier index of the same subset.
    advance : callable, optional
        Called with the number of files just checked (progress).
    threads : int, optional
        Checking threads.

    Returns
    -------
    Checked
        One row per path; ``problems`` names each unusable one.
    """
    n = len(paths)
    frames = np.zeros(n, dtype=np.int64)
    rate = np.zeros(n, dtype=np.int32)
    mtime = np.zeros(n, dtype=np.int64)
    size = np.zeros(n, dtype=np.int64)
    problems: dict[int, str] = {}
    lookup = Earlier(earlier) if earlier is not None and len(earlier.paths) else None
    reused = 0
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="check")
    pending: dict[Future, int] = {}
    try:
        for first in range(0, n, CHUNK):
            if len(pending) >= threads * IN_FLIGHT:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                reused += _collect(done, pending, frames, rate, mtime, size, problems, advance)
            chunk = [paths[i] for i in range(first, min(n, first + CHUNK))]
            pending[pool.submit(_check_chunk, chunk, lookup)] = first
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            reused += _collect(done, pending, frames, rate, mtime, size, problems, advance)
    finally:
        # on a stop (an exception raised by the signal handler), drop what is queued
        pool.shutdown(wait=False, cancel_futures=True)
    return Checked(frames=frames, sample_rate=rate, mtime_ns=mtime, size=size, problems=problems,
                   reused=reused)


def _collect(done: set[Future], pending: dict[Future, int], frames: np.ndarray, rate: np.ndarray,
             mtime: np.ndarray, size: np.ndarray, problems: dict[int, str],
             advance: Callable[[int], None] | None) -> int:
    reused = 0
    for future in done:
        first = pending.pop(future)
        results, again = future.result()
        reused += again
        for i, (f, r, m, s, problem) in enumerate(results, first):
            frames[i], rate[i], mtime[i], size[i] = f, r, m, s
            if problem is not None:
                problems[i] = problem
        if advance is not None:
            advance(len(results))
    return reused


def changed_since(table: IndexTable) -> np.ndarray:
    """Rows of ``table`` whose file's size or mtime is not what the index saw (or that are gone).

    One ``os.stat`` per file, compared with the index's columns as arrays: a look at the whole
    training set before the first step. Its cost is the stat calls (``bench/scale.py``,
    ``change_check_s``: 13-15 s at 1.09 M files on a 2-core VM under a load of 8-9; 200 k
    stats took 1.2 s there, so a few seconds per million files on an idle machine).
    """
    n = len(table.paths)
    size = np.full(n, -1, dtype=np.int64)
    mtime = np.full(n, -1, dtype=np.int64)
    data, offsets = np.asarray(table.paths.data).tobytes(), np.asarray(table.paths.offsets).tolist()
    stat = os.stat
    for i in range(n):
        try:
            st = stat(data[offsets[i]:offsets[i + 1]])
        except OSError:
            continue
        size[i], mtime[i] = st.st_size, st.st_mtime_ns
    return np.flatnonzero((size != np.asarray(table.size)) | (mtime != np.asarray(table.mtime_ns)))


def changed_problems(table: IndexTable) -> list[Problem]:
    """``changed_since`` as problems, one per file, naming what changed (the same words as a read)."""
    problems = []
    for row in changed_since(table):
        path = table.paths[row]
        try:
            st = os.stat(path)
        except OSError as e:
            problems.append(Problem(path=path, problem=f"audio file {path} cannot be found any more: {e} — fix or "
                                    "replace the file, or remove it from the protocol"))
            continue
        size = int(table.size[row])
        what = (f"{st.st_size:,} bytes, {size:,} when indexed" if st.st_size != size else "modified since")
        problems.append(Problem(path=path, problem=str(changed_error(path, what))))
    return problems


def mended_since(table: IndexTable, *, now: float | None = None) -> list[str]:
    """The files ``table`` left out as unusable that were made, replaced or linked since it was built
    (a missing file converted, a broken one copied again): a cached index would go on leaving them out.

    A file that was missing counts once it exists, whatever its times (a folder moved into place keeps
    them); another counts when it, or the link to it, changed after the build, a time to come left out
    (a file unpacked with a date in the future would otherwise make every start index again)."""
    built = float(table.info.get("built_at", 0))
    now = time.time() if now is None else now
    mended = []
    for problem in table.problems:
        if problem.kind != "file":
            continue
        try:
            link, st = os.lstat(problem.path), os.stat(problem.path)
        except OSError:
            continue
        if "does not exist" in problem.problem:  # missing_error's words, whichever fix it names
            mended.append(problem.path)
            continue
        # a hard link keeps the file's old mtime: its inode's ctime says it was linked
        if any(built < t <= now + 60 for t in (st.st_mtime, st.st_ctime, link.st_mtime, link.st_ctime)):
            mended.append(problem.path)
    return mended
