"""``VAL_DIR/params.yml``: the checkpoint a validation directory points at, read and written.

torch-free (``apply``, ``export`` and the TUI read it). The file always names one validated epoch
(or, picked by hand, validated averaged weights: ``epoch: avg-top5``) and its figures::

    epoch: 221
    equal_error_rate: 0.0436
    min_dcf_0.01: 0.41
    min_dcf_0.05: 0.27
    eer_ci_95: [0.041, 0.046]

It is replaced atomically (temporary file, fsync, rename, fsync of the folder), so a reader
(``apply``, the TUI) sees the old file or the new one, never half of one. Which checkpoint it
names is chosen by :mod:`engine.validation.selection`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.atomic import atomic_write_text
from engine.config.yamlsrc import read_yaml_file
from engine.errors import ConfigError, SpkembError
from engine.layout import CheckpointName, ValidationDir, parse_checkpoint_name
from engine.records import ValidationResult

#: params.yml's key of each figure of a :class:`ValidationResult` (the file's own words)
PARAMS_KEYS = {"eer": "equal_error_rate", "mindcf_01": "min_dcf_0.01", "mindcf_005": "min_dcf_0.05"}


def read_params(val: ValidationDir) -> ValidationResult | None:
    """What ``VAL_DIR/params.yml`` names and its figures, or None when there is none yet."""
    path = val.params
    try:
        params = read_yaml_file(path).data
    except FileNotFoundError:
        return None
    except ConfigError as e:  # names the file, the line and what is wrong there (a key written twice)
        raise SpkembError(f"{e}; or rewrite the file with `spkemb-engine pick {val.root}`") from e
    name = parse_checkpoint_name(str(params.get("epoch", ""))) if isinstance(params, dict) else None
    if name is None:
        raise SpkembError(f"{path} names no epoch; rewrite it with `spkemb-engine pick {val.root}`")
    if params.get(PARAMS_KEYS["eer"]) is None:
        raise SpkembError(f"{path} names epoch {name} but no {PARAMS_KEYS['eer']}; rewrite it with "
                          f"`spkemb-engine pick {val.root}`")
    try:
        figures: dict[str, Any] = {field: float(params[key]) for field, key in PARAMS_KEYS.items()
                                   if params.get(key) is not None}
        low, high = (float(v) for v in params["eer_ci_95"]) if params.get("eer_ci_95") else (None, None)
        return ValidationResult(epoch=name if isinstance(name, int) else None,
                                checkpoint_name=name if isinstance(name, str) else None,
                                eer_low=low, eer_high=high, **figures)
    except (TypeError, ValueError) as e:
        raise SpkembError(f"{path}: its figures are not numbers ({e}); rewrite it with "
                          f"`spkemb-engine pick {val.root}`") from e


def chosen_checkpoint(val: ValidationDir, epoch: CheckpointName | None) -> CheckpointName:
    """``epoch`` when given (``--epoch``), else what ``VAL_DIR/params.yml`` names (an epoch, or
    averaged weights such as ``avg-top5``)."""
    if epoch is not None:
        return epoch
    params = read_params(val)
    if params is None:
        raise SpkembError(f"{val.params} does not exist: validate first "
                          "(`spkemb-engine validate TRN_DIR PROTOCOL`), or pass --epoch")
    return params.checkpoint


def resolve_name(val: ValidationDir, text: str | None) -> CheckpointName:
    """``--epoch`` as typed (an epoch number or avg-lastN/avg-topK), else what params.yml names."""
    name = None if text is None else parse_checkpoint_name(text)
    if text is not None and name is None:
        raise SpkembError(f"--epoch {text!r}: expected an epoch number or a name such as avg-top5")
    return chosen_checkpoint(val, name)


def write_params(val: ValidationDir, result: ValidationResult) -> Path:
    """Point ``VAL_DIR/params.yml`` at one checkpoint's result, atomically."""
    params: dict[str, Any] = {"epoch": result.checkpoint}
    for field, key in PARAMS_KEYS.items():
        if getattr(result, field) is not None:
            params[key] = float(getattr(result, field))
    if result.eer_ci_95 is not None:
        params["eer_ci_95"] = [float(v) for v in result.eer_ci_95]
    return atomic_write_text(val.params, yaml.safe_dump(params, sort_keys=False))
