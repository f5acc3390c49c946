"""Recordings of one's own, embedded with a validated checkpoint as ``validate`` embeds a trial's files.

``verify`` scores them against each other, ``embed`` writes their embeddings. Both check the
checkpoint and every recording before torch is imported (a missing file, a folder, no audio: one
line naming it), then embed each recording as the mean of ``task.duration`` windows sliding by a
quarter of it, or in one pass where VAL_DIR's scores were made with ``validate --whole-file``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.config import load_config
from engine.console import say
from engine.data.audio_checks import FROM_THE_PROTOCOL, audio_info
from engine.errors import AudioError, SpkembError
from engine.layout import CheckpointName, TrainingDir, ValidationDir
from engine.progress import Progress
from engine.records import checkpoint_list, checkpoint_title
from engine.validation.params import chosen_checkpoint
from engine.validation.reuse import recorded_method


@dataclass(frozen=True)
class Embedded:
    """One embedding per recording, in the order given, and what made them."""

    #: (recordings, dimension), float64 as validate scores them
    rows: np.ndarray
    checkpoint: Path
    sha256: str
    #: the network's window, and the hop of the windows averaged (None: whole files), in seconds
    window: float
    step: float | None
    sample_rate: int
    architecture: str


def present_checkpoint(val: ValidationDir, epoch: CheckpointName | None) -> tuple[CheckpointName, Path]:
    """The checkpoint ``--epoch`` names, else the one VAL_DIR's params.yml points at, and its file;
    refused, naming the ones there are, when that file is gone."""
    name = chosen_checkpoint(val, epoch)
    path = val.training.checkpoint(name)
    if not path.is_file():
        there = checkpoint_list([*val.training.epochs(), *val.training.named_checkpoints()])
        raise SpkembError(f"{checkpoint_title(name)} has no checkpoint at {path} (deleted by `spkemb-engine "
                          f"clean`, or never written): pass --epoch with one that is there ({there})")
    return name, path


def check_recordings(paths: list[str]) -> dict[str, float]:
    """The duration of each recording, in seconds; one that is missing or no audio is refused (an
    AudioError naming it) before the network is read."""
    seconds: dict[str, float] = {}
    # a list of VoxCeleb's size takes minutes to check: shown once it lasts, the few of verify in silence
    with Progress().phase("checking recordings", len(paths), said=False, opening=False) as phase:
        for path in paths:
            try:
                seconds[path] = audio_info(path).duration
            except AudioError as e:  # said of a protocol's file: these are the user's own
                raise AudioError(str(e).removesuffix(FROM_THE_PROTOCOL), path=e.path) from e
            phase.advance()
    return seconds


def embeds_whole_files(val: ValidationDir) -> bool:
    """Whether VAL_DIR's scores embed each file in one pass (``validate --whole-file``); without a record
    of how they were made, validate's default: windows."""
    method = recorded_method(val)
    return isinstance(method, dict) and method.get("embedding") == "whole-file"


def shorter_than_half_a_window(seconds: dict[str, float], window: float) -> list[str]:
    """The recordings under half of the network's window: embedded whole from so little audio, their
    embeddings say little."""
    return [path for path, duration in seconds.items() if duration < window / 2]


def warn_short_trial_files(paths: Iterable[str], trn: TrainingDir) -> None:
    """Say how many of a trial list's files last under half of the network's window (its experiment's
    ``task.duration``), as ``verify`` and ``embed`` say it of theirs; their durations were read when the
    files were checked."""
    try:
        window = load_config(trn.experiment.config).task.duration
    except SpkembError:  # no readable config beside TRN_DIR: the checkpoints' own say the window later
        return
    seconds = {path: audio_info(path).duration for path in paths}
    short = shorter_than_half_a_window(seconds, window)
    if short:
        say(f"validate: {len(short):,} trial file(s) last under half of the network's {window:g} s window "
            f"(the first: {short[0]}, {seconds[short[0]]:.2f} s): their scores say little")


def embed_recordings(recordings: list[str], checkpoint: Path, *, whole_file: bool, device: str | None,
                     batch: int, db: str | None, trust_checkpoint: bool) -> Embedded:
    """Each recording's embedding with ``checkpoint``'s network (a recording given twice, twice)."""
    from engine.inference.network import load_network
    from engine.process.checkpoints import Trust
    from engine.process.distributed import pick_device
    from engine.validation.trial_scores import VALIDATION_STEP, embed_files, require_finite

    network = load_network(checkpoint, pick_device(device), trust=Trust(db, accept_changed=trust_checkpoint))
    config = network.config
    files = {str(i): path for i, path in enumerate(recordings)}
    # heard of on a terminal at once, in a log once it lasts: a few recordings are embedded in silence
    with Progress().phase("embedding", len(files), said=False, opening=False) as phase:
        embeddings = embed_files(network.model, files, duration=config.task.duration,
                                 sample_rate=config.sample_rate, batch=batch, whole_file=whole_file, phase=phase)
    require_finite(embeddings, checkpoint)
    step = None if whole_file else VALIDATION_STEP * config.task.duration
    return Embedded(np.stack([embeddings[key] for key in files]), checkpoint, network.checkpoint.sha256,
                    config.task.duration, step, config.sample_rate, config.architecture.name)
