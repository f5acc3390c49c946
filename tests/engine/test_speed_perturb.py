"""SpeedPerturb: sped-up chunks read from the ramp corpus, one class per speaker and factor, pure batches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from data_corpus import RAMP, RATE, SPEAKERS, make_corpus

from engine.config import AugmentationConfig, Config, TaskConfig, parse_config
from engine.data.batch_loader import make_loader
from engine.data.batches import SpeakerBatches
from engine.data.protocols import load_protocol, subset_files
from engine.data.speech_index import build_index
from engine.data.speech_regions import speech_regions
from engine.errors import ConfigError

VOICES = "Tiny.SpeakerVerification.Voices"
FACTORS = (0.9, 1.0, 1.1)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list:
    corpus = make_corpus(tmp_path_factory.mktemp("tiny"))
    return subset_files(load_protocol(VOICES, str(corpus)), "train")


@pytest.fixture(scope="module")
def index(files: list):
    return build_index(files, 1.0)


def dataset(index, speeds=FACTORS, seed: int = 0) -> SpeakerBatches:
    return SpeakerBatches(index, per_fold=3, per_label=2, per_epoch=0.0005, sample_rate=RATE, seed=seed,
                          speeds=speeds)


def test_each_factor_copy_of_a_speaker_is_a_class_of_its_own(index) -> None:
    ds = dataset(index)
    # classes: the speakers at 0.9, then at 1.0 (the plain names), then at 1.1
    assert ds.speakers == ([f"sp0.9-{s}" for s in SPEAKERS] + list(SPEAKERS)
                           + [f"sp1.1-{s}" for s in SPEAKERS])
    seen = set()
    for k in range(ds.batches_per_epoch):
        plan = ds.plan(0, k)
        speakers = plan.labels % len(SPEAKERS)
        assert np.array_equal(plan.labels // len(SPEAKERS), plan.speeds)
        # per_label chunks of per_fold distinct speakers, whatever their speeds
        assert len(set(speakers.tolist())) == 3
        seen.update(plan.labels.tolist())
    assert len(seen) > len(SPEAKERS)  # several speeds drawn over an epoch


def test_a_sped_up_chunk_is_the_resampled_speech_and_stays_inside_it(index, files) -> None:
    ds = dataset(index)
    regions = {f["uri"]: speech_regions(f) for f in files}
    checked = set()
    for k in range(ds.batches_per_epoch):
        waveforms, labels = ds.batch(0, k)
        assert waveforms.shape == (6, RATE)
        for chunk, wave in zip(ds.sample_plan(0, k), waveforms, strict=True):
            factor = chunk["speed"]
            checked.add(factor)
            # the ramp rises by RAMP per sample: played f times faster, by f * RAMP per sample
            # (away from the resampling filter's edges)
            slope = (wave[12000] - wave[2000]) / 10000 / RAMP
            assert slope == pytest.approx(factor, abs=2e-3), chunk
            # and it starts where the plan says, with no fade-in (the resampler saw the audio
            # before the chunk); within the resampling filter's gain error (< 0.1 %)
            for j in (0, 2000):
                assert wave[j] / RAMP == pytest.approx(chunk["start"] * RATE + j * factor, rel=1e-3, abs=2)
            # a chunk reading f seconds of audio still lies inside the speaker's speech
            needed = 1.0 if factor == 1.0 else (np.ceil(RATE * factor) + 64) / RATE
            assert any(seg.start <= chunk["start"] and chunk["start"] + needed <= seg.end + 1e-6
                       for seg in regions[chunk["uri"]][chunk["speaker"].split("-", 1)[-1]]), chunk
    assert checked == set(FACTORS)


def test_batches_stay_a_pure_function_of_seed_epoch_and_batch(index) -> None:
    cfg = Config(task=TaskConfig(duration=1.0, per_fold=3, per_label=2, per_epoch=0.0005),
                 augmentation=AugmentationConfig(speeds=FACTORS))
    whole = [(w.clone(), labels.clone()) for w, labels in make_loader(index, cfg, workers=0, seed=5)]
    resumed = [(w.clone(), labels.clone()) for w, labels in make_loader(index, cfg, workers=2, seed=5, start_batch=3)]
    assert len(whole) == 8 and len(resumed) == 5
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(whole[3:], resumed, strict=True))
    # without speed perturbation the batches are exactly those of a run that never had it
    plain = dataclasses.replace(cfg, augmentation=None)
    one = next(iter(make_loader(index, plain, workers=0, seed=5)))
    assert np.array_equal(one[1], dataset(index, speeds=(), seed=5).batch(0, 0)[1])
    assert one[1].max() < len(SPEAKERS)


def test_speed_perturb_config_entry() -> None:
    cfg = parse_config("architecture: {name: SincTDNN}\ntask: {name: AdditiveAngularMarginLoss}\n"
                       "data_augmentation:\n  - {name: SpeedPerturb}\n"
                       "  - {name: AddNoise, params: {collection: A.Collection.N}}\n")
    assert cfg.augmentation.speeds == FACTORS and cfg.augmentation.noise
    for bad, words in (("[]", "speed factors"), ("[0.9, 0.9]", "twice"), ("[0.1]", "[0.5, 2]"),
                       ("fast", "speed factors")):
        with pytest.raises(ConfigError) as e:
            parse_config("architecture: {name: SincTDNN}\ntask: {name: AdditiveAngularMarginLoss}\n"
                         f"data_augmentation: {{name: SpeedPerturb, params: {{factors: {bad}}}}}\n")
        assert e.value.key == "data_augmentation.params.factors" and words in str(e.value)
