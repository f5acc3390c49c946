"""What a cache folder held when it was written, and the check that it still holds it.

A cache entry (the training index's columns, ``engine.data.table``) is written file by file,
then ``manifest.json`` last: every file's size and sha256, each column's dtype and shape, the
entry's key and format, and a sha256 of the manifest itself. Opening the entry checks all of
it on the very file descriptors it maps: a truncated, emptied, replaced or edited file (even
one whose values stay valid), a missing file, a folder instead of a file, or a damaged
manifest raises ``CacheError`` naming the file, and the caller builds the entry again. Whole
files are hashed: sha256 runs at ~1.5 GB/s (SHA extensions), about 0.2 s for the ~250 MB of
a 1.09 M-file index, so no sampling (which would miss a changed value) is needed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CacheError
from engine.regular_files import FileTooLarge, NotRegularFile, open_regular, read_regular

MANIFEST = "manifest.json"
#: a manifest describes ~26 files in a few kB: anything far larger is not one
MAX_MANIFEST_BYTES = 1 << 20


@dataclass(frozen=True)
class Opened:
    """The checked files of an entry: ``.npy`` columns as arrays, other files as bytes."""

    arrays: dict[str, np.ndarray]
    texts: dict[str, bytes]


def _self_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def npy_header(f: io.BufferedReader) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """The dtype, shape, Fortran order and data offset a ``.npy`` file's header says (``ValueError``:
    no such header), read without reading the data."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"npy version {version}")
    return np.dtype(dtype), tuple(shape), bool(fortran), f.tell()


def parse_json(data: bytes) -> Any:
    """``data`` as JSON; nesting too deep for the parser is a ``ValueError`` like any other bad JSON."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def write_manifest(folder: Path, *, key: str, format: int) -> None:
    """Describe every file of ``folder`` in its ``manifest.json`` (call it after the last of them)."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.iterdir()):
        if path.name == MANIFEST:
            continue
        with open(path, "rb") as f:
            entry: dict[str, Any] = {"bytes": os.fstat(f.fileno()).st_size,
                                     "sha256": hashlib.file_digest(f, "sha256").hexdigest()}
            if path.suffix == ".npy":
                f.seek(0)
                dtype, shape, _, _ = npy_header(f)
                entry.update(dtype=dtype.str, shape=list(shape))
        files[path.name] = entry
    body = {"format": format, "key": key, "files": files}
    (folder / MANIFEST).write_text(json.dumps({**body, "sha256": _self_hash(body)}, indent=1))


def read_manifest(folder: Path, *, key: str, format: int) -> dict[str, Any]:
    """The entry's manifest, checked (its own hash, format and key).

    Raises
    ------
    CacheError
        When it is missing, no regular file, too large, unreadable, altered, of another format or
        of another key.
    """
    path = folder / MANIFEST
    try:
        manifest = parse_json(read_regular(path, MAX_MANIFEST_BYTES))
    except FileNotFoundError:
        raise CacheError(f"{MANIFEST} is missing", folder=folder) from None
    except (NotRegularFile, IsADirectoryError, FileTooLarge) as e:
        what = "a folder" if isinstance(e, IsADirectoryError) else e.strerror
        raise CacheError(f"{MANIFEST} is {what}", folder=folder) from None
    except (OSError, ValueError) as e:
        raise CacheError(f"{MANIFEST} cannot be read ({type(e).__name__}: {e})", folder=folder) from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise CacheError(f"{MANIFEST} is not a manifest", folder=folder)
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    if manifest.get("sha256") != _self_hash(body):
        raise CacheError(f"{MANIFEST} was altered (its own sha256 differs)", folder=folder)
    if body.get("format") != format:
        raise CacheError(f"{MANIFEST} is of format {body.get('format')!r}, not {format}", folder=folder)
    if body.get("key") != key:
        raise CacheError(f"{MANIFEST} names the key {body.get('key')!r}, not {key!r}", folder=folder)
    return manifest


def open_checked(folder: Path, names: list[str], *, key: str, format: int, mmap: bool = True) -> Opened:
    """Open the files ``names`` of ``folder`` as its manifest describes them, or raise.

    Each file is opened once: its size and sha256 are checked on that descriptor, and an
    ``.npy`` column is then memory-mapped (read-only) from the same descriptor, so that what
    is used is what was checked, even if the entry is replaced meanwhile.

    Raises
    ------
    CacheError
        Naming the first file that is missing, not a plain file, or not as described.
    """
    files = read_manifest(folder, key=key, format=format)["files"]
    arrays: dict[str, np.ndarray] = {}
    texts: dict[str, bytes] = {}
    for name in names:
        entry = files.get(name)
        if not isinstance(entry, dict):
            raise CacheError(f"{MANIFEST} does not describe {name}", folder=folder)
        try:
            arrays_or_text = _open_one(folder / name, entry, mmap)
        except CacheError as e:
            raise CacheError(str(e), folder=folder) from None
        except (OSError, ValueError, EOFError) as e:
            raise CacheError(f"{name} cannot be read ({type(e).__name__}: {e})", folder=folder) from e
        if isinstance(arrays_or_text, bytes):
            texts[name] = arrays_or_text
        else:
            arrays[name] = arrays_or_text
    return Opened(arrays=arrays, texts=texts)


def _open_one(path: Path, entry: dict[str, Any], mmap: bool) -> np.ndarray | bytes:
    name = path.name
    try:
        fd = open_regular(path)  # a column replaced by a pipe waited for a writer in its open
    except FileNotFoundError:
        raise CacheError(f"{name} is missing") from None
    except (NotRegularFile, IsADirectoryError):
        raise CacheError(f"{name} is not a plain file") from None
    with open(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_size != entry.get("bytes"):
            raise CacheError(f"{name} holds {st.st_size:,} bytes, the manifest says {entry.get('bytes')}")
        if not name.endswith(".npy"):
            data = f.read()
            if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                raise CacheError(f"{name} was altered (its sha256 differs from the manifest's)")
            return data
        if hashlib.file_digest(f, "sha256").hexdigest() != entry.get("sha256"):
            raise CacheError(f"{name} was altered (its sha256 differs from the manifest's)")
        f.seek(0)
        dtype, shape, fortran, offset = npy_header(f)
        if dtype.str != entry.get("dtype") or list(shape) != entry.get("shape") or fortran:
            raise CacheError(f"{name} is {dtype.str} {list(shape)}, the manifest says "
                             f"{entry.get('dtype')} {entry.get('shape')}")
        if not mmap or 0 in shape:  # mmap cannot map zero bytes
            f.seek(offset)
            return np.fromfile(f, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape)
