"""The demo corpus: real files read back through pyannote.database, in the real datasets' formats."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pyannote.core import Segment
from pyannote.database import FileFinder
from pyannote.database.registry import Registry

from engine.config import load_config
from engine.demo import PROTOCOLS, make_demo_corpus, make_demo_workspace
from engine.demo.layout import plan
from engine.demo.workspace import TEMPLATE, demo_config
from engine.errors import SpkembError
from tests import children
from tests.engine.engine_runner import run_in_process

REPO = Path(__file__).resolve().parents[2]


def _protocol(yml: Path, name: str):
    registry = Registry()            # private: the process-wide registry stays untouched
    registry.load_database(yml)
    return registry.get_protocol(name, preprocessors={"audio": FileFinder(registry=registry)})


def _duration(path) -> float:
    info = sf.info(str(path))
    assert info.samplerate == 16000 and info.channels == 1 and info.frames > 0
    return info.frames / info.samplerate


def _check_annotated_file(file) -> None:
    duration = _duration(file["audio"])
    annotated = file["annotated"]
    assert annotated.extent() == Segment(0.0, duration)
    annotation = file["annotation"]
    assert len(annotation) > 0
    assert annotation.get_timeline().extent().end <= duration + 1e-9
    assert annotation.get_timeline().extent().start >= 0.0


def _trial_rows(path: Path, strip_wav: bool) -> list[tuple[int, str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        ref, a, b = line.split()
        if strip_wav:
            assert a.endswith(".wav") and b.endswith(".wav")
            a, b = a[:-4], b[:-4]
        rows.append((int(ref), a, b))
    return rows


def test_every_protocol_resolves_to_existing_audio_matching_its_annotations(demo_corpus: Path) -> None:
    names = Registry()
    names.load_database(demo_corpus)
    assert set(PROTOCOLS) <= set(names)

    voices = _protocol(demo_corpus, "Demo.SpeakerVerification.Voices")
    for subset in ("train", "development", "test"):
        files = list(getattr(voices, subset)())
        assert files, subset
        for file in files:
            _check_annotated_file(file)
            speaker = file["uri"].split("/")[0]
            assert file["annotation"].labels() == [speaker]
            assert Path(file["audio"]).resolve().is_relative_to((demo_corpus.parent / "voxceleb" / "wav").resolve())

    meetings = _protocol(demo_corpus, "Demo.SpeakerDiarization.Meetings")
    for subset in ("development", "test"):
        files = list(getattr(meetings, subset)())
        assert files
        for file in files:
            _check_annotated_file(file)
            assert 3 <= len(file["annotation"].labels()) <= 4
            assert Path(file["audio"]).name == f"{file['uri']}.Mix-Headset.wav"

    for name, folder in (("Demo.Collection.BackgroundNoise", "noise"), ("Demo.Collection.Music", "music")):
        files = list(_protocol(demo_corpus, name).files())
        assert len(files) >= 3
        durations = [_duration(f["audio"]) for f in files]
        assert all(f["uri"].startswith(folder + "/") for f in files)
        assert len(set(durations)) == len(durations)          # varied lengths


def test_trials_reference_existing_files_and_both_formats_agree(demo_corpus: Path) -> None:
    root = demo_corpus.parent
    voices = _protocol(demo_corpus, "Demo.SpeakerVerification.Voices")
    for subset, veri in (("development", "veri_dev.txt"), ("test", "veri_test.txt")):
        listed = {f["uri"] for f in getattr(voices, subset)()}
        pyannote_rows = _trial_rows(root / "voxceleb" / "lists" / f"{subset}.trial.txt", strip_wav=False)
        assert pyannote_rows == _trial_rows(root / "voxceleb" / veri, strip_wav=True)
        trials = list(getattr(voices, f"{subset}_trial")())
        assert [(t["reference"], t["file1"]["uri"], t["file2"]["uri"]) for t in trials] == pyannote_rows
        for t in trials:
            for key in ("file1", "file2"):
                assert t[key]["uri"] in listed
                assert (root / "voxceleb" / "wav" / f"{t[key]['uri']}.wav").is_file()
                assert t[key]["try_with"].extent().end == pytest.approx(_duration(t[key]["audio"]))
            same = t["file1"]["uri"].split("/")[0] == t["file2"]["uri"].split("/")[0]
            assert same == (t["reference"] == 1)
            if same:       # targets are cross-session, as the channel must not give them away
                assert t["file1"]["uri"].split("/")[1] != t["file2"]["uri"].split("/")[1]
        references = [r for r, _, _ in pyannote_rows]
        assert references.count(1) == references.count(0) > 0


def test_train_development_and_test_speakers_are_disjoint(demo_corpus: Path) -> None:
    voices = _protocol(demo_corpus, "Demo.SpeakerVerification.Voices")
    groups = {s: {lab for f in getattr(voices, s)() for lab in f["annotation"].labels()}
              for s in ("train", "development", "test")}
    assert len(groups["train"]) == 8 and len(groups["development"]) == 2 and len(groups["test"]) == 2
    assert not groups["train"] & groups["development"]
    assert not groups["train"] & groups["test"]
    assert not groups["development"] & groups["test"]
    meetings = _protocol(demo_corpus, "Demo.SpeakerDiarization.Meetings")
    in_meetings = {lab for s in ("development", "test") for f in getattr(meetings, s)()
                   for lab in f["annotation"].labels()}
    assert in_meetings and not in_meetings & groups["train"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = _files(make_demo_corpus(tmp_path / "a", speakers=6, seed=3).parent)
    b = _files(make_demo_corpus(tmp_path / "b", speakers=6, seed=3).parent)
    assert len(a) > 50 and a == b
    assert plan(6, 3) == plan(6, 3) != plan(6, 4)


def _equal_error_rate(scores: np.ndarray, targets: np.ndarray) -> float:
    order = np.argsort(-scores)
    t = targets[order]
    false_alarm = np.cumsum(1 - t) / np.sum(1 - t)
    miss = 1 - np.cumsum(t) / np.sum(t)
    i = int(np.argmin(np.abs(false_alarm - miss)))
    return float((false_alarm[i] + miss[i]) / 2)


def _mean_log_spectrum(path: Path) -> np.ndarray:
    x, _ = sf.read(str(path), dtype="float32")
    frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256] * np.hanning(512)
    logspec = np.log(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-8)
    energy = logspec.mean(axis=1)
    v = logspec[energy > np.percentile(energy, 30)].mean(axis=0)
    return v - v.mean()


def test_a_hand_feature_tells_speakers_apart_but_not_perfectly(demo_corpus: Path) -> None:
    root = demo_corpus.parent
    scores, targets = [], []
    for subset in ("development", "test"):
        for ref, a, b in _trial_rows(root / "voxceleb" / "lists" / f"{subset}.trial.txt", strip_wav=False):
            fa = _mean_log_spectrum(root / "voxceleb" / "wav" / f"{a}.wav")
            fb = _mean_log_spectrum(root / "voxceleb" / "wav" / f"{b}.wav")
            scores.append(fa @ fb / np.linalg.norm(fa) / np.linalg.norm(fb))
            targets.append(ref)
    eer = _equal_error_rate(np.array(scores), np.array(targets, dtype=float))
    # learnable (well below chance) yet not trivial (session channels blur the long-term spectrum)
    assert 0.02 < eer < 0.45


@pytest.mark.slow
def test_cli_writes_a_corpus_and_refuses_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    done = children.run([sys.executable, "-m", "engine", "demo-data", str(out), "--speakers", "12"], cwd=REPO,
                        timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "database.yml").is_file()
    assert str(out / "database.yml") in done.stderr
    assert len(list((out / "voxceleb" / "wav").rglob("*.wav"))) > 12

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    refused = run_in_process("demo-data", str(foreign))
    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()  # one line: no progress line of a corpus it never writes
    assert "not empty" in line and str(foreign) in line
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_too_few_speakers_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpkembError, match="at least 6"):
        make_demo_corpus(tmp_path / "x", speakers=5)


def test_the_demo_config_asks_no_more_speakers_per_batch_than_the_corpus_trains_on() -> None:
    """`demo-workspace --speakers 12` wrote per_fold 16 for its 8 training speakers: `train` as its
    README.txt says failed once the index was built."""
    assert demo_config(40) == TEMPLATE.read_text()  # the default 60 speakers: the template as it is
    small = demo_config(8)
    assert small == TEMPLATE.read_text().replace("per_fold: 16 ", "per_fold: 8 ")
    assert "# number of speakers per batch" in small


@pytest.mark.slow
def test_workspace_has_everything_and_is_left_alone_when_it_exists(tmp_path: Path) -> None:
    from engine.store import open_store

    ws = tmp_path / "demo"
    assert make_demo_workspace(ws, speakers=6, seed=0) == ws.resolve()
    # 6 speakers leave 2 to train on: a batch of the template's 16 speakers could not be drawn
    assert (ws / "config.yml").read_text() == TEMPLATE.read_text().replace("per_fold: 16 ", "per_fold: 2 ")
    assert load_config(ws / "config.yml").task.per_fold == 2
    assert (ws / "data" / "database.yml").is_file() and not (ws / "data.partial").exists()
    assert "spkemb-tui --workspace" in (ws / "README.txt").read_text()
    # a target pair and a file of another speaker of the test trials (the docs say README.txt holds it):
    # only a non-target trial of the pair's first file was taken, which a corpus of 24 speakers lacked
    assert "spkemb-engine verify --db runs.db" in (ws / "README.txt").read_text()
    with open_store(ws / "runs.db", readonly=True) as store:
        assert store.runs() == []
    # the workspace-level database.yml points at the corpus
    registry = Registry()
    registry.load_database(ws / "database.yml")
    assert "Demo.SpeakerVerification.Voices" in set(registry)

    (ws / "config.yml").write_text("# edited by the user\n")
    before = _files(ws / "data")
    make_demo_workspace(ws, speakers=6, seed=1)
    assert (ws / "config.yml").read_text() == "# edited by the user\n"
    assert _files(ws / "data") == before

    # a runs.db deleted to start afresh is made again by the command (it said "left as it is", and did)
    (ws / "runs.db").unlink()
    done = run_in_process("demo-workspace", str(ws), "--speakers", "6")
    assert done.returncode == 0 and f"demo workspace {ws}: runs.db made again" in done.stderr, done.stderr
    assert (ws / "runs.db").is_file() and (ws / "config.yml").read_text() == "# edited by the user\n"
    again = run_in_process("demo-workspace", str(ws), "--speakers", "6")
    assert again.returncode == 0 and "already exists: left as it is" in again.stderr
