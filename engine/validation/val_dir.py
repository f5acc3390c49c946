"""A VAL_DIR named on the command line (``pick``, ``apply``, ``export``), checked before any work.

Torch-free. A training folder, or the folder of validations inside it, is the usual slip: it is
refused with the VAL_DIRs it holds, rather than read as an empty VAL_DIR (whose advice, "validate
first", would be wrong).
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import SpkembError
from engine.layout import VAL_DIR_SHAPE, VALIDATE, TrainingDir, ValidationDir


def given_val_dir(path: str | Path) -> ValidationDir:
    """The VAL_DIR at ``path``.

    Raises
    ------
    SpkembError
        When ``path`` is no folder, or is a TRN_DIR (or its ``validate_equal_error_rate`` folder):
        the line then names the VAL_DIRs inside it.
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
        names = ", ".join(str(v.root) for v in inside[:3]) + (f" and {len(inside) - 3} more" if len(inside) > 3 else "")
        raise SpkembError(f"{val.root} is a training folder, not a VAL_DIR ({VAL_DIR_SHAPE}): pass one of "
                          f"its validations: {names}")
    return val
