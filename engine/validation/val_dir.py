"""The folders named on the command line: a VAL_DIR (``pick``, ``apply``, ``export``, ``verify``,
``embed``), a TRN_DIR (``validate``) and an EXP_DIR (``train``), each checked before any work.

Torch-free. One given for another is the usual slip, and so is the experiment folder given for
its training folder: each is refused with the folders that would do, rather than read as an empty
one (a VAL_DIR's advice "validate first" would be wrong; validate would wait for checkpoints that
never come, then record a completed run of nothing).
"""

from __future__ import annotations

import difflib
import os
import shlex
from pathlib import Path

from engine.console import listed
from engine.errors import SpkembError
from engine.layout import (
    CONFIG,
    TRAIN,
    TRN_DIR_SHAPE,
    VAL_DIR_SHAPE,
    VALIDATE,
    ExperimentDir,
    TrainingDir,
    ValidationDir,
)


def _whole(path: str | Path) -> Path:
    """``path`` with the folders above it named: a folder is told apart by its parents' names, which
    ``.`` or a bare name from the folder above does not have (``verify .`` inside a VAL_DIR said its
    checkpoint had been deleted)."""
    given = Path(path)
    return given if given.is_absolute() else Path(os.path.abspath(given))


def given_val_dir(path: str | Path) -> ValidationDir:
    """The VAL_DIR at ``path``.

    Raises
    ------
    SpkembError
        When ``path`` is no folder, or is a TRN_DIR (or its ``validate_equal_error_rate`` folder) or
        an experiment folder: the line then names the VAL_DIRs inside it, or the command to run
        when there is none.
    """
    val = ValidationDir(_whole(path))
    if not val.root.is_dir():
        raise SpkembError(f"{val.root} is not a directory: pass the VAL_DIR that `spkemb-engine validate` "
                          f"writes ({VAL_DIR_SHAPE})")
    if val.is_validation_dir():
        return val
    if ExperimentDir(val.root).config.is_file():
        raise SpkembError(f"{val.root} is an experiment folder (EXP_DIR), not a VAL_DIR ({VAL_DIR_SHAPE}): "
                          f"{_validations_of(ExperimentDir(val.root))}")
    training = TrainingDir(val.root.parent if val.root.name == VALIDATE else val.root)
    inside = _scored(training)
    if inside:
        raise SpkembError(f"{val.root} is a training folder, not a VAL_DIR ({VAL_DIR_SHAPE}): pass one of "
                          f"its validations: {listed(v.root for v in inside)}")
    if val.root.name == VALIDATE or training.root.parent.name == TRAIN or training.weights.is_dir():
        trn = shlex.quote(str(training.root))
        raise SpkembError(f"{val.root} is a training folder with no validation yet, not a VAL_DIR "
                          f"({VAL_DIR_SHAPE}): validate it first (`spkemb-engine validate {trn} PROTOCOL`), "
                          "then pass the VAL_DIR that writes")
    return val


def given_trn_dir(path: str | Path) -> TrainingDir:
    """The TRN_DIR at ``path`` (it may not exist yet: validate waits for a training starting).

    Raises
    ------
    SpkembError
        When ``path`` is a VAL_DIR or the folder of validations (naming their TRN_DIR), an
        experiment folder (naming its TRN_DIRs, or the ``train`` to run), or any other folder
        that does not sit where ``train`` writes a TRN_DIR.
    """
    root = _whole(path)
    if root.name == VALIDATE or root.parent.name == VALIDATE:
        trn = root.parent if root.name == VALIDATE else ValidationDir(root).training.root
        raise SpkembError(f"{root} is a validation folder, not a TRN_DIR ({TRN_DIR_SHAPE}): pass its training "
                          f"folder {trn}")
    experiment = ExperimentDir(root)
    if experiment.config.is_file():
        inside = experiment.training_dirs()
        fix = (f"pass one of its training folders: {listed(t.root for t in inside)}" if inside else
               f"train it first (`spkemb-engine train {root} PROTOCOL`)")
        raise SpkembError(f"{root} is an experiment folder (EXP_DIR), not a TRN_DIR ({TRN_DIR_SHAPE}): {fix}")
    if root.parent.name != TRAIN:
        raise SpkembError(f"{root} is not a TRN_DIR: `spkemb-engine train` writes them as {TRN_DIR_SHAPE}; pass "
                          "one of those")
    return TrainingDir(root)


def given_average_dir(path: str | Path, *, last: bool) -> TrainingDir | ValidationDir:
    """The TRN_DIR whose last epochs ``average --last`` averages, or the VAL_DIR whose best ones
    ``--top`` ranks: a folder of another kind is named as such (see the two above)."""
    folder = Path(path)
    if not folder.is_dir():
        raise SpkembError(f"{folder} is not a directory: pass TRN_DIR (--last) or VAL_DIR (--top)")
    if last:
        return given_trn_dir(folder)  # a VAL_DIR or an EXP_DIR is named as one, with the TRN_DIRs that would do
    val = given_val_dir(folder)
    if not val.is_validation_dir():
        raise SpkembError(f"{folder} is not a VAL_DIR: --top ranks the epochs that `spkemb-engine validate` "
                          f"scored in {VAL_DIR_SHAPE}")
    return val


def near_trn_dir(trn: TrainingDir) -> str:
    """``; did you mean EXP_DIR/train/X?`` for a TRN_DIR not there whose experiment has one of a
    name so close that a typo is likely (``…Voices.trian`` for ``…Voices.train``), else nothing."""
    names = [t.root.name for t in trn.experiment.training_dirs()]
    near = difflib.get_close_matches(trn.root.name, names, n=1, cutoff=0.8)
    return f"; did you mean {trn.root.parent / near[0]}?" if near else ""


def given_exp_dir(path: str | Path) -> ExperimentDir:
    """The EXP_DIR at ``path`` (the caller reads its config.yml, and says so when there is none).

    Raises
    ------
    SpkembError
        When ``path`` holds no config.yml and is a folder of an experiment's (its ``train`` folder, a
        TRN_DIR, a VAL_DIR or the folder between): the line names that experiment folder.
    """
    root = Path(path)
    if ExperimentDir(root).config.is_file():
        return ExperimentDir(root)
    for folder in (root, *root.parents)[:4]:  # up to EXP_DIR/train/PROTOCOL.SUBSET/validate_equal_error_rate
        experiment = ExperimentDir(folder.parent)
        if folder.name == TRAIN and experiment.config.is_file():
            raise SpkembError(f"{root} is a folder of the experiment {experiment.root}, not an experiment folder "
                              f"(EXP_DIR, which holds {CONFIG}): pass {shlex.quote(str(experiment.root))} (with "
                              "--resume to go on with its training)")
    return ExperimentDir(root)


def _scored(training: TrainingDir) -> list[ValidationDir]:
    """The VAL_DIRs of ``training`` that hold a scored epoch (a refused validate leaves its folder with
    nothing but its lock: no command could use it)."""
    return [v for v in training.validation_dirs() if v.params.is_file() or v.score_files()]


def _validations_of(experiment: ExperimentDir) -> str:
    """What to pass instead of an experiment folder where a VAL_DIR is wanted, or what to run first."""
    trainings = experiment.training_dirs()
    validations = [v.root for t in trainings for v in _scored(t)]
    if validations:
        return f"pass one of its validations: {listed(validations)}"
    if trainings:
        return (f"validate one of its training folders first (`spkemb-engine validate "
                f"{shlex.quote(str(trainings[0].root))} PROTOCOL`), then pass the VAL_DIR that writes")
    return (f"train it (`spkemb-engine train {shlex.quote(str(experiment.root))} PROTOCOL`) and validate its "
            "training folder first, then pass the VAL_DIR that writes")
