"""Training's data in process: the index built then loaded from the cache, the epoch's batches,
a resume point that continues the very same batch sequence, files changed since the index, and
the memory check before the first step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from engine.config import parse_config
from engine.data.batches import Position
from engine.errors import TrainingError
from engine.process.distributed import World
from engine.training.memory import check_memory, index_bytes
from engine.training.training_data import TrainingData, prepare_training_data
from tests.conftest import TINY_CONFIG

PROTOCOL = "Demo.SpeakerVerification.Voices"
CONFIG = parse_config(TINY_CONFIG, "tiny")


def prepare(demo_corpus: Path, **kwargs) -> TrainingData:
    return prepare_training_data(CONFIG, PROTOCOL, "train", database=str(demo_corpus), strict=False, seed=3,
                                 world=World(), **kwargs)


def epoch_batches(data: TrainingData) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in data.batches()]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of the test's own: whether an index is built or loaded is the test's to see."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPKEMB_CACHE", str(cache))
    return cache


def test_an_epoch_is_its_batches_and_a_resume_point_continues_the_same_sequence(demo_corpus: Path) -> None:
    data = prepare(demo_corpus)
    assert len(data.speakers) == 8 and data.problems == [] and data.changed == []
    assert data.position == Position(0, 0)
    first = epoch_batches(data)
    assert len(first) == data.batches_per_epoch >= 2
    chunk, task = int(CONFIG.task.duration * CONFIG.sample_rate), CONFIG.task
    for x, y in first:
        assert x.shape == (task.batch_size, chunk) and y.shape == (task.batch_size,)
        assert 0 <= int(y.min()) and int(y.max()) < len(data.speakers)
        # per_label chunks of per_fold speakers
        assert sorted(torch.bincount(y).tolist())[-task.per_fold:] == [task.per_label] * task.per_fold
    assert data.position == Position(1, 0)
    second = epoch_batches(data)
    assert len(second) == data.batches_per_epoch
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, second, strict=True))  # a new draw each epoch

    # a run resumed after one batch of its second epoch draws what the uninterrupted run drew next
    again = prepare(demo_corpus)
    again.seek(Position(1, 1))
    resumed = epoch_batches(again)
    assert len(resumed) == len(second) - 1
    for (x, y), (x2, y2) in zip(resumed, second[1:], strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_the_second_start_loads_the_index_and_names_the_files_changed_since(demo_corpus: Path, tmp_path: Path,
                                                                            _cache: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    database = corpus / demo_corpus.name
    built = prepare(database)
    assert built.changed == []
    cached = sorted(_cache.rglob("manifest.json"))
    assert cached, "the index went to the cache"
    loaded = prepare(database)
    assert loaded.changed == [] and loaded.index.speakers == built.index.speakers
    assert sorted(_cache.rglob("manifest.json")) == cached  # loaded, not built again

    wav = Path(str(built.index.paths[0]))
    wav.write_bytes(wav.read_bytes() + b"\0" * 64)  # grown: its size changed since it was indexed
    changed = prepare(database).changed
    assert [p.path for p in changed] == [str(wav)] and changed[0] in prepare(database).problems


def test_files_the_annotation_forgot_are_said_in_the_index_line(demo_corpus: Path, tmp_path: Path,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    """A file with no turn gives no chunk and no error: the index's line counts such files and names one."""
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    rttm = corpus / "voxceleb" / "lists" / "train.rttm"
    lines = rttm.read_text().splitlines(keepends=True)
    forgotten = lines[0].split()[1]
    rttm.write_text("".join(line for line in lines if line.split()[1] != forgotten))
    data = prepare(corpus / demo_corpus.name)
    assert str(Path(forgotten)) in [str(u) for u in data.index.uris]  # listed and readable, only silent
    assert f"1 of them holds no speech region, e.g. {forgotten} (no turn in the annotation" in capfd.readouterr().err


def test_the_memory_check_refuses_a_config_that_cannot_fit(demo_corpus: Path) -> None:
    data = prepare(demo_corpus)
    assert index_bytes(data.index) > 0
    check_memory(CONFIG, torch.device("cpu"), workers=0, classes=len(data.speakers), index=data.index)
    # a classifier over 10^10 speakers: terabytes of weights
    with pytest.raises(TrainingError, match="training this config needs .*: lower task per_fold"):
        check_memory(CONFIG, torch.device("cpu"), workers=0, classes=10**10, index=data.index)
