"""engine.data.augment: noise at the requested SNR, reverberation keeping the level, determinism."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from data_corpus import RATE, make_corpus

from engine.config import AugmentationConfig, Config, ReverbConfig, TaskConfig
from engine.data.augment import AddNoise, AddReverb, build_augmentation, collection_paths
from engine.data.batch_loader import make_loader
from engine.data.protocols import load_protocol, subset_files
from engine.data.speech_index import build_index
from engine.errors import AudioError

NOISE = "Noise.Collection.Background"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def speech() -> np.ndarray:
    t = np.arange(RATE) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))


def test_noise_is_mixed_at_the_snr_drawn(corpus: Path, speech: np.ndarray) -> None:
    paths = collection_paths([NOISE], str(corpus))
    assert [Path(p).name for p in paths] == ["white.wav", "blip.wav"]
    fixed = AddNoise(paths, snr_min=10.0, snr_max=10.0, sample_rate=RATE)
    noisy = fixed(speech, np.random.default_rng(0))
    assert noisy.shape == speech.shape and noisy.dtype == np.float32
    assert snr(speech, noisy) == pytest.approx(10.0, abs=0.01)

    ranged = AddNoise(paths, snr_min=5.0, snr_max=15.0, sample_rate=RATE)
    measured = [snr(speech, ranged(speech, np.random.default_rng(seed))) for seed in range(20)]
    assert all(5.0 - 0.01 <= m <= 15.0 + 0.01 for m in measured)
    assert max(measured) - min(measured) > 3.0


def test_noise_shorter_than_the_chunk_is_concatenated(corpus: Path, speech: np.ndarray) -> None:
    blip = str(corpus.parent / "noise" / "blip.wav")  # 0.3 s for a 1 s chunk
    add = AddNoise([blip], snr_min=0.0, snr_max=0.0, sample_rate=RATE)
    noise = add.noise(RATE, np.random.default_rng(0))
    assert noise.shape == (RATE,) and np.all(noise[-100:] != 0)
    # unit RMS pieces, so the SNR stays exact
    assert snr(speech, add(speech, np.random.default_rng(1))) == pytest.approx(0.0, abs=0.01)


def test_noise_is_a_function_of_the_generator(corpus: Path, speech: np.ndarray) -> None:
    add = AddNoise(collection_paths([NOISE], str(corpus)), snr_min=5, snr_max=15, sample_rate=RATE)
    a = add(speech, np.random.default_rng(7))
    assert np.array_equal(a, add(speech, np.random.default_rng(7)))
    assert not np.array_equal(a, add(speech, np.random.default_rng(8)))


def test_unreadable_noise_files_are_reported_or_fatal(corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope" * 100)
    good = str(corpus.parent / "noise" / "white.wav")
    add = AddNoise([good, bad], snr_min=5, snr_max=15, sample_rate=RATE)
    assert add.paths == [good] and [p.path for p in add.problems] == [str(bad)]
    with pytest.raises(AudioError, match="none of the 1 noise file"):
        AddNoise([bad], snr_min=5, snr_max=15, sample_rate=RATE)


def test_reverb_keeps_the_level_and_a_delta_keeps_the_signal(tmp_path: Path, speech: np.ndarray) -> None:
    delta = np.zeros(800, dtype=np.float32)
    delta[100] = 0.5
    sf.write(tmp_path / "delta.wav", delta, RATE, subtype="FLOAT")
    rng = np.random.default_rng(0)
    decay = (rng.standard_normal(4000) * np.exp(-np.arange(4000) / 800)).astype(np.float32)
    sf.write(tmp_path / "room.wav", decay, RATE, subtype="FLOAT")

    never = AddReverb([tmp_path / "room.wav"], probability=0.0, sample_rate=RATE)
    assert never(speech, np.random.default_rng(0)) is speech
    dry = AddReverb([tmp_path / "delta.wav"], probability=1.0, sample_rate=RATE)
    np.testing.assert_allclose(dry(speech, np.random.default_rng(0)), speech, atol=1e-5)
    room = AddReverb([tmp_path / "room.wav"], probability=1.0, sample_rate=RATE)
    wet = room(speech, np.random.default_rng(0))
    assert np.sqrt(np.mean(wet ** 2)) == pytest.approx(np.sqrt(np.mean(speech ** 2)), rel=1e-3)
    assert np.abs(wet - speech).max() > 0.05


def test_config_augmentation_in_the_loader(corpus: Path) -> None:
    root = corpus.parent
    (root / "rirs").mkdir()
    sf.write(root / "rirs" / "delta.wav", np.eye(1, 400, 0, dtype=np.float32)[0], RATE, subtype="FLOAT")
    (root / "lists" / "rirs.lst").write_text("delta\n")
    yml = root / "rirs.yml"
    yml.write_text(corpus.read_text().replace(
        "Protocols:\n", "  Rirs: rirs/{uri}.wav\nProtocols:\n").replace(
        "  Noise:\n    Collection:", "  Rirs:\n    Collection:\n      Simulated:\n"
        "        uri: lists/rirs.lst\n  Noise:\n    Collection:"))
    assert build_augmentation(None, sample_rate=RATE) is None
    augmentation = AugmentationConfig(collection=(NOISE,), snr_min=5, snr_max=5,
                                      reverb=ReverbConfig(collection=("Rirs.Collection.Simulated",),
                                                          probability=1.0))
    chain = build_augmentation(augmentation, sample_rate=RATE, database=str(yml))
    assert [type(step).__name__ for step in chain.steps] == ["AddReverb", "AddNoise"]

    files = subset_files(load_protocol("Tiny.SpeakerVerification.Voices", str(yml)), "train")
    index = build_index(files, 1.0)
    config = Config(task=TaskConfig(duration=1.0, per_fold=2, per_label=2, per_epoch=0.0001),
                    augmentation=augmentation)
    plain = [w.clone() for w, _ in make_loader(index, config, workers=0, seed=0)]
    noisy = [w.clone() for w, _ in make_loader(index, config, workers=0, seed=0, augment=chain)]
    again = [w.clone() for w, _ in make_loader(index, config, workers=2, seed=0, augment=chain)]
    assert all(torch.equal(a, b) for a, b in zip(noisy, again, strict=True))
    for clean, mixed in zip(plain, noisy, strict=True):
        for c, m in zip(clean.numpy(), mixed.numpy(), strict=True):
            assert snr(c, m) == pytest.approx(5.0, abs=0.05)
    no_noise = dataclasses.replace(augmentation, collection=())
    (step,) = build_augmentation(no_noise, sample_rate=RATE, database=str(yml)).steps
    assert isinstance(step, AddReverb)
