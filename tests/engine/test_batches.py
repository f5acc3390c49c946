"""engine.data.batches: batch composition, crops inside speech, determinism, resume, ranks, problems."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from data_corpus import RAMP, RATE, SPEAKERS, make_corpus

from engine.config import Config, TaskConfig
from engine.data.batch_loader import make_loader
from engine.data.batches import SpeakerBatches, batches_per_epoch, share_weight
from engine.data.protocols import load_protocol, subset_files
from engine.data.speech_index import build_index
from engine.data.speech_regions import speech_regions
from engine.errors import AudioError, TrainingError

VOICES = "Tiny.SpeakerVerification.Voices"
CONFIG = Config(task=TaskConfig(duration=1.0, per_fold=3, per_label=2, per_epoch=0.0005))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def files(corpus: Path) -> list:
    return subset_files(load_protocol(VOICES, str(corpus)), "train")


@pytest.fixture(scope="module")
def index(files: list):
    return build_index(files, 1.0)


def dataset(index, seed: int = 0, **kwargs) -> SpeakerBatches:
    options = dict(per_fold=3, per_label=2, per_epoch=0.0005, sample_rate=RATE, seed=seed)
    options.update(kwargs)
    return SpeakerBatches(index, **options)


def collect(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(w.clone(), labels.clone()) for w, labels in loader]


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
                                    for x, y in zip(a, b, strict=True))


def test_epoch_length_is_per_epoch_days_of_audio() -> None:
    # 0.0005 day = 43.2 s of audio, 6 one-second chunks per batch
    assert batches_per_epoch(0.0005, 1.0, 3, 2) == 8
    assert batches_per_epoch(1.0, 2.0, 32, 1) == 1350


def test_a_batch_is_per_fold_speakers_times_per_label_chunks_of_speech(index, files) -> None:
    ds = dataset(index)
    regions = {f["uri"]: speech_regions(f) for f in files}
    for k in range(ds.batches_per_epoch):
        waveforms, labels = ds.batch(0, k)
        assert waveforms.shape == (6, RATE) and waveforms.dtype == np.float32
        assert labels.dtype == np.int64 and len(set(labels.tolist())) == 3
        assert all(np.bincount(labels, minlength=4)[s] in (0, 2) for s in range(4))
        plan = ds.sample_plan(0, k)
        for row, chunk, wave in zip(labels, plan, waveforms, strict=True):
            assert index.speakers[row] == chunk["speaker"]
            inside = [seg for seg in regions[chunk["uri"]][chunk["speaker"]]
                      if seg.start <= chunk["start"] and chunk["start"] + 1.0 <= seg.end + 1e-9]
            assert inside, f"{chunk} is not inside {chunk['speaker']}'s speech"
            # the ramp's first value is the frame the crop starts at
            assert wave[0] / RAMP == pytest.approx(round(chunk["start"] * RATE), abs=0.5)


def test_speakers_are_the_sorted_usable_labels_and_visited_evenly(index) -> None:
    assert index.speakers == sorted(SPEAKERS)
    ds = dataset(index, per_fold=3, per_label=1, per_epoch=1.0)
    counts = np.zeros(4, dtype=int)
    for k in range(2 * 2):  # two passes of ceil(4 / 3) = 2 folds
        counts += np.bincount(ds.plan(0, k).labels, minlength=4)
    assert counts.min() >= 2 and counts.sum() == 12


def test_same_seed_same_batches_whatever_the_workers(index) -> None:
    one = collect(make_loader(index, CONFIG, workers=0, seed=3))
    two = collect(make_loader(index, CONFIG, workers=2, seed=3))
    assert len(one) == 8 and same(one, two)
    other = collect(make_loader(index, CONFIG, workers=0, seed=4))
    assert not same(one, other)


def test_resume_at_a_batch_gives_the_remaining_batches(index) -> None:
    loader = make_loader(index, CONFIG, workers=0, seed=1, epochs=2)
    full = []
    for i, batch in enumerate(loader):
        full.append((batch[0].clone(), batch[1].clone()))
        if i == 10:
            state = loader.state_dict()
    assert len(full) == 16 and state == {"epoch": 1, "batch": 3, "seed": 1}
    resumed = make_loader(index, CONFIG, workers=1, seed=1, epoch=state["epoch"],
                          start_batch=state["batch"])
    assert len(resumed) == 5 and same(collect(resumed), full[11:])
    assert resumed.position == (1, 7)
    second = collect(make_loader(index, CONFIG, workers=0, seed=1, epoch=1))
    assert same(second, full[8:])


def test_ranks_split_each_batch_with_the_same_labels(index) -> None:
    whole = collect(make_loader(index, CONFIG, workers=0, seed=2))
    parts = [collect(make_loader(index, CONFIG, workers=0, seed=2, rank=r, world=2)) for r in (0, 1)]
    for k, (waveforms, labels) in enumerate(whole):
        assert torch.equal(torch.cat([parts[0][k][0], parts[1][k][0]]), waveforms)
        assert torch.equal(torch.cat([parts[0][k][1], parts[1][k][1]]), labels)



def test_uneven_shares_weighted_make_the_averaged_gradient_the_whole_batchs(index) -> None:
    """6 chunks on 4 ranks are shares of 1, 2, 1 and 2: DDP's mean of the ranks' gradients is the whole
    batch's only when each rank's mean loss is weighed by its share (before, a chunk of a small share
    weighed twice a chunk of a large one)."""
    world = 4
    (waveforms, labels), = collect(make_loader(index, CONFIG, workers=0, seed=2))[:1]
    parts = [collect(make_loader(index, CONFIG, workers=0, seed=2, rank=r, world=world))[0] for r in range(world)]
    assert [len(y) for _, y in parts] == [1, 2, 1, 2]
    torch.manual_seed(0)
    layer = torch.nn.Linear(waveforms.shape[1], int(labels.max()) + 1)

    def gradient(x: torch.Tensor, y: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
        layer.zero_grad()
        (torch.nn.functional.cross_entropy(layer(x), y) * weight).backward()
        return layer.weight.grad.clone()

    whole = gradient(waveforms, labels)
    averaged = sum(gradient(x, y, share_weight(r, world, len(labels))) for r, (x, y) in enumerate(parts)) / world
    unweighted = sum(gradient(x, y) for x, y in parts) / world
    assert torch.allclose(averaged, whole, atol=1e-6)
    assert not torch.allclose(unweighted, whole, atol=1e-3)
    assert [share_weight(r, 2, 6) for r in range(2)] == [1.0, 1.0]

def test_a_speaker_with_too_little_speech_is_reported_by_name(files, index) -> None:
    (problem,) = index.problems
    assert "'eve'" in problem.problem and "0.60 s" in problem.problem
    assert problem.path.endswith("eve_0.wav") and not problem.fatal
    with pytest.raises(TrainingError, match="speaker 'eve' has no speech region of at least 1 s"):
        build_index(files, 1.0, strict=True)
    few = build_index(files, 1.0, label_min_duration=9.0)
    assert few.speakers == ["alice", "bob"]
    assert any("'carol'" in p.problem and "label_min_duration" in p.problem for p in few.problems)


def test_an_unreadable_training_file_is_named_and_skipped(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(corpus.parent, root)
    (root / "wav" / "bob_1.wav").write_bytes(b"garbage, not a wav" * 64)
    files = subset_files(load_protocol(VOICES, str(root / "database.yml")), "train")
    index = build_index(files, 1.0)
    bad = [p for p in index.problems if p.path.endswith("bob_1.wav")]
    assert len(bad) == 1 and "cannot be read as audio" in bad[0].problem
    assert "bob_1" not in index.uris and "bob" in index.speakers
    with pytest.raises(AudioError, match="bob_1.wav"):
        build_index(files, 1.0, strict=True)


def test_impossible_folds_are_refused(index, files) -> None:
    with pytest.raises(TrainingError, match="per_fold=5 .* at most 4"):
        dataset(index, per_fold=5)
    bigger = dataclasses.replace(CONFIG, task=dataclasses.replace(CONFIG.task, duration=6.0))
    with pytest.raises(TrainingError, match="no speaker has a speech region of at least 6 s"):
        make_loader(files, bigger, workers=0, seed=0)


def test_the_demo_corpus_feeds_the_loader(demo_corpus: Path) -> None:
    files = subset_files(load_protocol("Demo.SpeakerVerification.Voices", str(demo_corpus)), "train")
    config = Config(task=TaskConfig(duration=1.0, per_fold=4, per_label=2, per_epoch=0.0002))
    loader = make_loader(files, config, workers=0, seed=0)
    assert not loader.problems and len(loader.speakers) >= 4
    waveforms, labels = next(iter(loader))
    assert waveforms.shape == (8, RATE) and len(set(labels.tolist())) == 4
    assert float(waveforms.abs().mean()) > 0


@pytest.mark.parametrize("how", ["shortened", "gone"])
def test_a_file_damaged_after_indexing_is_drawn_again_the_same_way_everywhere(tmp_path: Path, how: str) -> None:
    import soundfile as sf

    root = make_corpus(tmp_path / "tiny")
    index = build_index(subset_files(load_protocol(VOICES, str(root)), "train"), 1.0)
    before, labels = dataset(index).batch(0, 0)
    plan = dataset(index).plan(0, 0)
    path = index.paths[plan.files[0]]
    if how == "shortened":  # still a valid file, cut to 0.5 s: every crop of the index reaches past it
        audio, rate = sf.read(path, dtype="float32")
        sf.write(path, audio[:rate // 2], rate, subtype="FLOAT")
    else:
        Path(path).unlink()
    hit = np.flatnonzero(plan.files == plan.files[0])
    waveforms, again, problems = dataset(index).checked_batch(0, 0)
    assert {p.path for p in problems} == {path} and not any(p.fatal for p in problems)
    assert len(problems) >= len(hit)
    # the other rows are untouched; the damaged ones hold another chunk of the same speaker
    others = np.setdiff1d(np.arange(len(labels)), hit)
    assert np.array_equal(waveforms[others], before[others]) and np.array_equal(again, labels)
    assert not np.array_equal(waveforms[hit], before[hit])
    # a pure function of (seed, epoch, batch): the same in a loader worker, reported to this process
    loader = make_loader(index, CONFIG, workers=1, seed=0, epochs=1)
    w, lab = next(iter(loader))
    assert np.array_equal(w.numpy(), waveforms) and np.array_equal(lab.numpy(), again)
    assert {p.path for p in loader.take_found()} == {path}
