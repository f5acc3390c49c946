"""The cached training index: listed and checked once per protocol subset, then loaded.

The cache lives in ``$SPKEMB_CACHE/index`` (default ``${XDG_CACHE_HOME:-~/.cache}/spkemb/index``),
one folder per protocol subset and, inside, one per key (``cache_key``): a changed list,
RTTM or UEM changes the key, and the next start builds again, checking with ``soundfile``
only the files new or changed since the previous index; the three keys used last are kept. A
build is written into a temporary folder (``.tmp-PID-KEY``), its manifest last, and renamed into
place; a lock file makes a second builder wait for the first. Every load checks the entry against
its manifest (``engine.data.manifest``): a damaged or altered entry is said in one warning line and
built again, never trained on. Temporary folders of builders that died are swept at the next start.
Under torchrun the local rank 0 of each node builds and the other ranks wait for the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.atomic import fsync_dir, no_space, pid_alive
from engine.data.cache_key import cache_key, subset_source
from engine.data.file_checks import check_files, mended_since
from engine.data.listing import chosen_reader, expected_files, list_subset, repeated_files
from engine.data.manifest import MANIFEST
from engine.data.protocols import get_registry, load_protocol
from engine.data.table import IndexTable, assemble, load_table, read_meta, save_table
from engine.errors import CacheError, DiskFull, SpkembError
from engine.progress import Progress

CACHE_ENV = "SPKEMB_CACHE"
POLL = 0.2
#: a temporary folder of a builder this old is stale even if its pid is alive (another machine)
STALE_AFTER = 24 * 3600
#: keys kept per subset, the most recently used first: two corpora under one protocol name (two
#: workspaces), or an edited list and the original, each start from the cache instead of evicting
#: the other's index (minutes to build again at VoxCeleb's size; about 0.2 GB each at 1.09 M files)
KEEP_KEYS = 3


def cache_root() -> Path:
    """Where cached indexes live: ``$SPKEMB_CACHE/index``, else the user's cache folder."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser() / "index"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "spkemb" / "index"


@dataclass(frozen=True)
class IndexRequest:
    protocol: str
    subset: str
    database: str | None = None
    reindex: bool = False  # build again, checking every file
    builder: bool = True  # False: wait for another process (rank) to build


def _fresh(folder: Path, newer_than: float | None) -> bool:
    meta = read_meta(folder)
    return meta is not None and (newer_than is None or meta["info"].get("built_at", 0) >= newer_than)


def _cached(folder: Path, newer_than: float | None, progress: Progress, warned: list[str]) -> IndexTable | None:
    """The entry at ``folder`` when present, recent enough and intact; else None.

    A damaged or altered entry (``CacheError``) is said once in ``warned``'s life (one warning
    line naming the folder) and left to be rebuilt: never trained on.
    """
    if not os.path.lexists(folder):
        return None
    if newer_than is not None and not _fresh(folder, newer_than):
        return None  # --reindex: built again whatever it holds
    try:
        table = load_table(folder)
    except CacheError as e:
        if not warned:
            warned.append(e.reason)
            progress.note(f"train: warning: the cached index {folder} is damaged ({e.reason}): building it "
                          f"again (--reindex does so too)")
        return None
    _said_loaded(table, folder, progress)
    return table


def training_table(request: IndexRequest, progress: Progress, root: Path | None = None) -> IndexTable:
    """The subset's index: loaded from the cache (checked against its manifest), or built
    (listed, checked) and cached first; a damaged entry is said in one line and built again.

    Raises
    ------
    ProtocolError
        When the protocol or its lists cannot be read.
    SpkembError
        When the cache folder cannot be written.
    """
    t0 = time.time()
    reader = chosen_reader()  # a misspelt reader is said before minutes of listing, even when the cache answers
    protocol = load_protocol(request.protocol, request.database)
    source = subset_source(protocol, request.subset)
    templates = [str(t) for t in get_registry(request.database).sources.get(request.protocol.split(".")[0], [])]
    key = cache_key(request.protocol, request.subset, protocol, source, templates)
    home = (root or cache_root()) / f"{request.protocol}.{request.subset}"
    folder = home / key
    newer_than = t0 if request.reindex else None
    warned: list[str] = []
    table = _cached(folder, newer_than, progress, warned)
    mended, stale = (mended_since(table) if table is not None else []), None
    if mended:  # every rank of a node sees the same files: they all build (or wait) alike
        progress.note(f"index: {len(mended):,} file(s) it left out as unusable changed since it was built "
                      f"(e.g. {mended[0]}): indexing again")
        stale, newer_than, table = table, t0, None
    if table is not None:
        if request.builder:
            _used(folder)
            sweep_stale(home)
        return table
    if not request.builder:
        return _wait_for(folder, newer_than, progress)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpkembError(f"cannot create the index cache folder {home}: {e} — set {CACHE_ENV} "
                          f"to a writable folder") from e
    with _build_lock(home, progress):
        table = _cached(folder, newer_than, progress, warned)  # built by the process we waited for
        if table is not None:
            return table
        earlier = stale or (None if request.reindex else _newest_other(home, key))
        for template in (t for t in templates if "**" in t):  # pyannote.database globs the tree once per uri
            progress.note(f"index: warning: the audio path template {template} searches every folder its ** "
                          "stands for, once per file: a large corpus takes hours to list — write the folders "
                          "out instead (e.g. /data/voxceleb2/dev/wav/{uri}.wav)")
        with progress.phase(f"listing {request.protocol} {request.subset}",
                            total=expected_files(source)) as phase:
            listed, used = list_subset(protocol, source, request.subset, templates, phase.advance, reader)
            phase.summary = f"read by {used}"
        repeated = repeated_files(listed.paths)
        with progress.phase("checking audio files", total=len(listed.paths)) as phase:
            checked = check_files(listed.paths, earlier=earlier, advance=phase.advance)
            phase.summary = (f"{checked.reused:,} unchanged since the last index, "
                             f"{len(checked.problems):,} unusable")
        with progress.phase("indexing", total=len(listed.paths)) as phase:
            listed_n, reused = len(listed.paths), checked.reused
            table = assemble(listed, checked)
            del listed, checked  # the table holds what is kept: free the rest before writing
            table.info = {"protocol": request.protocol, "subset": request.subset, "key": key,
                          "reader": used, "built_at": time.time(), "listed": listed_n,
                          "checks_reused": reused, "repeated": len(repeated), "repeated_file": repeated[:1],
                          "database_yml": str(source.database_yml) if source else None}
            try:
                _publish(table, home, folder)
            except OSError as e:
                raise SpkembError(f"cannot write the index cache {folder}: {e} — free some space, "
                                  f"or set {CACHE_ENV} to another folder") from e
            phase.advance(len(table.paths))
            phase.summary = f"{len(table.labels):,} speakers, cached in {folder}"
    table = load_table(folder)
    _say_repeated(table, progress)
    return table


def _signature(folder: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(folder / MANIFEST)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _wait_for(folder: Path, newer_than: float | None, progress: Progress) -> IndexTable:
    """Wait for the builder of this node to write ``folder``; then its table, checked.

    The manifest is checked again only when it changed (a new entry was renamed into place):
    polling never hashes the same damaged entry twice.
    """
    progress.note(f"index: waiting for another process to build {folder}")
    progress.activity = "waiting for another process to build the index"
    seen = None
    while True:
        now = _signature(folder)
        if now is not None and now != seen:
            seen = now
            if _fresh(folder, newer_than):
                try:
                    table = load_table(folder)
                    break
                except CacheError:
                    pass  # damaged, or replaced while read: the builder writes it again
        progress.tick()
        time.sleep(POLL)
    progress.activity = ""
    _said_loaded(table, folder, progress)
    return table


def _said_loaded(table: IndexTable, folder: Path, progress: Progress) -> None:
    progress.note(f"index: {len(table.paths):,} files, {len(table.labels):,} speakers from the cache {folder}")
    _say_repeated(table, progress)


def _say_repeated(table: IndexTable, progress: Progress) -> None:
    """The files the subset's list names more than once, said at every start (the index keeps them)."""
    count, first = table.info.get("repeated") or 0, table.info.get("repeated_file") or ["?"]
    if count:
        progress.note(f"index: warning: {count:,} file(s) listed more than once (e.g. {first[0]}): each line is "
                      "drawn from as a file of its own, so those files weigh more — keep one line per file")


@contextmanager
def _build_lock(home: Path, progress: Progress) -> Iterator[None]:
    """Hold the subset's lock file; a second builder waits here, then finds the index built."""
    fd = os.open(home / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.note(f"index: another process is building the index of {home.name}; waiting for it")
            progress.activity = "waiting for another process to build the index"
            while True:  # polled, not blocking: a stop request raises in the sleep
                progress.tick()
                time.sleep(POLL)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    continue
            progress.activity = ""
        yield
    finally:
        os.close(fd)  # releases the lock


def _newest_other(home: Path, key: str) -> IndexTable | None:
    """The newest complete index of the same subset under another key (for reusing its checks)."""
    best, best_at = None, -1.0
    for folder in home.iterdir():
        if folder.name == key or folder.name.startswith("."):
            continue
        meta = read_meta(folder)  # None, or its info checked: built_at a time when there
        at = -1.0 if meta is None else meta["info"].get("built_at", 0)
        if at > best_at:
            best, best_at = folder, at
    try:
        return load_table(best) if best is not None else None
    except CacheError:  # damaged: its checks are not reused (the folder goes with the next publish)
        return None


def _used(folder: Path) -> None:
    """Mark the entry as just used (its folder's mtime, which no check reads): kept by ``_publish``."""
    with contextlib.suppress(OSError):  # a read-only cache is still used; it is only not marked
        os.utime(folder)


def _publish(table: IndexTable, home: Path, folder: Path) -> None:
    """Write into a temporary folder, fsync, rename into place; keep the subset's ``KEEP_KEYS`` most
    recently used indexes (this one among them) and drop the others."""
    tmp = home / f".tmp-{os.getpid()}-{folder.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_table(table, tmp)
        for path in tmp.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        old = None
        if os.path.lexists(folder):  # --reindex, or a damaged entry: the same key built again
            old = home / f".old-{os.getpid()}-{folder.name}"
            os.rename(folder, old)
        os.rename(tmp, folder)
        fsync_dir(home)  # so that the rename itself survives a crash
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if no_space(e):
            raise DiskFull(str(home), writing=f"the index {folder.name}") from e
        raise
    # leftovers of killed builders and the least recently used keys (we hold the lock: nobody else writes)
    others = [p for p in home.iterdir() if p != folder and p.name != ".lock"]
    keys = sorted((p for p in others if not p.name.startswith(".")), key=_last_used, reverse=True)
    for other in [p for p in others if p.name.startswith(".")] + keys[KEEP_KEYS - 1:]:
        _remove(other)


def _last_used(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    """Delete a folder, or whatever stands in its place (a damaged entry may be a file)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _builder_pid(name: str) -> int | None:
    """The pid in ``.tmp-PID-KEY`` / ``.old-PID-KEY`` (how ``_publish`` names its folders)."""
    parts = name.split("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def sweep_stale(home: Path, now: float | None = None) -> list[Path]:
    """Delete the temporary folders (``.tmp-*``, ``.old-*``) of builders that died; return them.

    Only while nobody builds (the lock is free, taken without waiting), and only a folder whose
    builder is not a live process of this machine or that is older than ``STALE_AFTER`` (a
    builder of another machine sharing the cache). A cache hit runs it: leftovers of a killed
    build do not wait for the next build to go.
    """
    try:
        names = [p for p in home.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    except OSError:
        return []
    if not names:
        return []
    try:
        fd = os.open(home / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return []
    removed = []
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []  # a build is under way: its folder is not stale
        now = time.time() if now is None else now
        for path in names:
            pid = _builder_pid(path.name)
            try:
                age = now - path.lstat().st_mtime
            except OSError:
                continue
            if pid is None or not pid_alive(pid) or age > STALE_AFTER:
                _remove(path)
                removed.append(path)
    finally:
        os.close(fd)
    return removed
