"""What a cached index depends on, as one digest: the protocol's entry and the files it names.

For a protocol of a database.yml (pyannote.database's custom protocols) pyannote.database's
own protocol class knows the subset's entries (``uri``, ``annotation``, ``annotated``…) and
the database.yml they are relative to: the key holds those entries, the audio path templates,
and for each file they name its size and a hash of its content (whole files up to
``HASH_WHOLE`` bytes, else the first and last ``HASH_PART`` bytes with the mtime). A template
naming one file per uri (``rttms/{uri}.rttm``) contributes each file's size and mtime. A
protocol defined in Python contributes its class and package version only: ``--reindex``
after changing its data. A meta-protocol (``X.``) contributes the same of each subset it combines.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import string
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from engine.atomic import file_sha256
from engine.data.meta_protocols import combined_subsets
from engine.data.table import FORMAT

HASH_WHOLE = 256 << 20
HASH_PART = 4 << 20


@dataclass(frozen=True)
class SubsetSource:
    """Where pyannote.database reads a database.yml protocol's subset from."""

    database: str
    subset: str
    entries: dict[str, Any]
    database_yml: Path
    #: what the protocol says its speaker labels name: ``file`` (pyannote.database's default), ``database``
    #: or ``global``
    scope: str | None = None

    def resolve(self, value: str) -> Path:
        """A path of the entries as pyannote.database resolves it (cwd, else beside database.yml)."""
        path = Path(value).expanduser()
        return path if path.is_file() else self.database_yml.parent / path


def subset_source(protocol: Any, subset: str) -> SubsetSource | None:
    """The entries of ``subset`` when ``protocol`` is a database.yml protocol, else None."""
    method = None
    for cls in type(protocol).__mro__:
        method = cls.__dict__.get(f"{subset}_iter")
        if method is not None:
            break
    func = getattr(method, "func", None)
    if not (isinstance(method, functools.partialmethod) and getattr(func, "__name__", "") == "subset_iter"
            and getattr(func, "__module__", "") == "pyannote.database.custom"):
        return None
    kw = method.keywords
    return SubsetSource(database=kw["database"], subset=subset, entries=dict(kw["entries"]),
                        database_yml=Path(kw["database_yml"]), scope=kw.get("scope"))


def is_template(value: str) -> bool:
    return any(field for _, field, _, _ in string.Formatter().parse(value))


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def describe_file(path: Path) -> dict[str, Any]:
    """Size and content hash (whole, or head + tail + mtime for big files) of one file."""
    try:
        st = path.stat()
    except OSError:
        return {"path": str(path), "missing": True}
    if st.st_size <= HASH_WHOLE:
        return {"path": str(path), "size": st.st_size, "sha256": file_sha256(path)}
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(HASH_PART))
        f.seek(st.st_size - HASH_PART)
        digest.update(f.read(HASH_PART))
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_ends": digest.hexdigest()}


def _describe_template(source: SubsetSource, template: str) -> dict[str, Any]:
    from pyannote.database.loader import load_lst

    digest = hashlib.sha256()
    for uri in load_lst(source.resolve(source.entries["uri"])):
        path = source.resolve(template.format(uri=uri, database=source.database, subset=source.subset))
        try:
            st = os.stat(path)
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return {"template": template, "files": digest.hexdigest()}


def _real_path(path: Path) -> Path:
    """``path`` with its links followed; as it is where they loop (the readers then name the file)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError on a loop, later ones OSError
        return path


def cache_key(name: str, subset: str, protocol: Any, source: SubsetSource | None,
              audio_templates: list[str]) -> str:
    """The digest naming the cached index of ``name``'s ``subset`` as its files are now."""
    material: dict[str, Any] = {
        "format": FORMAT, "protocol": name, "subset": subset, "audio": audio_templates,
        "pyannote.database": _version("pyannote.database"), "pyannote.core": _version("pyannote.core")}
    material.update(_subset_material(protocol, subset, source))
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _subset_material(protocol: Any, subset: str, source: SubsetSource | None) -> dict[str, Any]:
    """What a subset's index depends on: its entries and their files (a database.yml protocol), the
    same of each subset a meta-protocol (``X.``) combines, or the class and package of a Python one."""
    if source is not None:
        entries = {k: v for k, v in source.entries.items() if k != "trial"}  # trials are not trained on
        files = {}
        for key, value in sorted(entries.items()):
            if not isinstance(value, str):
                continue
            files[key] = (_describe_template(source, value) if is_template(value)
                          else describe_file(_real_path(source.resolve(value))))
        return {"database_yml": str(source.database_yml.resolve()), "entries": entries, "files": files}
    combined = combined_subsets(protocol, subset)
    if combined is not None:
        return {"combines": {f"{name}.{part}": {"audio": templates, **_subset_material(p, part, subset_source(p, part))}
                             for name, p, part, templates in combined}}
    cls = type(protocol)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "package": _version(cls.__module__.split(".")[0])}
