"""AS-norm against a brute-force computation, and its cohort of training speakers on the demo corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import ProtocolError
from engine.layout import TrainingDir
from engine.records import Run
from engine.validation.cohort import cohort_files, speaker_means, training_protocol
from engine.validation.score_norm import asnorm_scores, top_cohort_stats

PROTOCOL = "Demo.SpeakerVerification.Voices"


def brute_force(embeddings: dict, cohort: np.ndarray, trials: list, top_n: int) -> list[float]:
    """Matejka et al. 2017 / WeSpeaker score_norm.py, one trial at a time, with plain Python lists."""
    def cos(a, b):
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    def stats(x):
        top = sorted((cos(x, c) for c in cohort), reverse=True)[:top_n]
        mean = sum(top) / top_n
        return mean, (sum((t - mean) ** 2 for t in top) / top_n) ** 0.5

    out = []
    for _, u1, u2 in trials:
        s = cos(embeddings[u1], embeddings[u2])
        (me, se), (mt, st) = stats(embeddings[u1]), stats(embeddings[u2])
        out.append(0.5 * ((s - me) / se + (s - mt) / st))
    return out


def test_asnorm_equals_the_brute_force_computation() -> None:
    # hand-made: three files, five cohort speakers, in 3 dimensions
    embeddings = {"a": np.array([1.0, 0.0, 0.0]), "b": np.array([0.8, 0.6, 0.0]), "c": np.array([0.0, 0.0, 2.0])}
    cohort = np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.5], [0.0, -1.0, 0.2], [0.3, 0.0, 1.0]])
    trials = [(1, "a", "b"), (0, "a", "c"), (0, "b", "c"), (1, "c", "a")]
    raw = np.array([float(np.dot(embeddings[u1], embeddings[u2]) / (np.linalg.norm(embeddings[u1])
                                                                   * np.linalg.norm(embeddings[u2])))
                    for _, u1, u2 in trials])
    for top_n in (2, 3, 5):
        got = asnorm_scores(embeddings, cohort, trials, raw, top_n)
        np.testing.assert_allclose(got, brute_force(embeddings, cohort, trials, top_n), rtol=1e-12)
    # symmetric: swapping the sides of a trial does not change its normalised score
    swapped = asnorm_scores(embeddings, cohort, [(0, "c", "a")], raw[1:2], 3)
    np.testing.assert_allclose(swapped, asnorm_scores(embeddings, cohort, [(0, "a", "c")], raw[1:2], 3))


def test_top_cohort_stats_by_hand() -> None:
    # cosine scores of [1, 0] against the cohort: 1, 0, -1, 0.6; the top 2 are 1 and 0.6
    mean, std = top_cohort_stats(np.array([[2.0, 0.0]]), np.array([[1, 0], [0, 1], [-1, 0], [0.6, 0.8]]), 2)
    assert mean[0] == pytest.approx(0.8) and std[0] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        top_cohort_stats(np.ones((1, 2)), np.ones((3, 2)), 4)
    with pytest.raises(ValueError):  # one score has no spread: every normalised score would be ~1e11
        top_cohort_stats(np.ones((1, 2)), np.ones((3, 2)), 1)


def test_cohort_is_the_training_speakers_of_the_demo_corpus(demo_corpus: Path) -> None:
    assert training_protocol(TrainingDir(Path(f"exp/train/{PROTOCOL}.train")), None) == (PROTOCOL, "train")
    run = Run(id=1, kind="train", status="completed", out_dir="x", protocol="A.B.C", subset="development")
    assert training_protocol(TrainingDir(Path("x")), run) == ("A.B.C", "development")
    with pytest.raises(ProtocolError, match="training protocol"):
        training_protocol(TrainingDir(Path("exp/train/nothing")), None)

    cohort = cohort_files(PROTOCOL, "train", str(demo_corpus), size=4, per_speaker=1)
    assert len(cohort.speakers) == 8 and len(cohort.files) == 8  # 2/3 of the 12 speakers; one file each
    assert sorted(set(cohort.speaker_of.values())) == list(range(8))
    assert all(Path(p).is_file() for p in cohort.files.values())
    more = cohort_files(PROTOCOL, "train", str(demo_corpus), size=4, per_speaker=5)
    assert more.speakers == cohort.speakers and len(more.files) > len(cohort.files)
    with pytest.raises(ProtocolError, match="--cohort-size 9: .* has 8 training speaker"):
        cohort_files(PROTOCOL, "train", str(demo_corpus), size=9)
    # a database.yml of trials alone: the line said only that the training protocol was not defined
    with pytest.raises(ProtocolError, match=r"^--score-norm asnorm draws its cohort from the training speakers of "
                                            r"Demo\.SpeakerVerification\.Nobody train, which cannot be listed here: "
                                            r"protocol Demo\.SpeakerVerification\.Nobody is not defined"):
        cohort_files("Demo.SpeakerVerification.Nobody", "train", str(demo_corpus), size=4)

    embeddings = {uri: np.full(2, float(more.speaker_of[uri])) for uri in more.files}
    means = speaker_means(embeddings, more)
    np.testing.assert_allclose(means[:, 0], np.arange(8))
