"""The diarization check: clustering, frame labels and DER (pyannote.metrics is the judge), RTTMs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from pyannote.core import Annotation, Segment, SlidingWindow, SlidingWindowFeature, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from engine.extraction.clustering import build_tree
from engine.extraction.diarize import DerSettings, prepare, score, tune_threshold
from engine.store import open_store
from tests.engine.engine_runner import run_engine, run_in_process
from tests.engine.test_apply import write_model_dir

MEETINGS = "Demo.SpeakerDiarization.Meetings"
WINDOW = SlidingWindow(start=0.0, duration=1.0, step=0.5)
VOICE = {"A": [1.0, 0.0, 0.2], "B": [0.0, 1.0, 0.2], "C": [0.3, 0.3, -1.0]}


def turns(*spans: tuple[float, float, str], uri: str = "m1") -> Annotation:
    reference = Annotation(uri=uri)
    for start, end, label in spans:
        reference[Segment(start, end)] = label
    return reference


def file_of(reference: Annotation, end: float) -> dict:
    return {"uri": reference.uri, "annotation": reference, "annotated": Timeline([Segment(0, end)], uri=reference.uri)}


def embeddings(speaker_at, n: int) -> SlidingWindowFeature:
    """One row per window: the voice of the speaker at the window's centre."""
    return SlidingWindowFeature(np.array([VOICE[speaker_at(WINDOW[i].middle)] for i in range(n)]), WINDOW)


def who(reference: Annotation):
    def at(t: float) -> str:
        return next(label for segment, _, label in reference.itertracks(yield_label=True)
                    if segment.start <= t < segment.end)
    return at


ABA = turns((0, 4, "A"), (4, 8, "B"), (8, 10, "A"))


def test_perfect_labelling_scores_zero():
    item = prepare(file_of(ABA, 10), embeddings(who(ABA), 19))
    (result,), total = score([item], DerSettings())
    assert total.der == 0.0 and total.total == 10.0
    assert result.speakers == result.speakers_found == 2
    # the hypothesis is the reference up to the names of the speakers
    assert DiarizationErrorRate()(ABA, result.hypothesis, uem=item.annotated) == 0.0


def test_a_known_wrong_labelling_scores_what_pyannote_says():
    # the last two seconds of A sound like B: they join B's cluster
    wrong = embeddings(lambda t: "B" if t >= 8 else who(ABA)(t), 19)
    item = prepare(file_of(ABA, 10), wrong)
    (result,), total = score([item], DerSettings())
    assert total.confusion == pytest.approx(2.0) and total.missed == total.false_alarm == 0.0
    assert total.der == pytest.approx(0.2)
    expected = turns((0, 4, "x"), (4, 10, "y"))
    assert total.der == pytest.approx(DiarizationErrorRate()(ABA, expected, uem=item.annotated))
    # a collar of 0.5 s (±0.25 s around the boundaries 0, 4, 8, 10) removes 1.5 s, 1.5 s of them confused
    _, total = score([item], DerSettings(collar=0.5))
    assert total.total == pytest.approx(8.5) and total.der == pytest.approx(1.5 / 8.5)
    assert total.der == pytest.approx(DiarizationErrorRate(collar=0.5)(ABA, expected, uem=item.annotated))


def test_overlap_is_missed_unless_skipped():
    reference = turns((0, 5, "A"), (4, 9, "B"), (9, 10, "A"))
    item = prepare(file_of(reference, 10), embeddings(lambda t: "A" if t < 4.5 or t >= 9 else "B", 19))
    _, total = score([item], DerSettings())
    assert total.missed == pytest.approx(1.0) and total.false_alarm == 0.0  # one label per frame
    assert total.total == pytest.approx(11.0)
    _, skipped = score([item], DerSettings(skip_overlap=True))
    assert skipped.missed == 0.0 and skipped.total == pytest.approx(9.0)


def test_threshold_tuning_finds_the_number_of_speakers():
    reference = turns((0, 3, "A"), (3, 6, "B"), (6, 9, "C"), (9, 12, "A"))
    item = prepare(file_of(reference, 12), embeddings(who(reference), 23))
    threshold, total = tune_threshold([item], DerSettings())
    assert total.der == 0.0
    (result,), _ = score([item], DerSettings(num_speakers="tuned"), threshold)
    assert result.speakers_found == 3


def test_tuning_tries_every_cut_of_a_noisy_meeting_into_a_few_clusters():
    """Four speakers in 6 s turns, noisy windows: quantiles of all the merge heights stepped from about
    a dozen clusters to one and never tried four (DER 0.33 on 136 s); cuts past 4 x the speakers are not
    scored (thousands of clusters took minutes a file)."""
    rng = np.random.default_rng(0)
    window = SlidingWindow(start=0.0, duration=1.5, step=0.15)
    n = 600
    end = window[n - 1].end
    reference = turns(*((t, min(t + 6.0, end), "ABCD"[k % 4]) for k, t in enumerate(np.arange(0.0, end, 6.0))))
    voices = rng.normal(size=(4, 32))
    rows = voices[[int(window[i].middle // 6.0) % 4 for i in range(n)]] + 0.8 * rng.normal(size=(n, 32))
    item = prepare(file_of(reference, end), SlidingWindowFeature(rows, window))
    said: list[str] = []
    threshold, total = tune_threshold([item], DerSettings(), said=said.append)
    assert said == ["diarize: tuning the clustering threshold on 1 development file(s): 16 thresholds to score"]
    assert total.der < 0.01
    (result,), _ = score([item], DerSettings(num_speakers="tuned"), threshold)
    assert result.speakers_found == 4


def test_clustering_cuts_by_count_and_by_distance():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0, 0]], dtype=float)
    tree = build_tree(x)
    labels = tree.cut(n_clusters=2)
    assert labels[0] == labels[1] != labels[2] == labels[3]
    assert len(set(tree.cut(threshold=1e-3))) == 5
    assert build_tree(x[:1]).cut(n_clusters=3).tolist() == [0]


def test_oracle_embeddings_on_a_demo_meeting(demo_corpus: Path):
    """Embeddings that know the speaker: only overlapped speech is missed, nothing falsely alarmed."""
    from engine.data.protocols import load_protocol

    (meeting, *_) = list(load_protocol(MEETINGS, demo_corpus).test())
    reference, annotated = meeting["annotation"], meeting["annotated"]
    n = int((annotated.extent().end - WINDOW.duration) // WINDOW.step) + 1

    def loudest(t: float) -> str:
        window = Segment(t - 0.5, t + 0.5)
        talk = {label: reference.label_timeline(label).crop(window).duration() for label in reference.labels()}
        best = max(talk, key=talk.get)
        return best if talk[best] > 0 else sorted(talk)[0]

    voices = {label: np.eye(8)[i] for i, label in enumerate(sorted(reference.labels()))}
    data = np.array([voices[loudest(WINDOW[i].middle)] for i in range(n)])
    item = prepare(meeting, SlidingWindowFeature(data, WINDOW))
    (result,), total = score([item], DerSettings())
    speech = reference.crop(annotated).get_timeline().support().duration()
    assert total.false_alarm == 0.0
    # one label per frame: where k speakers overlap, k - 1 of them are missed
    assert total.missed == pytest.approx(total.total - speech, abs=1e-3) and total.missed > 0
    assert total.confusion / total.total < 0.1
    assert result.speakers_found == result.speakers == len(reference.labels())


def test_a_meetings_protocol_without_annotated_is_scored_over_each_references_extent(demo_corpus: Path,
                                                                                    tmp_path: Path):
    """No `annotated:` (UEM) entry: pyannote.database gives None, and the reference's extent is the UEM."""
    from engine.data.protocols import load_protocol

    # in this test's folder, not beside the session's corpus (which tests only read): its paths made whole
    root = demo_corpus.parent
    no_uem = tmp_path / "meetings-without-uem.yml"
    no_uem.write_text(demo_corpus.read_text().replace("          annotated: ami/uems/test/{uri}.uem\n", "")
                      .replace(" ami/", f" {root}/ami/").replace("- amicorpus/", f"- {root}/amicorpus/"))
    (meeting, *_) = list(load_protocol(MEETINGS, no_uem).test())
    assert meeting.get("annotated") is None
    reference = meeting["annotation"]
    n = int((reference.get_timeline().extent().end - WINDOW.duration) // WINDOW.step) + 1
    item = prepare(meeting, SlidingWindowFeature(np.ones((n, 3)), WINDOW))
    assert list(item.annotated) == [reference.get_timeline().extent()]
    assert item.speech == reference.get_timeline().support()


@pytest.mark.slow
def test_diarize_writes_rttms_that_pyannote_reads_and_records_der(tmp_path: Path, demo_corpus: Path,
                                                                 db_path: Path):
    from pyannote.database.util import load_rttm

    from engine.data.protocols import load_protocol

    val_dir = write_model_dir(tmp_path, duration=1.0)
    done = run_engine("apply", "--step", "0.5", "--batch", "16", "--diarize", str(val_dir), MEETINGS,
                      database=demo_corpus)
    assert done.returncode == 0, done.stderr
    out = val_dir / "apply" / "7-step0.5"
    files = list(load_protocol(MEETINGS, demo_corpus).test())
    for f in files:
        hypothesis = load_rttm(out / f"{f['uri']}.rttm")[f["uri"]]
        assert hypothesis.uri == f["uri"]
        # oracle speech: the hypothesis lies inside the reference speech and covers it
        speech = f["annotation"].crop(f["annotated"]).get_timeline().support()
        assert hypothesis.get_timeline().support().duration() == pytest.approx(speech.duration(), abs=1e-3)
        assert len(hypothesis.labels()) == len(f["annotation"].labels())
        assert f"{f['uri']}" in done.stdout
    assert "total" in done.stdout and " DER " in done.stdout and "%" in done.stdout

    with open_store(db_path, readonly=True) as store:
        (apply_run,) = store.find_runs(kind="apply")
        (diarization,) = store.diarizations(out)
        assert diarization["run_id"] == apply_run["id"] and diarization["extraction_id"] is not None
        assert diarization["num_speakers"] == "oracle" and diarization["collar"] == 0.0
        assert diarization["epoch"] == 7 and diarization["files"] == len(files)
        rows = store.diarization_files(diarization["id"])
        assert sorted(r["uri"] for r in rows) == sorted(f["uri"] for f in files)
        assert 0.0 <= diarization["der"] == pytest.approx(
            sum(r["missed"] + r["false_alarm"] + r["confusion"] for r in rows) / sum(r["total"] for r in rows))
        extraction = store.extractions(apply_run["id"])[0]
        metadata = yaml.safe_load((out / "metadata.yml").read_text())
        assert extraction["checkpoint_sha256"] == metadata["checkpoint_sha256"]
        # an epoch is its number; names are for averages
        assert extraction["chosen_by"] == "params.yml" and extraction["checkpoint_name"] is None

    # a meeting's clustering takes minutes on AMI: its counts are said as it goes (here a clock of 11 s a look)
    import io
    import itertools

    from engine.extraction.diarization_check import prepare_check, request_from_args, run_check
    from engine.layout import ExtractionDir
    from engine.progress import Progress
    from engine.requests import DiarizeRequest

    log, ticks = io.StringIO(), itertools.count(0, 11)
    request = DiarizeRequest(extraction=str(out), protocol=MEETINGS, database=str(demo_corpus), db=str(db_path))
    check = prepare_check(request_from_args(request, ExtractionDir(out)))
    # the half-written RTTM of a diarize killed as it wrote it (its process gone, minutes ago): swept
    # by the next, where only the next apply into the folder did
    dead = out / f".tmp-{2**22 + 7}-{files[0]['uri']}.rttm"
    dead.write_text("SPEAKER half")
    os.utime(dead, (time.time() - 600,) * 2)
    run_check(check, Progress(file=log, clock=lambda: next(ticks)))
    assert not dead.exists()
    said = log.getvalue().splitlines()
    assert said[0].startswith(f"clustering the test subset: 1/{len(files)} files") and files[0]["uri"] in said[0], said

    # from here on through engine.cli.main in this process: the engine process above was the end-to-end run
    # two collars are two diarizations with their own RTTMs: the first check's are untouched, the
    # second's are in the folder of its settings
    first = {path: path.stat().st_ino for path in out.glob("*.rttm")}
    assert first
    skip = run_in_process("diarize", "--collar", "0.5", "--skip-overlap", str(out), MEETINGS, database=demo_corpus)
    assert skip.returncode == 0, skip.stderr
    assert "(collar 0.5 s, overlap skipped" in skip.stdout
    assert {path: path.stat().st_ino for path in out.glob("*.rttm")} == first
    second = out / "rttm-collar0.5-skip-overlap"
    assert sorted(p.name for p in second.glob("*.rttm")) == sorted(p.name for p in first)
    with open_store(db_path, readonly=True) as store:
        checks = store.diarizations(run_id=apply_run["id"])
        assert [(c["collar"], c["skip_overlap"]) for c in checks] == [(0.5, 1), (0.0, 0)]  # newest first
        assert checks[0]["der"] != checks[1]["der"]
        for check, folder in zip(checks, (second, out), strict=True):
            rttms = store.diarization_files(check["id"])
            assert {Path(f["rttm_path"]).parent for f in rttms} == {folder.absolute()}
            for f in rttms:
                assert load_rttm(f["rttm_path"])[f["uri"]].labels()

    # again, standalone, with a collar and the threshold tuned on the development meeting
    dev = run_in_process("apply", "--step", "0.5", "--subset", "development", str(val_dir), MEETINGS,
                         database=demo_corpus)
    assert dev.returncode == 0, dev.stderr
    again = run_in_process("diarize", "--collar", "0.5", "--num-speakers", "tuned", str(out), MEETINGS,
                           database=demo_corpus)
    assert again.returncode == 0, again.stderr
    assert f"tuned on {MEETINGS}.development" in again.stdout
    with open_store(db_path, readonly=True) as store:
        latest = store.diarizations(out)[0]
        assert latest["num_speakers"] == "tuned" and latest["threshold"] > 0 and latest["collar"] == 0.5
        assert latest["tuned_on"] == f"{MEETINGS}.development"


def test_diarize_refuses_what_it_cannot_score(tmp_path: Path, demo_corpus: Path, db_path: Path):
    folder = tmp_path / "nothing"
    folder.mkdir()
    done = run_in_process("diarize", str(folder), MEETINGS, database=demo_corpus)
    assert done.returncode == 2 and "metadata.yml does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    (folder / "metadata.yml").write_text(yaml.safe_dump({"start": 0.0, "duration": 1.0, "step": 0.5}))
    done = run_in_process("diarize", str(folder), MEETINGS, database=demo_corpus)
    assert done.returncode == 2 and "no embeddings for" in done.stderr and "apply" in done.stderr
    # a diarization protocol whose files have no reference turns
    (tmp_path / "uris.lst").write_text("ES2004a\n")
    (tmp_path / "database.yml").write_text(
        "Databases:\n  NoRef: /nowhere/{uri}.wav\nProtocols:\n  NoRef:\n    SpeakerDiarization:\n"
        "      Meetings:\n        test:\n          uri: uris.lst\n")
    done = run_in_process("diarize", str(folder), "NoRef.SpeakerDiarization.Meetings",
                          database=tmp_path / "database.yml")
    assert done.returncode == 2 and "has no reference speaker turns in its 1 file: " in done.stderr, done.stderr
    assert not list(folder.rglob("*.rttm"))


def test_apply_diarize_refuses_unfair_settings_before_extracting(tmp_path: Path, demo_corpus: Path, db_path: Path):
    val_dir = write_model_dir(tmp_path, duration=1.0)
    done = run_in_process("apply", "--diarize", "--subset", "development", "--num-speakers", "tuned", str(val_dir),
                      MEETINGS, database=demo_corpus)
    assert done.returncode == 2 and "tunes the threshold on the development subset" in done.stderr
    done = run_in_process("apply", "--diarize", "--collar", "-1", str(val_dir), MEETINGS, database=demo_corpus)
    assert done.returncode == 2 and "--collar -1.0" in done.stderr
    # tuning needs the development meetings' embeddings, which no apply has written into the folder yet
    done = run_in_process("apply", "--diarize", "--num-speakers", "tuned", str(val_dir), MEETINGS, database=demo_corpus)
    assert done.returncode == 2 and "apply --subset development" in done.stderr, done.stderr
    assert "holds none for 1 of its 1 file ('ES2011a' first)" in done.stderr, done.stderr
    # reference turns, but no development subset to tune the speaker count on; then a uri that an
    # RTTM line cannot hold: both known before any audio is read
    (tmp_path / "uris.lst").write_text("ES2004a\n")
    (tmp_path / "ref.rttm").write_text("SPEAKER ES2004a 1 0.0 5.0 <NA> <NA> A <NA> <NA>\n")
    protocol = ("Databases:\n  NoDev: /nowhere/{uri}.wav\nProtocols:\n  NoDev:\n    SpeakerDiarization:\n"
                "      Meetings:\n        test:\n          uri: uris.lst\n          annotation: ref.rttm\n")
    (tmp_path / "database.yml").write_text(protocol)
    no_dev = "NoDev.SpeakerDiarization.Meetings"
    done = run_in_process("apply", "--diarize", "--num-speakers", "tuned", str(val_dir), no_dev,
                          database=tmp_path / "database.yml")
    assert done.returncode == 2 and "use --num-speakers oracle" in done.stderr, done.stderr
    (tmp_path / "uris.lst").write_text("ES2004a\nES 2004b\n")
    done = run_in_process("apply", "--diarize", str(val_dir), no_dev, database=tmp_path / "database.yml")
    assert done.returncode == 2 and "cannot name an RTTM" in done.stderr, done.stderr
    assert not list((val_dir / "apply").rglob("*.npy")) and not db_path.exists()


# two collars are two diarizations with their own RTTMs: in
# test_diarize_writes_rttms_that_pyannote_reads_and_records_der


def test_a_file_whose_clustering_would_not_fit_in_memory_is_refused_in_one_line():
    """An hour of meeting took 5 GB in Ward's linkage, and a smaller machine ended in scipy's
    MemoryError traceback (or the kernel's kill, unsaid): the need is counted before, from the windows."""
    from engine.config.footprint import Memory
    from engine.errors import SpkembError
    from engine.extraction.clustering import check_clustering_memory, clustering_bytes

    gib = 2**30
    assert clustering_bytes(9_000) == 16 * 9_000**2  # 1.2 GiB: half an hour at a 0.2 s hop
    memory = Memory(available=1 * gib, total=2 * gib)
    check_clustering_memory("ES2002a", 8_000, memory)  # 0.95 GiB fits
    check_clustering_memory("ES2002a", 90_000, None)  # not Linux: nothing known, nothing refused
    with pytest.raises(SpkembError) as refused:
        check_clustering_memory("ES2002a", 9_000, memory)
    assert str(refused.value) == (
        "file ES2002a: clustering its 9,000 windows needs about 1.2 GiB at once (it grows with their square), more "
        "than the 1.0 GiB of memory available here (MemAvailable): diarize it where more memory is free, or extract "
        "it with a larger step (`apply --step 0.2` makes half the windows of 0.1, a quarter of the memory)")


@pytest.mark.parametrize("start", [0.0, 0.37])
def test_a_tied_frame_goes_to_the_earlier_of_the_two_nearest_windows(start: float):
    """apply's default windows (2 s every 0.2 s) put each frame's centre halfway between two window
    centres: the tie went left or right by the rounding of seconds (109 left, 118 right, 168 equal)."""
    from engine.extraction.diarize import FileInput, frame_labels

    window, n = SlidingWindow(start=start, duration=2.0, step=0.2), 400
    labels = np.arange(n) % 2  # every frame inside 10 windows holds 5 votes of each
    item = FileInput("m1", Annotation(uri="m1"), Timeline(uri="m1"), Timeline(uri="m1"), window, n,
                     np.arange(n), None)  # type: ignore[arg-type]  # no tree: frames need none
    frames = frame_labels(item, labels, start + 0.2 * n)
    k = np.arange(9, n)  # the frames inside 10 windows: the nearest centres are those of k - 5 and k - 4
    assert frames[k].tolist() == labels[k - 5].tolist()
