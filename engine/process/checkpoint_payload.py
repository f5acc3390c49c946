"""What a checkpoint's payload may hold, checked before any of it is used: each entry of its kind
(weights are dense real tensors, counts whole numbers within bounds, the RNG states of their shape) and
the weights finite. A wrong type would fail deep inside training or in a loader worker; NaN weights gave
NaN embeddings with exit 0."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def not_finite(payload: dict[str, Any]) -> str | None:
    """The first floating-point tensor of the network or the loss holding NaN or infinity
    (``model.tdnn.segment6.weight``), or None. Training stops on a non-finite loss before it saves,
    so such a file was damaged or edited; read unchecked, it gave NaN embeddings with exit 0."""
    for entry in ("model", "loss"):
        for name, tensor in (payload.get(entry) or {}).items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return f"{entry}.{name}"
    return None


#: the seeds ``train --seed`` takes: a resumed run goes on with its checkpoint's, which numpy's
#: generators refuse below 0 (and SQLite's integers past 2**63)
SEED_LIMIT = 2**32
#: counts a run goes on counting from (steps, epochs): one just below 2**63 overflowed SQLite at the
#: next step, and past 2**53 a float (a schedule's clock) no longer tells one step from the next
COUNT_LIMIT = 2**53


def _is_count(value: Any) -> bool:
    return _is_int(value) and 0 <= value < COUNT_LIMIT


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_seed(value: Any) -> bool:
    return _is_int(value) and 0 <= value < SEED_LIMIT


def is_weights(value: Any) -> bool:
    """A dense tensor of real numbers in memory: a meta, sparse, quantized or complex tensor is no
    network's weights (torch failed on them with a traceback further on)."""
    return isinstance(value, torch.Tensor) and value.layout == torch.strided and not value.is_meta \
        and not value.is_complex() and not value.is_quantized


def _is_state(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(k, str) and is_weights(v) for k, v in value.items())


def _is_optimizer(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return False
    groups = value.get("param_groups")
    return isinstance(value.get("state"), Mapping) and isinstance(groups, list) \
        and all(isinstance(g, Mapping) for g in groups)


def _is_rng(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return False
    python, numpy, state = value.get("python"), value.get("numpy"), value.get("torch")
    return isinstance(python, (list, tuple)) and len(python) == 3 and isinstance(numpy, (list, tuple)) \
        and len(numpy) == 5 and isinstance(state, torch.Tensor) and state.dtype == torch.uint8


#: what each entry a checkpoint may hold must be (its writers: the trainer's ``state``, ``average``),
#: checked before any of it is used: a wrong type would fail deep inside training, or in a loader worker
_ENTRIES: dict[str, tuple[str, Any]] = {
    "model": ("a dict of dense real-valued tensors", _is_state),
    "loss": ("a dict of dense real-valued tensors", _is_state),
    "config": ("a mapping or YAML text", lambda v: isinstance(v, (Mapping, str))),
    "optimizer": ("an optimizer state (state, param_groups)", _is_optimizer),
    **{name: ("a whole number >= 0", _is_count) for name in ("epoch", "batch", "step", "target", "world_size")},
    "seed": (f"a whole number from 0 to {SEED_LIMIT - 1}", _is_seed),
    "speakers": ("a list of labels", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "rng": ("the RNG states (python, numpy, torch)", _is_rng),
    "epoch_so_far": ("a mapping", lambda v: isinstance(v, Mapping)),
}


def wrong_entry(payload: dict[str, Any]) -> str | None:
    """The first entry whose value is not of its kind (``epoch is -5, not a whole number >= 0``), or None.
    Absent entries (and None where a checkpoint may leave one out) are the reader's to ask for."""
    for name, (kind, ok) in _ENTRIES.items():
        value = payload.get(name)
        if value is not None and not ok(value):
            shown = repr(value) if isinstance(value, (int, float, str)) else type(value).__name__
            return f"{name} is {shown[:40]}, not {kind}"
    return None
