"""engine.data.protocols and speech_regions: database.yml resolution, protocol loading, speech regions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from data_corpus import make_corpus
from pyannote.core import Annotation, Segment, Timeline

from engine.data.audio_checks import check_files
from engine.data.database_yml import database_paths
from engine.data.protocols import list_protocols, load_protocol, subset_files
from engine.data.speech_regions import speech_intervals, speech_regions
from engine.errors import ProtocolError
from tests import children

VOICES = "Tiny.SpeakerVerification.Voices"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PYANNOTE_DATABASE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def test_explicit_database_gives_files_with_resolved_audio(corpus: Path) -> None:
    files = subset_files(load_protocol(VOICES, str(corpus)), "train")
    assert [f["uri"] for f in files][:2] == ["alice_0", "alice_1"]
    assert files[0]["audio"] == str(corpus.parent / "wav" / "alice_0.wav")
    assert all(Path(f["audio"]).is_file() for f in files)


def test_a_missing_file_is_expected_under_the_template_whose_folder_is_there(corpus: Path, tmp_path: Path) -> None:
    """VoxCeleb1 and VoxCeleb2 under one database: a file missing from the second was said missing
    from the first's folder (`nor does the folder …/VoxCeleb1/wav/id00012`)."""
    other = tmp_path / "other"
    other.mkdir()
    yml = tmp_path / "two.yml"
    yml.write_text(corpus.read_text().replace(": lists/", f": {corpus.parent}/lists/").replace(
        "Tiny: wav/{uri}.wav", f"Tiny:\n    - {corpus.parent}/none/{{uri}}.wav\n    - {other}/{{uri}}.wav"))
    files = subset_files(load_protocol(VOICES, str(yml)), "train")
    assert files[0]["audio"] == str(other / "alice_0.wav")


def test_environment_then_cwd_then_home(corpus: Path, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    home = Path(os.environ["HOME"]) / ".pyannote"
    home.mkdir(parents=True)
    (home / "database.yml").write_text(corpus.read_text().replace("wav/", f"{corpus.parent}/wav/"))
    assert database_paths() == [(home / "database.yml").resolve()]
    (tmp_path / "database.yml").write_text(corpus.read_text())
    assert database_paths() == [(tmp_path / "database.yml").resolve()]
    monkeypatch.setenv("PYANNOTE_DATABASE_CONFIG", str(corpus))
    assert database_paths() == [corpus.resolve()]
    assert VOICES in list_protocols()


def test_no_database_anywhere_names_the_fixes() -> None:
    with pytest.raises(ProtocolError, match="--database FILE, set PYANNOTE_DATABASE_CONFIG"):
        load_protocol(VOICES)


def test_missing_explicit_and_environment_files_are_named(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="nowhere.yml does not exist"):
        load_protocol(VOICES, str(tmp_path / "nowhere.yml"))
    monkeypatch.setenv("PYANNOTE_DATABASE_CONFIG", str(tmp_path / "gone.yml"))
    with pytest.raises(ProtocolError, match="PYANNOTE_DATABASE_CONFIG names .*gone.yml"):
        load_protocol(VOICES)


def test_a_folder_given_as_database_yml_is_named_with_the_file_inside(monkeypatch: pytest.MonkeyPatch,
                                                                      corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match=f"database file {corpus.parent} is a folder: pass {corpus} — "):
        load_protocol(VOICES, str(corpus.parent))
    monkeypatch.setenv("PYANNOTE_DATABASE_CONFIG", f"{tmp_path};{corpus}")
    with pytest.raises(ProtocolError, match=f"names {tmp_path}, which is a folder, not a database.yml — "):
        load_protocol(VOICES)


def test_a_pipe_or_a_device_given_as_database_yml_is_named_as_such(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "database.yml")
    with pytest.raises(ProtocolError, match=f"database file {tmp_path / 'database.yml'} is not a regular file — "):
        load_protocol(VOICES, str(tmp_path / "database.yml"))
    with pytest.raises(ProtocolError, match="database file /dev/zero is not a regular file — "):
        load_protocol(VOICES, "/dev/zero")


@pytest.mark.parametrize(("text", "says"), [
    ("- a\n- b\n", "holds a list, not the `Databases:` and `Protocols:` sections"),
    ("Databases: [a]\n", "`Databases:` must map each database to its audio path template"),
    ("Databases:\n  Demo: {a: 1}\n", "`Databases.Demo:` must be an audio path template"),
    ("Databases:\n  Demo: x/{uri}.wav\nProtocols: []\n", "`Protocols:` must map each database name to its tasks"),
    ("Protocols:\n  Demo:\n", "`Protocols.Demo:` must map each task name to its protocols (Protocols: → Database:"),
    ("Protocols:\n  Demo:\n    SpeakerVerification: [x]\n",
     "`Protocols.Demo.SpeakerVerification:` must map each protocol name to its subsets"),
    # pyannote.database's own words: "This database does not implement any protocol."
    ("Protocols:\n  Demo: {}\n", "`Protocols.Demo:` must map each task name to its protocols (Protocols: → "
     "Database: → Task: → Protocol: → train: …), not an empty mapping"),
    ("Protocols:\n  Demo:\n    SpeakerVerification: {}\n",
     "`Protocols.Demo.SpeakerVerification:` must map each protocol name to its subsets (Protocols: → "
     "Database: → Task: → Protocol: → train: …), not an empty mapping"),
])
def test_a_database_yml_nested_otherwise_is_named_by_its_key(tmp_path: Path, text: str, says: str) -> None:
    """What pyannote.database fails on with its own Python error (`'NoneType' object has no attribute 'pop'`)."""
    database = tmp_path / "database.yml"
    database.write_text(text)
    with pytest.raises(ProtocolError) as error:
        load_protocol(VOICES, str(database))
    assert str(error.value).startswith(f"database file {database}") and says in str(error.value)
    assert "fix the file" in str(error.value)


def test_a_misnested_database_yml_that_pyannote_loads_at_import_is_named(corpus: Path, tmp_path: Path) -> None:
    """pyannote.database reads ./database.yml when first imported, whichever --database is given: a fresh
    interpreter, in a folder holding a misnested one."""
    (tmp_path / "database.yml").write_text("Protocols:\n  Demo:\n")
    code = ("from engine.data.protocols import get_registry\nfrom engine.errors import ProtocolError\n"
            f"try:\n    get_registry({str(corpus)!r})\nexcept ProtocolError as e:\n    print(e)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYANNOTE_DATABASE_CONFIG"}
    done = children.run([sys.executable, "-c", code], timeout=60, env=env, cwd=tmp_path)
    assert done.stdout.startswith(f"database file {tmp_path / 'database.yml'}: `Protocols.Demo:` must map "), done


def _list_in_a_fresh_interpreter(folder: Path, environment: str) -> str:
    """stderr of a fresh interpreter that lists the protocols from ``folder`` with
    $PYANNOTE_DATABASE_CONFIG set to ``environment`` (pyannote.database is first imported there)."""
    code = "from engine.data.protocols import list_protocols\nprint(list_protocols())\n"
    env = dict(os.environ, PYANNOTE_DATABASE_CONFIG=environment)
    done = children.run([sys.executable, "-c", code], timeout=60, env=env, cwd=folder)
    assert done.returncode == 0 and VOICES in done.stdout, done
    return done.stderr


@pytest.mark.slow
def test_a_workspace_database_yml_that_requires_the_variables_file_adds_no_warning(corpus: Path,
                                                                                  tmp_path: Path) -> None:
    """The demo workspace's shape: ./database.yml requires the file $PYANNOTE_DATABASE_CONFIG names.
    pyannote.database's global registry loads both when imported and warned once per protocol;
    the engine never reads that registry."""
    (tmp_path / "database.yml").write_text(f"Requirements:\n  - {corpus}\n")
    assert "Replacing existing" not in _list_in_a_fresh_interpreter(tmp_path, str(corpus))


def test_two_files_of_the_variable_defining_one_protocol_still_warn(corpus: Path, tmp_path: Path) -> None:
    """Those two files are both read by the engine: the later one's protocol wins, and pyannote says so."""
    again = tmp_path / "again.yml"
    text = corpus.read_text()
    for folder in ("wav", "noise", "lists"):  # the copy's paths, relative to the original's folder
        text = text.replace(f": {folder}/", f": {corpus.parent / folder}/")
    again.write_text(text)
    stderr = _list_in_a_fresh_interpreter(tmp_path, f"{corpus};{again}")
    assert f"Replacing existing {VOICES} protocol by the one defined in '{again}'" in stderr, stderr


def test_unknown_protocol_names_itself_the_file_and_what_exists(corpus: Path) -> None:
    with pytest.raises(ProtocolError) as error:
        load_protocol("Tiny.SpeakerVerification.Voicez", str(corpus))
    message = str(error.value)
    assert "Tiny.SpeakerVerification.Voicez" in message and str(corpus.resolve()) in message
    assert VOICES in message and "Noise.Collection.Background" in message
    with pytest.raises(ProtocolError, match="Database.Task.Protocol"):
        load_protocol("Voices", str(corpus))


def test_broken_yaml_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("Protocols: [unclosed\n")
    with pytest.raises(ProtocolError, match="broken.yml cannot be loaded"):
        list_protocols(str(broken))


def test_missing_subset_is_an_error(corpus: Path) -> None:
    with pytest.raises(ProtocolError, match="no development subset"):
        subset_files(load_protocol(VOICES, str(corpus)), "development")


def test_missing_audio_gets_its_expected_path_and_is_reported(corpus: Path) -> None:
    (corpus.parent / "lists" / "ghost.lst").write_text("ghost\n")
    yml = corpus.parent / "ghost.yml"
    yml.write_text("Databases:\n  Tiny: wav/{uri}.wav\nProtocols:\n  Tiny:\n    Collection:\n"
                   "      Ghosts:\n        uri: lists/ghost.lst\n")
    (file,) = list(load_protocol("Tiny.Collection.Ghosts", str(yml)).files())
    assert file["audio"] == str(corpus.parent / "wav" / "ghost.wav")
    (problem,) = check_files([file["audio"]])
    assert problem.path == file["audio"] and "does not exist" in problem.problem


def test_speech_regions_intersect_annotated_and_drop_overlap() -> None:
    annotation = Annotation(uri="m")
    annotation[Segment(0.5, 3.0)] = "alice"
    annotation[Segment(2.0, 4.5)] = "bob"
    annotation[Segment(6.0, 9.0)] = "alice"
    file = {"uri": "m", "annotation": annotation, "annotated": Timeline([Segment(0, 8)])}
    regions = speech_regions(file)
    assert list(regions["alice"]) == [Segment(0.5, 2.0), Segment(6.0, 8.0)]
    assert list(regions["bob"]) == [Segment(3.0, 4.5)]
    shared = speech_regions(file, exclusive=False)
    assert list(shared["alice"]) == [Segment(0.5, 3.0), Segment(6.0, 8.0)]


def test_a_protocol_without_annotated_takes_each_files_turns_whole(corpus: Path) -> None:
    """No `annotated:` (UEM) entry, as many VoxCeleb lists have: pyannote.database gives None, and the
    regions are the annotation's own (the UEM-less path of the pyannote listing, which a fast read skips)."""
    no_uem = corpus.with_name("no-uem.yml")
    no_uem.write_text(corpus.read_text().replace("          annotated: lists/train.uem\n", ""))
    files = subset_files(load_protocol(VOICES, str(no_uem)), "train")
    with_uem = {f["uri"]: f for f in subset_files(load_protocol(VOICES, str(corpus)), "train")}
    assert files and all(f.get("annotated") is None for f in files)
    for file in files:
        turns = file["annotation"]
        overlap = turns.get_overlap()
        assert speech_intervals(file) == {
            label: [(s.start, s.end) for s in turns.label_timeline(label).support().extrude(overlap)]
            for label in turns.labels()}
    # alice_0 speaks past its UEM's end: the UEM-less regions keep that speech
    alice = files[0]
    assert alice["uri"] == "alice_0"
    assert speech_intervals(alice)["alice"][-1][1] > speech_intervals(with_uem["alice_0"])["alice"][-1][1]


def test_blank_lines_of_a_uri_list_name_no_file(corpus: Path) -> None:
    """A list ending with empty lines (or with one in the middle): pyannote.database yields a file of uri ''."""
    lists = corpus.parent / "lists"
    lines = (lists / "train.lst").read_text().splitlines()
    (lists / "train-blank.lst").write_text("\n".join(lines[:1] + [""] + lines[1:]) + "\n\n \n")
    blank = corpus.with_name("blank.yml")
    blank.write_text(corpus.read_text().replace("lists/train.lst", "lists/train-blank.lst"))
    assert [f["uri"] for f in subset_files(load_protocol(VOICES, str(blank)), "train")] == lines


def test_a_file_without_speaker_turns_is_named() -> None:
    """A protocol defined in Python may yield files with no annotation: one error naming the file."""
    for file in ({"uri": "x/1"}, {"uri": "x/1", "annotation": None}):
        with pytest.raises(ProtocolError, match="file x/1 has no annotation"):
            speech_intervals(file)


def test_plain_intervals_agree_with_pyannote_core_on_random_annotations() -> None:
    rng = np.random.default_rng(0)
    for trial in range(200):
        annotation = Annotation(uri=f"r{trial}")
        for track in range(rng.integers(1, 12)):
            # a half-second grid: touching, nested and identical turns of one or several speakers
            start = float(rng.integers(0, 40)) / 2
            segment = Segment(start, start + float(rng.integers(1, 10)) / 2)
            annotation[segment, track] = str(rng.choice(list("abc")))
        annotated = Timeline([Segment(float(a), float(a) + float(rng.integers(1, 15)))
                              for a in rng.integers(0, 25, size=rng.integers(1, 4))])
        file = {"uri": "r", "annotation": annotation, "annotated": annotated}
        kept = annotation.crop(annotated.support(), mode="intersection")
        overlap = kept.get_overlap()
        for label, intervals in speech_intervals(file).items():
            expected = kept.label_timeline(label).support().extrude(overlap)
            assert intervals == [(s.start, s.end) for s in expected if s.duration > 0], (trial, label)
