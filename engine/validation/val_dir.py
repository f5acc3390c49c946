"""The folders named on the command line: a VAL_DIR (``pick``, ``apply``, ``export``) and a TRN_DIR
(``validate``), each checked before any work.

Torch-free. One given for the other is the usual slip, and so is the experiment folder given for
its training folder: each is refused with the folders that would do, rather than read as an empty
one (a VAL_DIR's advice "validate first" would be wrong; validate would wait for checkpoints that
never come, then record a completed run of nothing).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from pathlib import Path

from engine.errors import SpkembError
from engine.layout import TRAIN, TRN_DIR_SHAPE, VAL_DIR_SHAPE, VALIDATE, ExperimentDir, TrainingDir, ValidationDir


def given_val_dir(path: str | Path) -> ValidationDir:
    """The VAL_DIR at ``path``.

    Raises
    ------
    SpkembError
        When ``path`` is no folder, or is a TRN_DIR (or its ``validate_equal_error_rate`` folder):
        the line then names the VAL_DIRs inside it, or the ``validate`` to run when there is none.
    """
    val = ValidationDir(Path(path))
    if not val.root.is_dir():
        raise SpkembError(f"{val.root} is not a directory: pass the VAL_DIR that `spkemb-engine validate` "
                          f"writes ({VAL_DIR_SHAPE})")
    if val.is_validation_dir():
        return val
    training = TrainingDir(val.root.parent if val.root.name == VALIDATE else val.root)
    inside = training.validation_dirs()
    if inside:
        raise SpkembError(f"{val.root} is a training folder, not a VAL_DIR ({VAL_DIR_SHAPE}): pass one of "
                          f"its validations: {_listed(v.root for v in inside)}")
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
    root = Path(path)
    if root.name == VALIDATE or root.parent.name == VALIDATE:
        trn = root.parent if root.name == VALIDATE else ValidationDir(root).training.root
        raise SpkembError(f"{root} is a validation folder, not a TRN_DIR ({TRN_DIR_SHAPE}): pass its training "
                          f"folder {trn}")
    experiment = ExperimentDir(root)
    if experiment.config.is_file():
        inside = experiment.training_dirs()
        fix = (f"pass one of its training folders: {_listed(t.root for t in inside)}" if inside else
               f"train it first (`spkemb-engine train {root} PROTOCOL`)")
        raise SpkembError(f"{root} is an experiment folder (EXP_DIR), not a TRN_DIR ({TRN_DIR_SHAPE}): {fix}")
    if root.parent.name != TRAIN:
        raise SpkembError(f"{root} is not a TRN_DIR: `spkemb-engine train` writes them as {TRN_DIR_SHAPE}; pass "
                          "one of those")
    return TrainingDir(root)


def _listed(paths: Iterable[Path]) -> str:
    """Up to three paths, and how many more."""
    names = [str(p) for p in paths]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
