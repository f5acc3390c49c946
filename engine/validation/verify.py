"""``spkemb-engine verify VAL_DIR ENROLMENT TEST...``: the same speaker or not, on recordings of one's own.

The checkpoint VAL_DIR points at (or ``--epoch``) embeds the enrolment recording and each test
recording as ``validate`` embeds a trial's files (the mean of ``task.duration`` windows sliding by
a quarter of it, or one pass where VAL_DIR's scores were made with ``--whole-file``), so that the
cosine score of each pair can be held against the threshold at which that checkpoint's validation
found its equal error rate. With ``--score-norm asnorm`` the scores are AS-norm scores, normalised
with the cohort that VAL_DIR's AS-norm validation kept for that checkpoint, and held against the
threshold of its normalised EER. One line per test recording on standard output (enrolment, test,
score, decision: tab-separated), what the threshold is and where it came from on standard error.
Nothing is written and no run is recorded.

Torch is imported once the folder, the recordings and the threshold have been checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.console import out, say
from engine.layout import CheckpointName, ValidationDir
from engine.records import ValidationResult, checkpoint_title
from engine.requests import VerifyRequest
from engine.validation.cohort_means import CohortMeans, read_cohort_means
from engine.validation.recordings import (
    check_recordings,
    embed_recordings,
    embeds_whole_files,
    present_checkpoint,
    shorter_than_half_a_window,
)
from engine.validation.score_files import read_scores, result_from_scores, score_text
from engine.validation.score_norm import asnorm_scores
from engine.validation.selection import results_from_store
from engine.validation.val_dir import given_val_dir

#: the decision's words, as the line prints them
SAME, DIFFERENT, UNDECIDED = "same", "different", "-"
#: what a path's name may hold that would split its line or field
_ESCAPED = {ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"}


@dataclass(frozen=True)
class Threshold:
    """The cosine score above which two recordings are said to be of one speaker, and its source."""

    value: float
    result: ValidationResult
    trials: str
    normalised: bool = False

    def describe(self) -> str:
        what = "AS-norm EER" if self.normalised else "EER"
        return (f"threshold {score_text(self.value)}: where {checkpoint_title(self.result.checkpoint)} reached its "
                f"{what} of {self.result.eer_text} on {self.trials}")

    def decide(self, score: float) -> str:
        return SAME if score >= self.value else DIFFERENT


def decision_threshold(val: ValidationDir, name: CheckpointName, store: Any = None, *,
                       normalised: bool = False) -> Threshold | None:
    """The EER threshold of raw (or AS-norm) scores recorded for checkpoint ``name`` in VAL_DIR (the runs
    database's validation, else its score file, alone: a VAL_DIR of 250 epochs is not recomputed for
    one), None when it was not validated there (so) or its record holds no threshold."""
    recorded = results_from_store(store, val) if store is not None else []
    result = next((r for r in recorded if r.checkpoint == name), None)
    if normalised and result is not None:
        result = result.normalised()
    scores = val.normalised_score_file(name) if normalised else val.score_file(name)
    if result is None and scores.is_file():
        result = result_from_scores(name, *read_scores(scores), source=scores)
    if result is None or result.threshold is None:
        return None
    return Threshold(result.threshold, result, val.root.name, normalised)


def cmd_verify(args: VerifyRequest) -> int:
    """``spkemb-engine verify [--epoch E] VAL_DIR ENROLMENT TEST...``: see the module docstring."""
    from engine.store import default_db_path, existing_store

    val = given_val_dir(args.val_dir)
    name, checkpoint = present_checkpoint(val, args.epoch)
    recordings = [args.enrolment, *args.tests]
    cohort = read_cohort_means(val.cohort_file(name)) if args.score_norm else None
    seconds = check_recordings(recordings)
    with existing_store(default_db_path(args.db)) as store:
        threshold = decision_threshold(val, name, store, normalised=cohort is not None)
    whole = embeds_whole_files(val)
    embedded = embed_recordings(recordings, checkpoint, whole_file=whole, device=args.device, batch=args.batch,
                                db=args.db, trust_checkpoint=args.trust_checkpoint)
    if cohort is not None:
        cohort.check_dimension(embedded.rows.shape[1], val.cohort_file(name))
    scores = _scores(embedded.rows, cohort)
    say(f"verify: {checkpoint_title(name)} of {val.root}: {'AS-norm of the ' if cohort else ''}cosine of "
        f"{'whole-file' if whole else 'window-mean'} embeddings, as validate scores a trial"
        + (f" (top {cohort.top_n} of {len(cohort.means)} cohort speakers)" if cohort else ""))
    say(f"verify: {threshold.describe()}" if threshold is not None else
        f"verify: no decision: {checkpoint_title(name)} has no {'AS-norm ' if cohort else ''}EER threshold recorded "
        "in this VAL_DIR (validate it)")
    for path in shorter_than_half_a_window(seconds, embedded.window):  # embedded whole from little audio
        say(f"verify: {_field(path)} lasts {seconds[path]:.2f} s, under half of the network's "
            f"{embedded.window:g} s window: its scores say little")
    for test, score in zip(args.tests, scores, strict=True):
        decision = threshold.decide(score) if threshold is not None else UNDECIDED
        out(f"{_field(args.enrolment)}\t{_field(test)}\t{score_text(score)}\t{decision}")
    return 0


def _field(path: str) -> str:
    """A path as one field of a tab-separated line: a tab or a line break in its name shown escaped."""
    return path.translate(_ESCAPED)


def _scores(rows: np.ndarray, cohort: CohortMeans | None) -> list[float]:
    """The cosine score of the first row (the enrolment) against each of the others, as validate scores
    a trial, and with ``cohort`` its AS-norm, as validate normalises one."""
    from engine.validation.trial_scores import cosine_scores

    trials = [(0, "0", str(i)) for i in range(1, len(rows))]
    embeddings = {str(i): row for i, row in enumerate(rows)}
    scores = cosine_scores(embeddings, trials)
    if cohort is not None:
        scores = asnorm_scores(embeddings, cohort.means, trials, np.asarray(scores), cohort.top_n)
    return [float(score) for score in scores]
