"""Listing a subset through pyannote.database: every file's uri, audio path and speech regions.

pyannote.database is the source of truth: it resolves the protocol, reads the uri list and
builds each file's ``annotation`` and ``annotated``, and its FileFinder gives the audio path.
``speech_intervals`` turns each file into per-speaker regions (annotation ∩ annotated, without
overlapped speech), collected into flat arrays as they come (``ListedBuilder``).
``engine.data.fast_listing`` reads the same files faster when it can give the same answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from engine.data.cache_key import SubsetSource, subset_source
from engine.data.protocols import check_protocol, check_subset_entries, iter_subset, load_protocol
from engine.data.reference_lines import check_subset_files
from engine.data.speech_regions import speech_intervals
from engine.data.table import Listed, ListedBuilder
from engine.errors import ProtocolError, SpkembError

#: set to "pyannote" to list through pyannote.database's ProtocolFiles even where the fast
#: reader applies (for comparing the two); "fast" (or unset) is the default
READER_ENV = "SPKEMB_INDEX_READER"
READERS = ("fast", "pyannote")


def chosen_reader() -> str:
    """The reader $SPKEMB_INDEX_READER asks for; a misspelt value is refused, not silently ignored."""
    value = os.environ.get(READER_ENV, "").strip() or "fast"
    if value not in READERS:
        raise SpkembError(f"{READER_ENV}={value!r} names no index reader: set it to `fast` or `pyannote`, "
                          "or unset it")
    return value


def count_lines(path: os.PathLike | str) -> int | None:
    """Lines of a text file (the uri list's size, for an ETA), or None when unreadable."""
    try:
        with open(path, "rb") as f:
            return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return None


def list_with_pyannote(protocol: Any, subset: str, advance: Callable[[int], None]) -> Listed:
    """Every file of the subset, through pyannote.database's ProtocolFiles."""
    builder = ListedBuilder()
    for file in iter_subset(protocol, subset):
        builder.add(str(file["uri"]), str(file["audio"]), speech_intervals(file))
        advance(1)
    return builder.build()


def expected_files(source: SubsetSource | None) -> int | None:
    """How many files the subset's uri list holds (None when unknown)."""
    if source is None:
        return None
    uri = source.entries.get("uri", source.entries.get("uris"))
    return count_lines(source.resolve(uri)) if isinstance(uri, str) else None


def check_training_subset(name: str, subset: str, database: str | os.PathLike[str] | None) -> None:
    """What ``train`` and ``sweep`` refuse of PROTOCOL and ``--subset`` before they record anything:
    :func:`engine.data.protocols.check_protocol`, then :func:`check_trainable`."""
    check_protocol(name, subset, database)
    protocol = load_protocol(name, database)
    check_trainable(protocol, subset_source(protocol, subset), subset)


def check_trainable(protocol: Any, source: SubsetSource | None, subset: str) -> None:
    """Refuse a database.yml subset training cannot draw speakers from (``train`` checks it before it
    records its run, and the listing again).

    Raises
    ------
    ProtocolError
        Its labels are file-scoped, or it has no ``annotation:`` entry.
    """
    if source is None:
        return
    name = getattr(protocol, "name", type(protocol).__name__)
    if source.scope == "file":
        raise ProtocolError(f"{source.database_yml}: protocol {name} has `scope: file` (pyannote.database's "
                            "default for a protocol that declares none): its speaker labels would name speakers "
                            "within one file, but training takes each label for one speaker across all files — "
                            "declare `scope: global` under the protocol when its labels are speaker identities "
                            "(VoxCeleb's id10001 are)")
    if source.entries.get("annotation") is None:
        raise ProtocolError(f"{source.database_yml}: protocol {name}, {subset}: no `annotation:` entry — training "
                            "draws each speaker's chunks from the speaker turns of an RTTM: add one (for VoxCeleb, "
                            "a line per file: `SPEAKER {uri} 1 0.000 {duration} <NA> <NA> {speaker} <NA> <NA>`)")


def list_subset(protocol: Any, source: SubsetSource | None, subset: str, audio_templates: list[str],
                advance: Callable[[int], None], reader: str = "fast") -> tuple[Listed, str]:
    """The subset's files and regions, and which reader listed them (``fast`` or ``pyannote``).

    ``reader``: the one asked for (:func:`chosen_reader`); ``fast`` falls back to pyannote.database
    where it does not apply.

    Raises
    ------
    ProtocolError
        A database.yml subset without an ``annotation:`` entry (training has no speaker turns to draw
        from), or of a protocol whose labels are file-scoped.
    """
    from engine.data import fast_listing

    check_trainable(protocol, source, subset)
    # both readers read a first line of one field too many as a header would be: columns shifted, no error
    check_subset_files(protocol, subset, templates=False, first_only=True)
    if source is not None and reader == "fast":
        check_subset_entries(protocol, subset)  # as iter_subset does before pyannote.database lists
        listed = fast_listing.list_fast(source, audio_templates, advance)
        if listed is not None:
            return listed, "fast"
    return list_with_pyannote(protocol, subset, advance), "pyannote"


def repeated_files(paths: Iterable[str]) -> list[str]:
    """The audio files listed more than once, in order of their first repeat: pyannote.database yields a
    file for each line, so that a list concatenated twice (``cat a.lst a.lst``) draws its files twice as
    often. (By path, not uri: a meta-protocol's databases may share uris for other files.)"""
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for path in paths:
        if path in seen:
            repeated[path] = None
        seen.add(path)
    return list(repeated)
