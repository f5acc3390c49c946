"""Meta-protocols (``X.SpeakerVerification.VoxCeleb12``): the subsets of other protocols, combined.

pyannote.database finds the protocols a meta-protocol combines in its process-wide registry, which
holds its default files only (./database.yml, ~/.pyannote, $PYANNOTE_DATABASE_CONFIG): with a
database.yml elsewhere (``--database``) none was found. ``resolve_meta`` has them found in the
registry the meta-protocol was loaded from. Torch-free.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from typing import Any

from engine.errors import ProtocolError


def resolve_meta(name: str, protocol: Any, registry: Any, subsets: tuple[str, ...]) -> None:
    """Have each of ``subsets`` of ``protocol`` (called ``name``), when it is a meta-protocol, list the
    protocols it combines from ``registry``.

    Raises
    ------
    ProtocolError
        A protocol it combines is not defined there (pyannote.database raised a ValueError of its own).
    """
    for subset in subsets:
        entries = _meta_entries(protocol, subset)
        if entries is None:
            continue
        for part in entries:
            try:
                registry.get_protocol(part)
            except Exception as e:  # noqa: BLE001 - pyannote.database's ValueError, said in its words
                said = str(e).split(". ")[0]
                raise ProtocolError(f"meta-protocol {name}: its {subset} subset combines {part}, which cannot be "
                                    f"loaded ({said}) — define it in the same database.yml, or fix the name") from None
        setattr(protocol, f"{subset}_iter", functools.partial(_combined_files, registry, entries))


def combined_subsets(protocol: Any, subset: str) -> list[tuple[str, Any, str, list[str]]] | None:
    """``(name, protocol, subset, audio path templates)`` of each subset a meta-protocol's ``subset``
    combines (as ``resolve_meta`` made it find them), else None."""
    method = getattr(protocol, f"{subset}_iter", None)
    if not (isinstance(method, functools.partial) and method.func is _combined_files):
        return None
    registry, entries = method.args
    return [(name, registry.get_protocol(name), part, [str(t) for t in registry.sources.get(name.split(".")[0], [])])
            for name, parts in entries.items() for part in parts]


def _combined_files(registry: Any, entries: dict[str, list[str]]) -> Iterator[Any]:
    """The files of each ``Protocol: [subset, ...]`` of ``entries``, in order, as pyannote.database's
    ``meta_subset_iter`` yields them (the meta-protocol preprocesses each)."""
    for name, parts in entries.items():
        part_protocol = registry.get_protocol(name)
        for part in parts:
            yield from getattr(part_protocol, f"{part}_iter")()


def _meta_entries(protocol: Any, subset: str) -> dict[str, list[str]] | None:
    """The ``subset_entries`` pyannote.database bound to a meta-protocol's ``{subset}_iter``, else None."""
    method = next((m for cls in type(protocol).__mro__ if (m := cls.__dict__.get(f"{subset}_iter")) is not None),
                  None)
    if not (isinstance(method, functools.partial) and getattr(method.func, "__name__", "") == "meta_subset_iter"):
        return None
    entries = inspect.signature(method.func).bind_partial(*method.args, **method.keywords).arguments.get(
        "subset_entries")
    if not isinstance(entries, dict):
        return None
    return {str(name): [str(p) for p in parts] for name, parts in entries.items() if isinstance(parts, list)}
