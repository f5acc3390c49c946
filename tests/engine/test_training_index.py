"""The cached training index (engine.data): built once, hit after, invalidated, shared, same batches.

The protocol is VoxCeleb2-shaped (``engine.demo.scaled``): a few thousand hard links to the
demo corpus's wav files, with the real layout and RTTM/UEM lists.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.data.batches import SpeakerBatches
from engine.data.cache_key import subset_source
from engine.data.fast_listing import list_fast
from engine.data.listing import list_with_pyannote
from engine.data.manifest import write_manifest
from engine.data.protocols import get_registry, load_protocol, subset_files
from engine.data.speech_index import derive_index, table_from_files
from engine.data.table import FORMAT, Listed
from engine.data.training_index import IndexRequest, training_table
from engine.demo.scaled import PROTOCOL, make_scaled_protocol
from engine.errors import SpkembError
from engine.progress import Progress
from engine.store import open_store
from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import start_engine, wait_for

FILES = 3000
FEW = 300


def sources(demo_corpus: Path) -> list[Path]:
    return sorted((demo_corpus.parent / "voxceleb" / "wav").rglob("*.wav"))


@pytest.fixture
def scaled(tmp_path: Path, demo_corpus: Path) -> Path:
    """A fresh 3,000-file VoxCeleb2-shaped protocol; returns its database.yml."""
    return make_scaled_protocol(tmp_path / "vox2", sources(demo_corpus), FILES, test_files=20, trials=40)


@pytest.fixture
def few(tmp_path: Path, demo_corpus: Path) -> Path:
    """The same protocol with FEW files: for what pyannote.database lists itself (about 50 files a second),
    and for what a cache's number of files does not change (a damaged entry, an edited list)."""
    return make_scaled_protocol(tmp_path / "vox2", sources(demo_corpus), FEW, test_files=20, trials=40)


def build(yml: Path, root: Path, **kwargs) -> tuple[object, str]:
    out = io.StringIO()
    table = training_table(IndexRequest(PROTOCOL, "train", str(yml), **kwargs), Progress(file=out), root)
    return table, out.getvalue()


def lists(yml: Path) -> Path:
    return yml.parent / "voxceleb2" / "lists"


def test_built_once_then_loaded_from_the_cache(scaled: Path, tmp_path: Path) -> None:
    table, log = build(scaled, tmp_path / "cache")
    assert "listing Scale.SpeakerVerification.VoxCeleb2 train: 3,000 files in" in log
    assert "checking audio files: 3,000 files in" in log and "read by fast" in log
    assert len(table.paths) == FILES and len(table.labels) == 16 and not table.problems
    again, log = build(scaled, tmp_path / "cache")
    assert "listing" not in log and "checking" not in log
    assert "3,000 files, 16 speakers from the cache" in log
    assert isinstance(again.reg_start, np.memmap) and isinstance(again.paths.data, np.memmap)
    assert again.info["key"] == table.info["key"]
    assert np.array_equal(again.reg_end, table.reg_end) and again.uris.tolist() == table.uris.tolist()
    home = tmp_path / "cache" / f"{PROTOCOL}.train"
    assert sorted(p.name for p in home.iterdir()) == [".lock", table.info["key"]]
    # --reindex builds again, checking every file
    fresh, log = build(scaled, tmp_path / "cache", reindex=True)
    assert "listing" in log and fresh.info["checks_reused"] == 0


@pytest.mark.parametrize("edit", ["list", "rttm", "uem"])
def test_a_changed_list_rttm_or_uem_rebuilds_checking_only_new_files(few: Path, tmp_path: Path, edit: str) -> None:
    first, _ = build(few, tmp_path / "cache")
    folder = lists(few)
    if edit == "list":  # one file less
        lines = (folder / "train.lst").read_text().splitlines()
        (folder / "train.lst").write_text("\n".join(lines[:-1]) + "\n")
    elif edit == "rttm":  # the first file's turn ends earlier
        text = (folder / "train.rttm").read_text()
        line = text.splitlines()[0]
        fields = line.split()
        fields[4] = f"{float(fields[4]) - 1.0:.3f}"
        (folder / "train.rttm").write_text(text.replace(line, " ".join(fields), 1))
    else:  # the first file is annotated from 0.5 s on
        text = (folder / "train.uem").read_text()
        line = text.splitlines()[0]
        (folder / "train.uem").write_text(text.replace(line, line.replace(" 1 0.000 ", " 1 0.500 "), 1))
    second, log = build(few, tmp_path / "cache")
    assert "listing" in log and second.info["key"] != first.info["key"]
    assert second.info["checks_reused"] == len(second.paths)  # no audio file changed
    if edit == "list":
        assert len(second.paths) == FEW - 1
    elif edit == "rttm":
        assert second.reg_end[second.reg_file == 0][0] == pytest.approx(first.reg_end[first.reg_file == 0][0] - 1)
    else:
        assert second.reg_start[second.reg_file == 0][0] == 0.5
    # the earlier key is kept beside it (the list may be put back)
    home = tmp_path / "cache" / f"{PROTOCOL}.train"
    assert sorted(p.name for p in home.iterdir() if p.name != ".lock") == sorted([first.info["key"],
                                                                                  second.info["key"]])


def test_two_corpora_under_one_protocol_name_each_load_from_the_cache_and_the_least_used_goes(
        tmp_path: Path, demo_corpus: Path) -> None:
    """Two workspaces defining the same protocol alternate without building again; a fourth key
    drops the key used least recently, not the one built first."""
    ymls = [make_scaled_protocol(tmp_path / f"corpus{i}", sources(demo_corpus), 60 + 10 * i, test_files=4,
                                 trials=8) for i in range(4)]
    cache = tmp_path / "cache"
    keys = [build(yml, cache)[0].info["key"] for yml in ymls[:3]]
    for yml in [ymls[0], ymls[1], ymls[0]]:  # back and forth: loaded each time
        _, log = build(yml, cache)
        assert "from the cache" in log and "listing" not in log
    fourth, log = build(ymls[3], cache)
    assert "listing" in log
    home = cache / f"{PROTOCOL}.train"
    # corpus 2 was built after corpus 0 and 1 but used least recently since
    assert sorted(p.name for p in home.iterdir() if p.name != ".lock") == sorted(
        [keys[0], keys[1], fourth.info["key"]])
    _, log = build(ymls[2], cache)
    assert "listing" in log


def test_a_changed_audio_file_is_checked_again(few: Path, tmp_path: Path) -> None:
    build(few, tmp_path / "cache")
    with open(lists(few) / "train.lst", "a") as f:
        f.write("id99999/newsession1/00001\n")  # a listed file that does not exist
    table, log = build(few, tmp_path / "cache")
    (problem,) = table.problems
    assert problem.path.endswith("id99999/newsession1/00001.wav") and "does not exist" in problem.problem
    assert table.info["checks_reused"] == FEW and "1 unusable" in log
    # the missing file made (linked, as a conversion script may: an old mtime) is no longer left out
    Path(problem.path).parent.mkdir(parents=True)
    os.link(table.paths[0], problem.path)
    mended, log = build(few, tmp_path / "cache")
    assert f"index: 1 file(s) it left out as unusable changed since it was built (e.g. {problem.path})" in log
    assert not mended.problems and len(mended.paths) == FEW + 1 and mended.info["checks_reused"] == FEW
    _, log = build(few, tmp_path / "cache")
    assert "from the cache" in log and "indexing again" not in log
    # a broken file dated in the future (unpacked from an archive) is indexed again once, not at every start
    broken = Path(mended.paths[1])
    broken.unlink()
    broken.write_bytes(b"not audio")
    table, _ = build(few, tmp_path / "cache", reindex=True)
    assert [p.path for p in table.problems] == [str(broken)]
    os.utime(broken, (time.time() + 86400 * 365, time.time() + 86400 * 365))
    _, log = build(few, tmp_path / "cache")
    assert "indexing again" in log
    _, log = build(few, tmp_path / "cache")
    assert "from the cache" in log and "indexing again" not in log


def test_a_meta_protocol_of_a_database_yml_anywhere_lists_and_keys_the_protocols_it_combines(
        few: Path, tmp_path: Path) -> None:
    """pyannote.database looked the combined protocols up in its default files only (a --database
    elsewhere: `Could not find any protocol for "Scale"`), and the index key left them out: an edited
    list of a combined protocol loaded the old index."""
    meta = few.parent / "meta.yml"
    meta.write_text(few.read_text() + f"  X:\n    SpeakerVerification:\n      Both:\n        train:\n"
                                       f"          {PROTOCOL}: [train]\n")
    files = subset_files(load_protocol("X.SpeakerVerification.Both", str(meta)), "train")
    assert len(files) == FEW and files[0]["audio"] == subset_files(load_protocol(PROTOCOL, str(meta)), "train")[0][
        "audio"]
    request = IndexRequest("X.SpeakerVerification.Both", "train", str(meta))
    first = training_table(request, Progress(file=io.StringIO()), tmp_path / "cache")
    lines = (lists(few) / "train.lst").read_text().splitlines()
    (lists(few) / "train.lst").write_text("\n".join(lines[:-1]) + "\n")  # one file less
    again = training_table(request, Progress(file=io.StringIO()), tmp_path / "cache")
    assert again.info["key"] != first.info["key"] and len(again.paths) == FEW - 1
    # so is a combined database's audio path template: the old index would keep the old paths
    from engine.data.cache_key import cache_key

    def key() -> str:
        return cache_key("X.SpeakerVerification.Both", "train", load_protocol("X.SpeakerVerification.Both", str(meta)),
                         None, [])

    before = key()
    meta.write_text(meta.read_text().replace("voxceleb2/wav/{uri}.wav", "voxceleb2/flac/{uri}.flac", 1))
    assert key() != before
    # a part it cannot find: one line naming the meta-protocol and the part (it was pyannote's ValueError)
    meta.write_text(meta.read_text().replace(f"{PROTOCOL}: [train]", "Typo.SpeakerVerification.VoxCeleb2: [train]"))
    from engine.errors import ProtocolError

    with pytest.raises(ProtocolError, match=r"^meta-protocol X\.SpeakerVerification\.Both: its train subset combines "
                                            r"Typo\.SpeakerVerification\.VoxCeleb2, which cannot be loaded \(Could "
                                            r"not find any protocol for \"Typo\" database\) — define it"):
        load_protocol("X.SpeakerVerification.Both", str(meta))


def test_a_uri_listed_twice_is_said_at_every_start(few: Path, tmp_path: Path) -> None:
    """`cat a.lst a.lst` drew every file twice as often, silently."""
    lines = (lists(few) / "train.lst").read_text().splitlines()
    (lists(few) / "train.lst").write_text("\n".join(lines + lines[:3]) + "\n")
    table, log = build(few, tmp_path / "cache")
    warning = f"index: warning: 3 file(s) listed more than once (e.g. {table.paths[0]}): each line is drawn from"
    assert warning in log and len(table.uris) == FEW + 3
    _, log = build(few, tmp_path / "cache")
    assert "from the cache" in log and warning in log


def test_a_template_with_a_double_star_is_said_to_be_slow(tmp_path: Path, demo_corpus: Path) -> None:
    """`{uri}` under `**`: pyannote.database globbed the whole tree once per file, at 8 files/s for 50,000."""
    yml = make_scaled_protocol(tmp_path / "vox2", sources(demo_corpus), 40, test_files=4, trials=8)
    yml.write_text(yml.read_text().replace("voxceleb2/wav/{uri}.wav", "voxceleb2/**/{uri}.wav"))
    table, log = build(yml, tmp_path / "cache")
    assert len(table.paths) == 40 and "read by pyannote" in log
    assert f"index: warning: the audio path template {yml.parent}/voxceleb2/**/{{uri}}.wav searches every folder" in log


def test_an_rttm_line_the_fast_reader_cannot_parse_is_named_by_its_line(few: Path, tmp_path: Path) -> None:
    """A uri with spaces: `train.rttm cannot be read: could not convert string to float: 'x/1'`."""
    from engine.errors import ProtocolError

    rttm = lists(few) / "train.rttm"
    lines = rttm.read_text().splitlines()
    fields = lines[4].split()
    lines[4] = " ".join(fields[:1] + ["a", "b/c", "x/1"] + fields[2:])
    rttm.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProtocolError, match=rf"^{re.escape(str(rttm))}:5: it has 12 fields where a line of an RTTM "
                                            r"file has 10 — fix the line"):
        build(few, tmp_path / "cache")


@pytest.mark.parametrize("reader", ["fast", "pyannote"])
@pytest.mark.parametrize("line", [1, 0])
def test_a_speaker_name_with_a_space_is_refused_by_its_line_not_cut(few: Path, tmp_path: Path, line: int, reader: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`<NA> <NA> John Smith <NA> <NA>`: 11 fields whose numbers parse. The fast reader kept `John` (its
    parser dropped the extra field unsaid when told the columns to keep): John Smith and John Doe
    trained as one speaker. pyannote.database refuses the line; so does the fast reader now. On the
    first line, pandas took the extra field for a header's index column: every column shifted, a
    traceback from the fast reader and "no file has a speaker turn" from pyannote.database's."""
    from engine.errors import ProtocolError

    monkeypatch.setenv("SPKEMB_INDEX_READER", reader)
    rttm = lists(few) / "train.rttm"
    lines = rttm.read_text().splitlines()
    fields = lines[line].split()
    lines[line] = " ".join([*fields[:7], "John", "Smith", *fields[8:]])
    rttm.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProtocolError, match=rf"^{re.escape(str(rttm))}:{line + 1}: it has 11 fields where a line of an "
                                            r"RTTM file has 10 — fix the line"):
        build(few, tmp_path / "cache")


@pytest.mark.parametrize(("kind", "field", "value"), [("rttm", 3, "nan"), ("rttm", 4, "inf"), ("uem", 3, "nan")])
def test_a_time_that_is_not_finite_is_refused_by_its_line(few: Path, tmp_path: Path, kind: str, field: int,
                                                          value: str) -> None:
    """`SPEAKER uri 1 nan 2.0 …` parses (pandas reads nan as a number): the turn left training, said only as
    a file with no speech region."""
    from engine.errors import ProtocolError

    path = lists(few) / f"train.{kind}"
    lines = path.read_text().splitlines()
    fields = lines[2].split()
    fields[field] = value
    lines[2] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProtocolError, match=rf"^{re.escape(str(path))}:3: its (start|duration|end) {value} is not a "
                                            r"(time from 0 to|number)"):
        build(few, tmp_path / "cache")


@pytest.mark.slow
def test_batches_from_the_cache_equal_a_fresh_index(scaled: Path, tmp_path: Path) -> None:
    build(scaled, tmp_path / "cache")
    cached, _ = build(scaled, tmp_path / "cache")  # memory-mapped from the cache
    files = subset_files(load_protocol(PROTOCOL, str(scaled)), "train")
    fresh = table_from_files(files)  # pyannote.database's ProtocolFiles, no cache
    a, b = (SpeakerBatches(derive_index(t, 2.0), per_fold=8, per_label=2, per_epoch=0.01,
                           sample_rate=16000, seed=5) for t in (cached, fresh))
    assert a.speakers == b.speakers
    for epoch, k in [(0, 0), (0, 7), (3, 2)]:
        pa, pb = a.plan(epoch, k), b.plan(epoch, k)
        assert np.array_equal(pa.labels, pb.labels) and np.array_equal(pa.files, pb.files)
        assert np.array_equal(pa.starts, pb.starts)  # bitwise
        assert a.sample_plan(epoch, k) == b.sample_plan(epoch, k)
    wa, la = a.batch(1, 1)
    wb, lb = b.batch(1, 1)
    assert np.array_equal(wa, wb) and np.array_equal(la, lb)


TRICKY_RTTM = """\
SPEAKER a 1 0.000 3.000 <NA> <NA> s1 <NA> <NA>
SPEAKER a 1 2.000 3.000 <NA> <NA> s2 <NA> <NA>
SPEAKER a 1 6.000 1.000 <NA> <NA> s1 <NA> <NA>
SPKR-INFO a 1 <NA> <NA> <NA> unknown s3 <NA> <NA>
SPEAKER b 1 0.500 1.000 <NA> <NA> s1 <NA> <NA>
SPEAKER b 1 8.000 1.000 <NA> <NA> s4 <NA> <NA>
SPEAKER c 1 0.000 0.000 <NA> <NA> s1 <NA> <NA>
SPEAKER c 1 1.000 -1.000 <NA> <NA> s2 <NA> <NA>
SPEAKER c 1 1.000 2.000 <NA> <NA> NA <NA> <NA>
SPEAKER e 1 0.000 4.000 <NA> <NA> s5 <NA> <NA>
SPEAKER f 1 0.9999995 2.0 <NA> <NA> s1 <NA> <NA>
SPEAKER f 1 0.0 1.0000004 <NA> <NA> s2 <NA> <NA>
SPEAKER g 1 0.000 2.000 <NA> <NA> s6 <NA> <NA>
SPEAKER g 1 0.000 2.000 <NA> <NA> s6 <NA> <NA>
SPEAKER x 1 0.000 2.000 <NA> <NA> s9 <NA> <NA>
"""
TRICKY_UEM = """\
a 1 0.000 4.000
a 1 5.000 10.000
b 1 0.000 5.000
c 1 0.000 9.000
d 1 0.000 3.000
f 1 1.000 5.000
f 1 5.0000002 6.0
g 1 0.000 2.000
g 1 1.000 2.000
"""


def tricky_protocol(root: Path, demo_corpus: Path, seed: int = 0, annotated: bool = True) -> Path:
    """Lists made to trip a reader: overlaps, crops, missing rows, microsecond boundaries, NA labels;
    without ``annotated``, no `annotated:` entry at all (as many VoxCeleb lists)."""
    rng = np.random.default_rng(seed)
    uris = ["a", "b", "c", "d", "e", "f", "g", "a"]  # d: no RTTM; e: no UEM; a listed twice
    rttm, uem = [TRICKY_RTTM], [TRICKY_UEM]
    for i in range(120):  # random files on a millisecond grid (pyannote.database lists ~50 a second)
        uri = f"r{i:03d}"
        uris.append(uri)
        for _ in range(int(rng.integers(0, 5))):
            start, length = rng.integers(0, 8000), rng.integers(0, 3000)
            rttm.append(f"SPEAKER {uri} 1 {start / 1000:.3f} {length / 1000:.3f} <NA> <NA> "
                        f"v{int(rng.integers(0, 6))} <NA> <NA>\n")
        for _ in range(int(rng.integers(0, 3))):
            start, length = rng.integers(0, 8000), rng.integers(0, 6000)
            uem.append(f"{uri} 1 {start / 1000:.3f} {(start + length) / 1000:.3f}\n")
    (root / "lists").mkdir(parents=True)
    (root / "lists" / "train.lst").write_text("\n".join(uris) + "\n")
    (root / "lists" / "train.rttm").write_text("".join(rttm))
    (root / "lists" / "train.uem").write_text("".join(uem))
    wav = sources(demo_corpus)[0]
    yml = root / "database.yml"
    entries = "          annotation: lists/train.rttm\n"
    entries += "          annotated: lists/train.uem\n" if annotated else ""
    yml.write_text(f"Databases:\n  T: {wav.parent}/{{uri}}.wav\nProtocols:\n  T:\n    SpeakerVerification:\n"
                   "      P:\n        scope: global\n        train:\n          uri: lists/train.lst\n" + entries)
    return yml


def canonical(listed: Listed) -> tuple:
    regions = [(int(f), listed.labels[s], a, b) for f, s, a, b in
               zip(listed.reg_file, listed.reg_label, listed.reg_start.tolist(), listed.reg_end.tolist(), strict=True)]
    mentions = sorted((int(f), listed.labels[s]) for f, s in zip(listed.men_file, listed.men_label, strict=True))
    return listed.uris.tolist(), listed.paths.tolist(), sorted(regions), mentions


def both_readers(yml: Path) -> tuple[tuple, tuple]:
    """The train subset of T.SpeakerVerification.P in ``yml``, listed by the fast reader and by pyannote.database."""
    protocol = load_protocol("T.SpeakerVerification.P", str(yml))
    templates = [str(t) for t in get_registry(str(yml)).sources["T"]]
    fast = list_fast(subset_source(protocol, "train"), templates, lambda n: None)
    assert fast is not None
    return canonical(fast), canonical(list_with_pyannote(protocol, "train", lambda n: None))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_the_fast_reader_lists_exactly_what_pyannote_database_lists(tmp_path: Path, demo_corpus: Path,
                                                                    seed: int) -> None:
    fast, reference = both_readers(tricky_protocol(tmp_path / "tricky", demo_corpus, seed))
    assert fast == reference
    # what the tricky rows mean: s4 of b is cropped away (b's annotated does not cover it)...
    uris, _, regions, mentions = fast
    assert (1, "s4") not in mentions and (1, "s1") in mentions
    # ...s5 of e (no annotated) stays, with no region; the NA speaker is "nan", as str(NaN)
    assert (4, "s5") in mentions and not [r for r in regions if r[0] == 4]
    assert (2, "nan") in mentions


@pytest.mark.parametrize("seed", [0, 1])
def test_without_annotated_the_fast_reader_lists_what_pyannote_database_lists(tmp_path: Path, demo_corpus: Path,
                                                                              seed: int) -> None:
    fast, reference = both_readers(tricky_protocol(tmp_path / "tricky", demo_corpus, seed, annotated=False))
    assert fast == reference
    # nothing cropped: s4 of b, outside b's UEM, keeps its region now
    assert [r for r in fast[2] if r[:2] == (1, "s4")]


def test_a_file_no_template_finds_is_expected_under_the_template_whose_folder_holds_its_folder(tmp_path: Path) -> None:
    """VoxCeleb1 and VoxCeleb2 under one database, VoxCeleb2 still in .m4a: the fast reader expected its files
    under the first template (VoxCeleb1's), named them there with a fix for the template, and its cache
    watched those paths, so that converting the corpus was never seen (pyannote.database's listing: VoxCeleb2's)."""
    (tmp_path / "v1" / "wav" / "id10001").mkdir(parents=True)
    (tmp_path / "v2" / "aac" / "id00012" / "yt").mkdir(parents=True)
    (tmp_path / "v2" / "aac" / "id00012" / "yt" / "00001.m4a").write_bytes(b"")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train.lst").write_text("id00012/yt/00001\n")
    rttm = "SPEAKER id00012/yt/00001 1 0.000 3.000 <NA> <NA> id00012 <NA> <NA>\n"
    (tmp_path / "lists" / "train.rttm").write_text(rttm)
    yml = tmp_path / "database.yml"
    yml.write_text(f"Databases:\n  T:\n    - {tmp_path}/v1/wav/{{uri}}.wav\n"
                   f"    - {tmp_path}/v2/aac/{{uri}}.wav\n"
                   "Protocols:\n  T:\n    SpeakerVerification:\n      P:\n        scope: global\n        train:\n"
                   "          uri: lists/train.lst\n          annotation: lists/train.rttm\n")
    fast, reference = both_readers(yml)
    assert fast[1] == reference[1] == [f"{tmp_path}/v2/aac/id00012/yt/00001.wav"]


@pytest.mark.slow
def test_blank_lines_of_a_uri_list_name_no_file_for_either_reader(tmp_path: Path, demo_corpus: Path) -> None:
    yml = tricky_protocol(tmp_path / "tricky", demo_corpus)
    plain, _ = both_readers(yml)
    uris = yml.parent / "lists" / "train.lst"
    lines = uris.read_text().splitlines()
    uris.write_text("\n".join(lines[:3] + ["", "  "] + lines[3:]) + "\n\n\n")
    # a new database.yml: pyannote.database caches protocols per file
    blank = yml.with_name("blank.yml")
    blank.write_text(yml.read_text())
    assert both_readers(blank) == (plain, plain)


BUILDER = """
import json, sys
from engine.data.training_index import IndexRequest, training_table
from engine.errors import SpkembError
from engine.progress import Progress
yml, root, builder = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
request = IndexRequest("{protocol}", "train", yml, builder=builder)
table = training_table(request, Progress(), __import__("pathlib").Path(root))
print(json.dumps({{"files": len(table.paths), "key": table.info["key"]}}), flush=True)
"""


@pytest.mark.slow
def test_a_second_process_waits_for_the_first_instead_of_building(scaled: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    home = root / f"{PROTOCOL}.train"
    home.mkdir(parents=True)
    # hold the lock as a builder would: both processes must wait, then exactly one builds
    lock = os.open(home / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    code = BUILDER.format(protocol=PROTOCOL)
    procs = [children.spawn([sys.executable, "-c", code, str(scaled), str(root), flag],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for flag in ("1", "1", "0")]  # two builders and a rank that never builds
    waiting = [p.stderr.readline() for p in procs]
    assert all("waiting" in line for line in waiting), waiting
    os.close(lock)
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    outputs = [json.loads(out) for out, _ in results]
    assert all(o == outputs[0] for o in outputs) and outputs[0]["files"] == FILES
    built = [err for _, err in results if "listing" in err]
    loaded = [err for _, err in results if "from the cache" in err]
    assert len(built) == 1 and len(loaded) == 2


def train_exp(root: Path, name: str) -> Path:
    exp = root / name
    exp.mkdir(parents=True)
    (exp / "config.yml").write_text(TINY_CONFIG)
    return exp


@pytest.mark.slow
def test_train_logs_the_indexing_phases_and_a_second_experiment_loads_the_cache(
        scaled: Path, demo_corpus: Path, tmp_path: Path, db_path: Path) -> None:
    databases = f"{scaled};{demo_corpus}"  # the augmentation's noise comes from the demo corpus
    logs = []
    for name in ("one", "two"):
        exp = train_exp(tmp_path, name)
        log = exp / "train" / f"{PROTOCOL}.train" / "train.log"
        log.parent.mkdir(parents=True)
        proc = start_engine("train", "--to", "1", "--parallel", "1", "--device", "cpu", str(exp), PROTOCOL,
                            db=db_path, database=databases, log=log)
        assert proc.wait(timeout=300) == 0, log.read_text()
        logs.append(log.read_text())
    first, second = logs
    # a log file gets lines: each phase's start, and its end with the count and the rate
    assert re.search(r"^listing Scale\.SpeakerVerification\.VoxCeleb2 train: 3,000 files in [\d.]+ s "
                     r"\([\d,]+ files/s\), read by fast$", first, re.M), first
    assert re.search(r"^checking audio files: 3,000 files in .* 0 unusable$", first, re.M), first
    assert re.search(r"^indexing: 3,000 files in .* 16 speakers, cached in ", first, re.M), first
    assert "listing" not in second and "3,000 files, 16 speakers from the cache" in second
    runs = open_store(db_path, readonly=True).runs(kind="train")
    assert [r["status"] for r in runs] == ["completed", "completed"]


@pytest.mark.slow
def test_sigterm_while_indexing_records_stopped_and_exits_0(scaled: Path, demo_corpus: Path, tmp_path: Path,
                                                            db_path: Path) -> None:
    # another builder holds the index's lock: train waits there, indexing, until stopped
    home = Path(os.environ["SPKEMB_CACHE"]) / "index" / f"{PROTOCOL}.train"
    home.mkdir(parents=True, exist_ok=True)
    lock = os.open(home / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        exp = train_exp(tmp_path, "exp")
        log = tmp_path / "train.log"
        proc = start_engine("train", "--to", "1", "--device", "cpu", str(exp), PROTOCOL, db=db_path,
                            database=f"{scaled};{demo_corpus}", log=log)
        wait_for(lambda: "waiting for it" in log.read_text(), what="train waiting for the index")
        (run,) = open_store(db_path, readonly=True).runs(kind="train")
        assert run["status"] == "indexing" and run["pid"] == proc.pid  # visible before the first step
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        os.close(lock)
    run = open_store(db_path, readonly=True).run(run["id"])
    assert run["status"] == "stopped"
    assert run["reason"] == ("stopped by SIGTERM before the first step "
                             "(waiting for another process to build the index)")
    assert "Traceback" not in log.read_text()
    assert not (exp / "train" / f"{PROTOCOL}.train" / "weights").exists()


def _damage(folder: Path, how: str) -> None:
    """Damage one entry of the cache as a disk, a user or a crash could."""
    column = folder / "reg_label.npy"
    if how == "truncate":
        with open(column, "r+b") as f:
            f.truncate(column.stat().st_size // 2)
    elif how == "empty":
        column.write_bytes(b"")
    elif how == "alter":  # still a valid column: the last speaker's regions given to another one
        labels = np.load(column, mmap_mode="r+")
        last = labels.max()
        labels[labels == last] = last - 1
        labels.flush()
        del labels
    elif how == "folder":
        column.unlink()
        column.mkdir()
    elif how == "missing":
        (folder / "paths.offsets.npy").unlink()
    elif how == "manifest":
        manifest = folder / "manifest.json"
        manifest.write_text(manifest.read_text()[:-40])
    elif how == "forged":  # a region of a file that is not there, under a manifest made anew
        files = np.load(folder / "reg_file.npy", mmap_mode="r+")
        files[0] = 1_000_000
        files.flush()
        del files
        write_manifest(folder, key=folder.name, format=FORMAT)
    elif how == "manifest-fifo":  # a read of it waited forever for a writer
        (folder / "manifest.json").unlink()
        os.mkfifo(folder / "manifest.json")
    elif how == "manifest-device":  # read until MemoryError
        (folder / "manifest.json").unlink()
        (folder / "manifest.json").symlink_to("/dev/zero")
    elif how == "manifest-deep":  # json's RecursionError
        (folder / "manifest.json").write_text("[" * 200_000)
    elif how == "meta-deep":
        (folder / "meta.json").write_text("[" * 100_000)
        write_manifest(folder, key=folder.name, format=FORMAT)
    elif how.startswith("info-"):  # a field of info the loader uses, of another type, under a manifest made anew
        changes = {"info-repeated": {"repeated": "x"}, "info-repeated-file": {"repeated": 1, "repeated_file": 5},
                   "info-built-at": {"built_at": "x"}, "info-list": {"info": []}}[how]
        meta = json.loads((folder / "meta.json").read_text())
        meta = {**meta, **changes} if "info" in changes else {**meta, "info": {**meta["info"], **changes}}
        (folder / "meta.json").write_text(json.dumps(meta))
        write_manifest(folder, key=folder.name, format=FORMAT)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["truncate", "empty", "alter", "folder", "missing", "manifest", "forged",
                                 "manifest-fifo", "manifest-device", "manifest-deep", "meta-deep", "info-repeated",
                                 "info-repeated-file", "info-built-at", "info-list"])
def test_a_damaged_cache_is_said_in_one_line_and_built_again(few: Path, tmp_path: Path, how: str) -> None:
    first, _ = build(few, tmp_path / "cache")
    folder = tmp_path / "cache" / f"{PROTOCOL}.train" / first.info["key"]
    speakers = len(derive_index(first, 2.0).speakers)
    assert speakers >= 2
    key, labels, paths = first.info["key"], np.array(first.reg_label), first.paths.tolist()
    del first  # memory-mapped: a truncated column must not be read through it (SIGBUS)
    _damage(folder, how)
    again, log = build(few, tmp_path / "cache")
    warnings = [line for line in log.splitlines() if "warning" in line]
    assert len(warnings) == 1, log
    assert warnings[0].startswith(f"train: warning: the cached index {folder} is damaged ")
    assert "Traceback" not in log and "listing" in log  # built again, not trained on
    assert len(derive_index(again, 2.0).speakers) == speakers
    assert np.array_equal(again.reg_label, labels) and again.paths.tolist() == paths
    # the rebuilt entry is whole: the next start loads it without a word
    third, log = build(few, tmp_path / "cache")
    assert "warning" not in log and "from the cache" in log
    assert sorted(p.name for p in folder.parent.iterdir()) == [".lock", key]


@pytest.mark.parametrize("meta", ['{"format": 2, "info": []}', '{"format": 2, "info": {"built_at": "x"}}',
                                  '{"format": 2, "info": {}}', pytest.param("[" * 100_000, id="deep"), "fifo"])
def test_an_unusable_meta_of_another_key_is_passed_over(few: Path, tmp_path: Path, meta: str) -> None:
    """Building a key reads the other keys' meta.json to reuse the newest one's checks: a bad one raised
    (AttributeError, TypeError, KeyError, RecursionError) or, a named pipe, waited forever."""
    other = tmp_path / "cache" / f"{PROTOCOL}.train" / "zzz"
    other.mkdir(parents=True)
    if meta == "fifo":
        os.mkfifo(other / "meta.json")
    else:
        (other / "meta.json").write_text(meta)
    table, log = build(few, tmp_path / "cache")
    assert len(table.paths) == FEW and table.info["checks_reused"] == 0
    assert "Traceback" not in log and "listing" in log


def test_temporary_folders_of_dead_builders_are_swept_at_the_next_start(few: Path, tmp_path: Path) -> None:
    first, _ = build(few, tmp_path / "cache")
    home = tmp_path / "cache" / f"{PROTOCOL}.train"
    stale = home / f".tmp-{children.dead_pid()}-{first.info['key']}"
    (stale / "sub").mkdir(parents=True)
    (stale / "paths.data.npy").write_bytes(b"half")
    live = home / f".tmp-{os.getpid()}-{first.info['key']}"  # a builder still at work
    live.mkdir()
    _, log = build(few, tmp_path / "cache")
    assert "from the cache" in log
    assert not stale.exists() and live.exists()


def test_the_reader_variable_picks_the_reader_and_a_misspelt_one_is_refused(
        few: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPKEMB_INDEX_READER", "pyannote")
    _, log = build(few, tmp_path / "cache")
    assert "read by pyannote" in log
    monkeypatch.setenv("SPKEMB_INDEX_READER", "pyanote")  # refused even where the cache would answer
    with pytest.raises(SpkembError, match=r"SPKEMB_INDEX_READER='pyanote' names no index reader: set it to "
                                          r"`fast` or `pyannote`"):
        build(few, tmp_path / "cache")
