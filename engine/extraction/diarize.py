"""The diarization check: cluster each file's window embeddings, score with pyannote.metrics.

What is judged is the embedding, nothing else (Bredin 2017, "TristouNet"; the tutorial's
"we can then use these extracted embeddings" step):

- speech activity is the reference's (oracle SAD): speech = ``annotation`` ∩ ``annotated``;
- a window is clustered when at least half of it is speech (:data:`MIN_SPEECH`);
- the clustered windows of a file are grouped by agglomerative clustering (Ward linkage on
  unit-length embeddings, i.e. in cosine geometry; ``engine.extraction.clustering``, scipy), into
  the oracle number of speakers or at a merge-height threshold tuned on the protocol's
  development subset;
- frames are ``step`` long (the extraction's hop); a frame takes the label most of the clustered
  windows that contain it carry (majority), a tie going to the window whose centre is nearest
  the frame's (the earlier of two as near); a speech frame inside no clustered window takes the nearest window's label;
- the hypothesis is the frames cropped to the reference speech, one speaker at a time: false
  alarm is zero by construction, missed speech is the overlapped speech a single label cannot
  cover, confusion is what the embedding got wrong.

Scored with ``pyannote.metrics.diarization.DiarizationErrorRate(collar, skip_overlap)`` inside
``annotated`` (the UEM). Its defaults are pyannote's "full" AMI MixHeadset practice: no
forgiveness collar (``collar=0``), overlapped speech scored (``skip_overlap=False``). pyannote's
``collar`` is the whole width around each reference boundary: NIST md-eval's ±0.25 s is
``collar=0.5``. Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyannote.core import Annotation, Segment, SlidingWindow, SlidingWindowFeature, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from engine.config.footprint import host_memory
from engine.errors import SpkembError
from engine.extraction.clustering import LINKAGE, METRIC, Tree, build_tree, check_clustering_memory

#: a window is clustered when this fraction of it is reference speech
MIN_SPEECH = 0.5
FRAME_RULE = "majority"
#: thresholds tried when tuning at most (spread evenly over the candidates when there are more)
N_THRESHOLDS = 100
#: the cuts tried give a development file 1 to this many times its speakers clusters (at least
#: MIN_CLUSTER_CAP): more are confusion, and scoring thousands of clusters took minutes a file
CLUSTERS_PER_SPEAKER = 4
MIN_CLUSTER_CAP = 10
NUM_SPEAKERS = ("oracle", "tuned")
#: how far past the end of its audio a reference may reach, seconds (turns rounded up at the end)
MAX_OVERHANG = 1.0


@dataclass(frozen=True)
class DerSettings:
    """How a diarization is scored and how many speakers are looked for."""

    collar: float = 0.0
    skip_overlap: bool = False
    num_speakers: str = "oracle"

    def metric(self) -> DiarizationErrorRate:
        return DiarizationErrorRate(collar=self.collar, skip_overlap=self.skip_overlap)


@dataclass(frozen=True)
class Components:
    """DER and its parts; the parts in seconds of the scored reference."""

    der: float
    missed: float
    false_alarm: float
    confusion: float
    total: float

    @classmethod
    def of(cls, metric: DiarizationErrorRate, parts: dict[str, float]) -> Components:
        return cls(der=float(metric.compute_metric(parts)), missed=float(parts["missed detection"]),
                   false_alarm=float(parts["false alarm"]), confusion=float(parts["confusion"]),
                   total=float(parts["total"]))

    def text(self) -> str:
        """``DER 12.34 % (missed 1.00 %, false alarm 0.00 %, confusion 11.34 %)``."""
        share = (lambda s: 100 * s / self.total) if self.total > 0 else (lambda s: 0.0)
        return (f"DER {100 * self.der:.2f} % (missed {share(self.missed):.2f} %, false alarm "
                f"{share(self.false_alarm):.2f} %, confusion {share(self.confusion):.2f} %)")


@dataclass(frozen=True)
class FileDer:
    uri: str
    components: Components
    speakers: int
    speakers_found: int
    hypothesis: Annotation = field(repr=False, compare=False)

    def record(self, rttm_path: str | None) -> dict[str, Any]:
        """The row of ``diarization_files`` (``Store.add_diarization``)."""
        c = self.components
        return {"uri": self.uri, "der": c.der, "missed": c.missed, "false_alarm": c.false_alarm,
                "confusion": c.confusion, "total": c.total, "speakers": self.speakers,
                "speakers_found": self.speakers_found, "rttm_path": rttm_path}


@dataclass(frozen=True)
class FileInput:
    """One file made ready for clustering: reference, UEM, speech and its clustered windows."""

    uri: str
    reference: Annotation
    annotated: Timeline
    speech: Timeline
    window: SlidingWindow
    n_windows: int
    clustered: np.ndarray  # indices of the windows that enter clustering
    tree: Tree

    @property
    def speakers(self) -> int:
        return len(self.reference.crop(self.annotated).labels())


def _cumulative(speech: Timeline, t: np.ndarray) -> np.ndarray:
    """Seconds of ``speech`` before each time of ``t`` (exact: piecewise linear)."""
    bounds = [(s.start, s.end) for s in speech]
    if not bounds:
        return np.zeros_like(t)
    xp = np.array([x for b in bounds for x in b])
    fp = np.concatenate([[0.0], np.cumsum([e - s for s, e in bounds])]).repeat(2)[1:-1]
    return np.interp(t, xp, fp)


def speech_fraction(window: SlidingWindow, n: int, speech: Timeline) -> np.ndarray:
    """Fraction of each of the ``n`` windows covered by ``speech``."""
    starts = window.start + window.step * np.arange(n)
    covered = _cumulative(speech, starts + window.duration) - _cumulative(speech, starts)
    return covered / window.duration


def _span(window: SlidingWindow, n: int) -> str:
    """The seconds ``n`` windows cover; apply's last window ends less than a ``step`` before the audio does."""
    return f"{window.start:g}–{window.start + (n - 1) * window.step + window.duration:g} s"


def _check_reach(uri: str, annotated: Timeline, window: SlidingWindow, n: int) -> None:
    """Refuse a UEM (or reference) reaching past the audio the ``n`` windows were cut from.

    The frames are counted up to the UEM's end: one of 1e308 seconds overflows, and speech past
    the audio would be scored as missed by embeddings that could never see it.
    """
    audio_end = window.start + n * window.step + window.duration  # apply: a file ends before this
    end = annotated.extent().end
    if end > audio_end + MAX_OVERHANG:
        raise SpkembError(f"file {uri}: its reference (UEM, or its turns without one) reaches {end:g} s, past "
                          f"the end of the audio its {n} embeddings were cut from ({_span(window, n)}): check "
                          "that its UEM and RTTM are of this recording, or extract it again (`spkemb-engine apply`)")


def prepare(file: Any, embeddings: SlidingWindowFeature) -> FileInput:
    """Reference, UEM, speech and the clustering tree of one protocol file."""
    uri = file["uri"]
    if "annotation" not in file or file["annotation"] is None:
        raise SpkembError(f"file {uri} has no reference annotation: the diarization check needs a "
                          "protocol with speaker turns (an RTTM under 'annotation:' in database.yml)")
    reference: Annotation = file["annotation"]
    annotated = file.get("annotated")  # None where the protocol has no `annotated:` (UEM) entry
    if annotated is None:
        annotated = Timeline([reference.get_timeline().extent()], uri=uri)
    speech = reference.crop(annotated).get_timeline().support()
    data, window = np.asarray(embeddings.data), embeddings.sliding_window
    _check_reach(uri, annotated, window, len(data))
    fraction = speech_fraction(window, len(data), speech)
    clustered = np.flatnonzero(fraction >= MIN_SPEECH)
    if clustered.size == 0:  # short turns only: every window that holds some speech
        clustered = np.flatnonzero(fraction > 0)
    if clustered.size == 0:  # would be scored as all speech missed, whatever the embeddings
        raise SpkembError(f"file {uri}: none of its {len(data)} windows ({_span(window, len(data))}) meets its "
                          f"reference speech ({speech.extent().start:g}–{speech.extent().end:g} s): the "
                          "embeddings are not of this recording, or the extraction's metadata is wrong; "
                          "run `spkemb-engine apply` again")
    check_clustering_memory(uri, clustered.size, host_memory())
    return FileInput(uri, reference, annotated, speech, window, len(data), clustered,
                     build_tree(data[clustered], uri))


def frame_labels(item: FileInput, labels: np.ndarray, end: float) -> np.ndarray:
    """Cluster of each ``step``-long frame up to ``end`` (majority of the covering windows)."""
    w = item.window
    n_frames = max(0, int(np.ceil((end - w.start) / w.step - 1e-9)))
    if item.clustered.size == 0 or n_frames == 0:
        return np.full(n_frames, -1, dtype=np.int64)
    votes = np.zeros((item.n_windows, int(labels.max()) + 1))
    votes[item.clustered, labels] = 1.0
    cumulative = np.vstack([np.zeros((1, votes.shape[1])), np.cumsum(votes, axis=0)])
    per = max(1, int(np.floor(w.duration / w.step + 1e-9)))  # windows containing a frame
    k = np.arange(n_frames)
    hi, lo = np.clip(k + 1, 0, item.n_windows), np.clip(k - per + 1, 0, item.n_windows)
    counts = cumulative[hi] - cumulative[lo]
    # ties (and frames with no vote) go to the clustered window whose centre is nearest, the earlier
    # of two as near; measured in steps, where a whole number of steps a window stays whole, so that
    # two centres as near are not told apart by the rounding of seconds
    per_window = w.duration / w.step
    if abs(per_window - round(per_window)) < 1e-9:
        per_window = round(per_window)
    centres = item.clustered + per_window / 2
    frame_centres = k + 0.5
    right = np.clip(np.searchsorted(centres, frame_centres), 1, len(centres) - 1) if len(centres) > 1 else \
        np.zeros(n_frames, dtype=np.int64)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(centres[left] - frame_centres) <= np.abs(centres[right] - frame_centres), left, right)
    counts[k, labels[nearest]] += 0.5
    return counts.argmax(axis=1)


def hypothesis(item: FileInput, labels: np.ndarray) -> Annotation:
    """The frames' labels as an Annotation, cropped to the reference speech (oracle SAD)."""
    w = item.window
    frames = frame_labels(item, labels, item.annotated.extent().end)
    annotation = Annotation(uri=item.uri)
    change = np.flatnonzero(np.diff(frames)) + 1
    for a, b in zip(np.concatenate([[0], change]), np.concatenate([change, [len(frames)]]), strict=True):
        if b > a and frames[a] >= 0:
            annotation[Segment(w.start + a * w.step, w.start + b * w.step)] = f"spk{int(frames[a]):02d}"
    return annotation.crop(item.speech, mode="intersection").support()


def cluster(item: FileInput, settings: DerSettings, threshold: float | None) -> np.ndarray:
    """Cluster of each clustered window: oracle number of speakers, or the tuned threshold."""
    if settings.num_speakers == "oracle":
        return item.tree.cut(n_clusters=item.speakers)
    return item.tree.cut(threshold=threshold)


def score(items: Sequence[FileInput], settings: DerSettings,
          threshold: float | None = None) -> tuple[list[FileDer], Components]:
    """Per-file and total DER of ``items`` (pyannote.metrics accumulates the total)."""
    metric = settings.metric()
    results = []
    for item in items:
        hyp = hypothesis(item, cluster(item, settings, threshold))
        parts = metric(item.reference, hyp, uem=item.annotated, detailed=True)
        results.append(FileDer(item.uri, Components.of(metric, parts), item.speakers,
                               len(hyp.labels()), hyp))
    parts = [r.components for r in results]
    total = Components(der=float(abs(metric)) if results else 0.0,
                       missed=sum(c.missed for c in parts), false_alarm=sum(c.false_alarm for c in parts),
                       confusion=sum(c.confusion for c in parts), total=sum(c.total for c in parts))
    return results, total


def tune_threshold(items: Sequence[FileInput], settings: DerSettings,
                   said: Callable[[str], None] | None = None) -> tuple[float, Components]:
    """The merge-height threshold with the lowest total DER on ``items`` (the development files).

    Tried: the cuts between each development tree's highest merges, which give its file 1, 2, ...
    up to :data:`CLUSTERS_PER_SPEAKER` times its speakers clusters (at least :data:`MIN_CLUSTER_CAP`),
    at most :data:`N_THRESHOLDS` of them, and none that cuts another file past its own cap. Quantiles
    of all the merge heights, tried before, are dense where a long file's tree splits it into hundreds
    of clusters and stepped from about 20 clusters to one at its top: its four-speaker cut was never
    tried. ``said`` is told how many files and thresholds before the first is scored.
    """
    if not items:
        raise SpkembError("no development file to tune the clustering threshold on")
    candidates = np.unique(np.round(np.concatenate([_cuts(item) for item in items]), 9))
    candidates = candidates[_plausible(items, candidates)]
    if len(candidates) > N_THRESHOLDS:
        candidates = candidates[np.unique(np.linspace(0, len(candidates) - 1, N_THRESHOLDS).round().astype(int))]
    if said is not None:
        said(f"diarize: tuning the clustering threshold on {len(items)} development file(s): "
             f"{len(candidates)} thresholds to score")
    tuned = DerSettings(settings.collar, settings.skip_overlap, "tuned")
    best: tuple[float, Components] | None = None
    for threshold in candidates:
        _, total = score(items, tuned, float(threshold))
        if best is None or total.der < best[1].der:
            best = (float(threshold), total)
    assert best is not None
    return best


def _cuts(item: FileInput) -> np.ndarray:
    """Thresholds that cut ``item``'s tree into 1, 2, ... up to its cap of clusters: one above its highest
    merge, then halfway between each of its highest merges and the next."""
    merges = np.sort(item.tree.heights())
    if len(merges) == 0:
        return np.zeros(1)
    top = merges[::-1][:_cap(item)]
    return np.concatenate([[top[0] + 1e-6], (top[:-1] + top[1:]) / 2])


def _cap(item: FileInput) -> int:
    return max(CLUSTERS_PER_SPEAKER * item.speakers, MIN_CLUSTER_CAP)


def _plausible(items: Sequence[FileInput], thresholds: np.ndarray) -> np.ndarray:
    """Which ``thresholds`` cut no file into more clusters than its cap (a Ward tree's merge heights
    only grow: a cut at t leaves one cluster more than the merges above t)."""
    keep = np.ones(len(thresholds), dtype=bool)
    for item in items:
        merges = np.sort(item.tree.heights())
        clusters = 1 + len(merges) - np.searchsorted(merges, thresholds, side="right")
        keep &= clusters <= _cap(item)
    return keep


def describe() -> dict[str, str]:
    """The fixed conventions recorded with every diarization."""
    return {"linkage": f"{LINKAGE}/{METRIC}", "frame_rule": FRAME_RULE}
