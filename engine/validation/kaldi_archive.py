"""Embeddings as a Kaldi archive: ``NAME.ark`` and its index ``NAME.scp``, as Kaldi's and WeSpeaker's
back-ends read them (``ivector-plda-scoring``, ``wespeaker/bin/score.py``, ``kaldiio.load_scp``).

Each entry of the archive is ``KEY`` and a space, then a binary float vector: ``\\0B``, the token
``FV `` (float vector), its size as a length byte (4) and a little-endian int32, then the floats,
little-endian. A line of the index is ``KEY ARK:OFFSET``: the archive's absolute path and where the
entry's ``\\0B`` starts. torch-free.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from engine.errors import SpkembError

#: what starts each vector: binary mode, the float-vector token, the size's length in bytes
_VECTOR_HEADER = b"\0B" + b"FV " + b"\x04"


def check_keys(keys: Sequence[str]) -> None:
    """Refuse a key Kaldi cannot read back: an empty one, or one holding a space or a control
    character (Kaldi splits an index line on white space; its readers refuse ASCII control
    characters; Python's readers split on Unicode spaces too)."""
    for key in keys:
        if not key or any(c.isspace() or (c.isascii() and not c.isprintable()) for c in key):
            raise SpkembError(f"recording {key!r} cannot be a Kaldi key (it is empty or holds a space or a "
                              "control character): rename it, or write a .npz file instead of .ark")


def write_archive(f: IO[bytes], keys: Sequence[str], rows: np.ndarray) -> None:
    """Write ``rows`` (one vector per key, in order) as the entries of a binary archive."""
    size = struct.pack("<i", rows.shape[1])
    for key, row in zip(keys, rows.astype("<f4"), strict=True):
        f.write(key.encode("utf-8") + b" " + _VECTOR_HEADER + size + row.tobytes())


def index_text(keys: Sequence[str], dimension: int, archive: Path) -> str:
    """The ``.scp`` of the archive ``write_archive`` writes with these keys and vectors of ``dimension``."""
    entry = len(_VECTOR_HEADER) + 4 + 4 * dimension
    lines, offset = [], 0
    where = archive.resolve()
    for key in keys:
        offset += len(key.encode("utf-8")) + 1
        lines.append(f"{key} {where}:{offset}\n")
        offset += entry
    return "".join(lines)
