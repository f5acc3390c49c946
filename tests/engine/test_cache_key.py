"""The key of a cached training index: it changes when a file the protocol names changes.

Real files on disk: small lists hashed whole, a sparse file past ``HASH_WHOLE`` known by its
ends, size and mtime, one file per uri through a template, a missing file.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.cache_key import HASH_PART, HASH_WHOLE, SubsetSource, cache_key, describe_file

NAME = "D.SpeakerVerification.P"


def source(root: Path, **entries: str) -> SubsetSource:
    return SubsetSource(database="D", subset="train", entries=entries, database_yml=root / "database.yml")


def key(src: SubsetSource | None, protocol: object = None) -> str:
    return cache_key(NAME, "train", protocol, src, ["wav/{uri}.wav"])


def test_a_list_changed_in_place_changes_the_key(tmp_path: Path) -> None:
    (tmp_path / "train.lst").write_text("a\nb\n")
    src = source(tmp_path, uri="train.lst")
    first = key(src)
    assert key(src) == first  # the same files: the same key
    (tmp_path / "train.lst").write_text("a\nc\n")  # same size, other content
    assert key(src) != first


def test_trials_are_not_part_of_the_key(tmp_path: Path) -> None:
    (tmp_path / "train.lst").write_text("a\n")
    (tmp_path / "trial.txt").write_text("1 a b\n")
    first = key(source(tmp_path, uri="train.lst", trial="trial.txt"))
    (tmp_path / "trial.txt").write_text("0 a b\n")
    assert key(source(tmp_path, uri="train.lst", trial="trial.txt")) == first


def test_a_big_file_is_known_by_its_ends_its_size_and_its_mtime(tmp_path: Path) -> None:
    big = tmp_path / "train.uem"
    with open(big, "wb") as f:  # sparse: past HASH_WHOLE without writing it
        f.truncate(HASH_WHOLE + 3 * HASH_PART)
    described = describe_file(big)
    assert set(described) == {"path", "size", "mtime_ns", "sha256_ends"}
    src = source(tmp_path, uri="train.uem")
    first = key(src)
    stat = big.stat()
    with open(big, "r+b") as f:  # one byte near the end
        f.seek(stat.st_size - 10)
        f.write(b"x")
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed_end = key(src)
    assert changed_end != first
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: another mtime
    assert key(src) != changed_end


def test_a_missing_file_is_part_of_the_key_until_it_appears(tmp_path: Path) -> None:
    src = source(tmp_path, uri="train.lst", annotated="train.uem")
    (tmp_path / "train.lst").write_text("a\n")
    assert describe_file(tmp_path / "train.uem") == {"path": str(tmp_path / "train.uem"), "missing": True}
    missing = key(src)
    (tmp_path / "train.uem").write_text("a 1 0.0 3.0\n")
    assert key(src) != missing


def test_a_template_entry_adds_each_files_size_and_mtime(tmp_path: Path) -> None:
    (tmp_path / "train.lst").write_text("a\nb\n")
    (tmp_path / "rttm").mkdir()
    for uri in ("a", "b"):
        (tmp_path / "rttm" / f"{uri}.rttm").write_text(f"SPEAKER {uri} 1 0.0 1.0 <NA> <NA> s1 <NA> <NA>\n")
    src = source(tmp_path, uri="train.lst", annotation="rttm/{uri}.rttm")
    first = key(src)
    assert key(src) == first
    (tmp_path / "rttm" / "b.rttm").write_text("SPEAKER b 1 0.0 2.5 <NA> <NA> s1 <NA> <NA>\n")
    second = key(src)
    assert second != first
    (tmp_path / "rttm" / "a.rttm").unlink()
    assert key(src) not in (first, second)


def test_a_protocol_defined_in_python_is_known_by_its_class(tmp_path: Path) -> None:
    class Mine:
        pass

    class Theirs:
        pass

    assert key(None, Mine()) == key(None, Mine())
    assert key(None, Mine()) != key(None, Theirs())
