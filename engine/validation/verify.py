"""``spkemb-engine verify VAL_DIR ENROLMENT TEST...``: the same speaker or not, on recordings of one's own.

The checkpoint VAL_DIR points at (or ``--epoch``) embeds the enrolment recording and each test
recording as ``validate`` embeds a trial's files (the mean of ``task.duration`` windows sliding by
a quarter of it, or one pass where VAL_DIR's scores were made with ``--whole-file``), so that the
cosine score of each pair can be held against the threshold at which that checkpoint's validation
found its equal error rate. One line per test recording on standard output (enrolment, test,
score, decision: tab-separated), what the threshold is and where it came from on standard error.
Nothing is written and no run is recorded.

Torch is imported once the folder, the recordings and the threshold have been checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.console import out, say
from engine.data.audio_checks import FROM_THE_PROTOCOL, audio_info
from engine.errors import AudioError, SpkembError
from engine.layout import CheckpointName, ValidationDir
from engine.records import ValidationResult, checkpoint_list, checkpoint_title
from engine.requests import VerifyRequest
from engine.validation.params import chosen_checkpoint
from engine.validation.reuse import recorded_method
from engine.validation.score_files import read_scores, result_from_scores
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

    def describe(self) -> str:
        return (f"threshold {self.value:.6f}: where {checkpoint_title(self.result.checkpoint)} reached its "
                f"EER of {self.result.eer_text} on {self.trials}")

    def decide(self, score: float) -> str:
        return SAME if score >= self.value else DIFFERENT


def decision_threshold(val: ValidationDir, name: CheckpointName, store: Any = None) -> Threshold | None:
    """The raw-score EER threshold recorded for checkpoint ``name`` in VAL_DIR (the runs database's
    validation, else its score file, alone: a VAL_DIR of 250 epochs is not recomputed for one), None
    when it was not validated there or its record holds no threshold."""
    recorded = results_from_store(store, val) if store is not None else []
    result = next((r for r in recorded if r.checkpoint == name), None)
    scores = val.score_file(name)
    if result is None and scores.is_file():
        result = result_from_scores(name, *read_scores(scores), source=scores)
    if result is None or result.threshold is None:
        return None
    return Threshold(result.threshold, result, val.root.name)


def embeds_whole_files(val: ValidationDir) -> bool:
    """Whether VAL_DIR's scores embed each file in one pass (``validate --whole-file``); without a record
    of how they were made, validate's default: windows."""
    method = recorded_method(val)
    return isinstance(method, dict) and method.get("embedding") == "whole-file"


def check_recordings(paths: list[str]) -> dict[str, float]:
    """The duration of each recording, in seconds; one that is missing or no audio is refused (an
    AudioError naming it) before the network is read."""
    try:
        return {path: audio_info(path).duration for path in paths}
    except AudioError as e:  # said of a protocol's file: these are the user's own
        raise AudioError(str(e).removesuffix(FROM_THE_PROTOCOL), path=e.path) from e


def cmd_verify(args: VerifyRequest) -> int:
    """``spkemb-engine verify [--epoch E] VAL_DIR ENROLMENT TEST...``: see the module docstring."""
    from engine.store import default_db_path, existing_store

    val = given_val_dir(args.val_dir)
    name = chosen_checkpoint(val, args.epoch)
    checkpoint = val.training.checkpoint(name)
    if not checkpoint.is_file():
        there = checkpoint_list([*val.training.epochs(), *val.training.named_checkpoints()])
        raise SpkembError(f"{checkpoint_title(name)} has no checkpoint at {checkpoint} (deleted by `spkemb-engine "
                          f"clean`, or never written): pass --epoch with one that is there ({there})")
    recordings = [args.enrolment, *args.tests]
    seconds = check_recordings(recordings)
    with existing_store(default_db_path(args.db)) as store:
        threshold = decision_threshold(val, name, store)
    whole = embeds_whole_files(val)
    scores, window = _scores(args, checkpoint, recordings, whole)
    say(f"verify: {checkpoint_title(name)} of {val.root}: cosine of {'whole-file' if whole else 'window-mean'} "
        "embeddings, as validate scores a trial")
    say(f"verify: {threshold.describe()}" if threshold is not None else
        f"verify: no decision: {checkpoint_title(name)} has no EER threshold recorded in this VAL_DIR (validate it)")
    for path in (p for p in seconds if seconds[p] < window / 2):  # zero-padded to a window: little to go on
        say(f"verify: {_field(path)} lasts {seconds[path]:.2f} s, under half of the network's {window:g} s window: "
            "its scores say little")
    for test, score in zip(args.tests, scores, strict=True):
        decision = threshold.decide(score) if threshold is not None else UNDECIDED
        out(f"{_field(args.enrolment)}\t{_field(test)}\t{score:.6f}\t{decision}")  # the score as a score file has it
    return 0


def _field(path: str) -> str:
    """A path as one field of a tab-separated line: a tab or a line break in its name shown escaped."""
    return path.translate(_ESCAPED)


def _scores(args: VerifyRequest, checkpoint: Path, recordings: list[str],
            whole: bool) -> tuple[list[float], float]:
    """The cosine score of the enrolment recording (the first) against each of the others, as
    validate scores a trial; and the network's window, in seconds."""
    from engine.inference.network import load_network
    from engine.process.checkpoints import Trust
    from engine.process.distributed import pick_device
    from engine.validation.trial_scores import cosine_scores, embed_files, require_finite

    trust = Trust(args.db, accept_changed=args.trust_checkpoint)
    network = load_network(checkpoint, pick_device(args.device), trust=trust)
    files = {str(i): path for i, path in enumerate(recordings)}  # one recording may be given twice
    embeddings = embed_files(network.model, files, duration=network.config.task.duration,
                             sample_rate=network.config.sample_rate, batch=args.batch, whole_file=whole)
    require_finite(embeddings, checkpoint)
    trials = [(0, "0", str(i)) for i in range(1, len(recordings))]
    return [float(s) for s in cosine_scores(embeddings, trials)], network.config.task.duration
