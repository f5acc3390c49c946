"""Self-describing checkpoints, written so that a reader never sees half of one.

A checkpoint holds everything needed to continue exactly: the embedding network,
the loss's classifier, the optimizer, the epoch and step, the position in the
batch sequence, every RNG state, the resolved config and the package version.
It is written to a temporary file in the same folder, fsynced, renamed, and the
folder fsynced; only then may its database row be inserted (docs/training.md, "Checkpoints").

A checkpoint is read as data only (``torch.load(weights_only=True)``): tensors, numbers, text,
lists and dicts. A file carrying any other pickled object (which could run code while loading)
is refused before the object is built. The RNG states are therefore stored as plain numbers;
files of earlier releases, which held numpy's state as an array, are still read, with exactly the
numpy types that rebuild an array allowed. The file's bytes are read once: their sha256 is
compared with the one recorded in its database row (:class:`Trust`) before they are unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.atomic import atomic_write, file_sha256  # noqa: F401 - file_sha256 re-exported
from engine.errors import CheckpointError
from engine.layout import AVERAGE_LAST, AVERAGE_TOP, checkpoint_file
from engine.process.checkpoint_payload import not_finite, wrong_entry
from engine.records import checkpoint_list

#: the largest file read as a checkpoint: the networks here with their optimizer states and a margin head of
#: 100,000 speakers are well under 1 GiB; a larger file is read into memory for nothing, or not at all
MAX_CHECKPOINT_BYTES = 8 * 2**30

#: what an array of numpy's RNG state in a checkpoint of an earlier release needs to be rebuilt (an
#: array of a plain dtype; none of these runs other code: torch's own documented list), also under
#: the name numpy 1 pickled it by
_reconstruct = importlib.import_module("numpy._core.multiarray" if hasattr(np, "_core")
                                       else "numpy.core.multiarray")._reconstruct
_LEGACY_NUMPY = [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype,
                 type(np.dtype(np.uint32))]


def _legacy_numpy() -> contextlib.AbstractContextManager[Any]:
    """The weights-only unpickler with :data:`_LEGACY_NUMPY` allowed (torch < 2.5 cannot: such files
    are then refused, as any other object would be)."""
    allow = getattr(torch.serialization, "safe_globals", None)
    return allow(_LEGACY_NUMPY) if allow is not None else contextlib.nullcontext()


def package_version() -> str:
    try:
        return version("spkemb")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Saved:
    """A checkpoint written: where, and the sha256 of its bytes (for its database row)."""

    path: Path
    sha256: str


def write_checkpoint(path: Path, payload: dict[str, Any]) -> Saved:
    """Write ``payload`` to ``path`` atomically; the bytes are hashed as written, not read back. Its
    tensors are written from the CPU: a checkpoint trained on a GPU loads on any machine."""
    payload = {**_on_cpu(payload), "version": package_version()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer()
    digest = hashlib.sha256(data).hexdigest()
    return Saved(atomic_write(path, lambda f: f.write(data), mode="wb"), digest)


def _on_cpu(value: Any) -> Any:
    """``value`` with every tensor in it on the CPU (those already there as they are)."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_on_cpu(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_on_cpu(item) for item in value)
    return value


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename, fsync folder)."""
    return write_checkpoint(path, payload).path


@dataclass(frozen=True)
class Trust:
    """What a command checks a checkpoint against before using it: the sha256 its row in the
    runs database ``db`` recorded (``--db``; None: the default database), unless
    ``accept_changed`` (``--trust-checkpoint``)."""

    db: str | None = None
    accept_changed: bool = False

    def recorded(self, path: Path) -> str | None:
        """The sha256 recorded with ``path``'s newest row; None without a database, row or hash.

        A database on a network filesystem is not opened (runs there record to event files, which
        ``import`` brings in; SQLite's locks are not to be trusted there).
        """
        from engine.store import default_db_path, is_network_fs, open_store

        db = default_db_path(self.db)
        if not db.is_file() or is_network_fs(db):
            return None
        with open_store(db, readonly=True) as store:
            return store.checkpoint_sha256(path)

    def check(self, path: Path, sha256: str) -> None:
        """Refuse ``path`` whose bytes (``sha256``) are not those its row recorded."""
        recorded = self.recorded(path)
        if recorded is None or recorded == sha256 or self.accept_changed:
            return
        raise CheckpointError(f"checkpoint {path} changed since it was recorded (sha256 {recorded[:12]}… "
                              f"recorded, {sha256[:12]}… now): --trust-checkpoint to use it anyway, or put back "
                              "the file that was recorded (or train/average again to write a new one)")


@dataclass(frozen=True)
class Loaded:
    """A checkpoint read: its path, the sha256 of the bytes read, and what they hold."""

    path: Path
    sha256: str
    payload: dict[str, Any]


def _refusal(path: Path, error: pickle.UnpicklingError) -> CheckpointError | None:
    """One line for a file that the weights-only unpickler refused (None: another error)."""
    text = str(error)
    if "Weights only load failed" not in text:
        return None
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found is None:  # no class or function named: bytes the unpickler does not take (an empty zip, noise)
        operand = re.search(r"Unsupported operand \d+", text)
        why = operand.group() if operand else "not weights"
        return CheckpointError(f"checkpoint {path} cannot be read as weights ({why}): it is damaged or is no "
                               "spkemb checkpoint, and was refused unread; delete it and resume from an earlier one")
    return CheckpointError(f"checkpoint {path} holds a pickled {found.group(1)}, which could run code when loaded, "
                           "and was refused unread: spkemb checkpoints hold weights only; do not use this file "
                           "(delete it, or replace it with one spkemb wrote)")


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu", *,
                    trust: Trust | None = None) -> Loaded:
    """Read a checkpoint written by :func:`save_checkpoint`, as data only, checked against ``trust``.

    Raises
    ------
    CheckpointError
        When the file is missing, truncated, not one of ours, holds a pickled object other
        than data, or differs from the one its database row recorded.
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():  # a pipe would block the read, a device never end
            raise CheckpointError(f"checkpoint {path} is not a regular file: give the .pt file a run wrote")
        if path.is_symlink():
            raise CheckpointError(f"checkpoint {path} is a symbolic link to no file (it loops, or its target is "
                                  "gone): link it to the .pt file a run wrote, or delete it")
        raise CheckpointError(f"checkpoint {path} does not exist: {_making(path)}")
    try:
        size = path.stat().st_size
        if size > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"checkpoint {path} is {size / 2**30:.1f} GiB, more than any checkpoint of a run "
                                  f"holds ({MAX_CHECKPOINT_BYTES // 2**30} GiB at most): not a checkpoint; give the "
                                  ".pt file a run wrote")
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({e.strerror or e}): check its permissions") from e
    except MemoryError:
        raise CheckpointError(f"checkpoint {path} ({size / 2**30:.1f} GiB) does not fit in this machine's free "
                              "memory: free some, or read it on a larger machine") from None
    digest = hashlib.sha256(data).hexdigest()
    if trust is not None:
        trust.check(path, digest)
    _check_unpacked_size(path, data)
    try:
        with _legacy_numpy(), warnings.catch_warnings():
            # a raw pickle makes torch warn (two lines) before it refuses it; the refusal says enough
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise _refusal(path, e) or _damaged(path, e) from e
    except Exception as e:  # torch raises several unrelated types for a damaged file
        raise _damaged(path, e) from e
    if not isinstance(payload, dict) or "model" not in payload or "config" not in payload:
        raise CheckpointError(f"{path} is not a spkemb checkpoint (no model/config inside)")
    wrong = wrong_entry(payload)
    if wrong is not None:
        raise CheckpointError(f"checkpoint {path} is damaged or edited: {wrong}; delete it and resume from an "
                              "earlier one (or train again)")
    broken = not_finite(payload)
    if broken is not None:
        raise CheckpointError(f"checkpoint {path} holds weights that are not finite ({broken} has NaN or "
                              "infinite values): no embedding or training step can come from it; use an earlier "
                              "checkpoint (or train again)")
    return Loaded(path, digest, payload)


def _check_unpacked_size(path: Path, data: bytes) -> None:
    """Refuse a zip whose entries would unpack past :data:`MAX_CHECKPOINT_BYTES`, or are compressed at
    all (``torch.save`` stores them as they are): torch inflates deflated entries, so that an 8.8 MB
    file of zeros asked for 1 GiB, and one of 100 MB would ask for 100 GiB, unread by the size check."""
    if not data.startswith(b"PK\x03\x04"):
        return  # no zip: the unpickler reads the bytes there are
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        return  # torch.load names the damage
    compressed = next((e.filename for e in entries if e.compress_type != zipfile.ZIP_STORED), None)
    unpacked = sum(e.file_size for e in entries)
    if compressed is not None or unpacked > MAX_CHECKPOINT_BYTES:
        why = f"its entry {compressed} is compressed" if compressed else f"it unpacks to {unpacked / 2**30:.1f} GiB"
        raise CheckpointError(f"checkpoint {path} was not written by torch.save ({why}) and was refused unread: "
                              "give the .pt file a run wrote")


def _making(path: Path) -> str:
    """How the checkpoint ``path`` comes to exist: averaged weights are made by ``average``, an epoch's
    by training it."""
    found = checkpoint_file(path)
    if found is None:
        return "train first, or pick an epoch that has one"
    trn, name = found
    if isinstance(name, str):
        how, n = ("--top", name.removeprefix(AVERAGE_TOP)) if name.startswith(AVERAGE_TOP) else (
            "--last", name.removeprefix(AVERAGE_LAST))
        where = "VAL_DIR" if how == "--top" else str(trn.root)
        return f"make it with `spkemb-engine average {how} {n} {where}`, or pick an epoch that has one"
    epochs = trn.epochs()
    if not epochs:
        return "train first"
    if name < epochs[-1]:
        return ("its run trained past it and the file was deleted since (`spkemb-engine clean` deletes the epochs no "
                f"result needs): pick an epoch that has one ({checkpoint_list(epochs)})")
    return f"train further, or pick an epoch that has one ({checkpoint_list(epochs)})"


def _damaged(path: Path, error: Exception) -> CheckpointError:
    # its first sentence: torch's zip reader goes on for lines about its own internals
    first = (str(error).strip().splitlines() or [type(error).__name__])[0].split(". ")[0][:160]
    return CheckpointError(f"checkpoint {path} cannot be read ({first}): it is damaged; "
                           "delete it and resume from an earlier one")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu", *,
                    trust: Trust | None = None) -> dict[str, Any]:
    """What :func:`read_checkpoint` reads, without its hash."""
    return read_checkpoint(path, map_location, trust=trust).payload


def _shape(value: Any) -> str:
    return str(list(value.shape)) if isinstance(value, torch.Tensor) else "absent" if value is None else \
        type(value).__name__


def first_difference(theirs: Mapping[str, Any], ours: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The first tensor two state dicts do not share with the same shape and kind of number: (name, its
    shape in ``theirs``, in ``ours``), shapes as ``[512, 60]`` or ``absent``, with their dtypes where one
    holds whole numbers and the other not (weights cast to int32 load as truncated floats, silently);
    None when they agree."""
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        a, b = theirs.get(key), ours.get(key)
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape):
            return key, _shape(a), _shape(b)
        if a.is_floating_point() != b.is_floating_point():
            return key, f"{str(a.dtype).removeprefix('torch.')} {_shape(a)}", \
                f"{str(b.dtype).removeprefix('torch.')} {_shape(b)}"
    return None


def fit_state(module: nn.Module, state: Mapping[str, Any], path: Path, fix: str) -> None:
    """Refuse, in one line, a state dict whose tensors are not ``module``'s (names and shapes).

    Raises
    ------
    CheckpointError
        Naming ``path``, the first differing tensor, both shapes, and ``fix``.
    """
    differs = first_difference(state, module.state_dict())
    if differs is not None:
        key, theirs, mine = differs
        raise CheckpointError(f"checkpoint {path} does not fit this network: {key} is {theirs} there and "
                              f"{mine} here; {fix}")


