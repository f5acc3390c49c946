"""``spkemb-engine average``: weights averaged over several epochs, as a checkpoint of their own.

WeSpeaker and 3D-Speaker average the last 10 checkpoints blindly; here the average is one more
checkpoint, ``TRN_DIR/weights/avg-last{N}.pt`` (the last N epochs on disk) or ``avg-top{K}.pt``
(the K epochs of lowest validated EER in a VAL_DIR), that ``validate`` scores beside the epochs,
so that whether it beats the best single epoch is measured, with intervals.

The embedding network's floating-point tensors (weights and batch-norm running statistics) are
averaged; integer buffers (``num_batches_tracked``) are taken from the last epoch. The file is
written atomically like every checkpoint, records the epochs that went in (``averaged``), and
its ``checkpoints`` row (``name``, ``averaged``) is inserted only once it is in place.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from engine.console import out, say
from engine.errors import CheckpointError, SpkembError
from engine.layout import AVERAGE_LAST, AVERAGE_TOP, TrainingDir, ValidationDir
from engine.process.checkpoints import Saved, Trust, first_difference, load_checkpoint, write_checkpoint
from engine.records import Checkpoint, ValidationResult
from engine.requests import AverageRequest
from engine.validation.val_dir import given_average_dir


def average_state_dicts(states: list[dict[str, torch.Tensor]],
                        paths: list[Path] | None = None) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors; other tensors from the last state.

    Sums are taken in float64 so that the mean of K float32 tensors does not depend on their order.

    Raises
    ------
    CheckpointError
        The states do not hold the same tensors (another network): the first differing tensor
        named, with both shapes and, given ``paths`` (the states' files), both files.
    """
    if not states:
        raise ValueError("nothing to average")
    last = states[-1]
    names = paths or [Path(f"checkpoint {i + 1}") for i in range(len(states))]
    for state, path in zip(states[:-1], names[:-1], strict=True):
        differs = first_difference(state, last)
        if differs is not None:
            key, theirs, ours = differs
            raise CheckpointError(f"the checkpoints to average hold different networks: {key} is {theirs} in "
                                  f"{path} and {ours} in {names[-1]}; average epochs of one training run")
    out: dict[str, torch.Tensor] = {}
    for key, value in last.items():
        if value.is_floating_point():
            # summed from a float64 zero (not the int 0): the same sums, and a tensor to the type checker
            total = sum((s[key].to(torch.float64) for s in states), torch.zeros((), dtype=torch.float64))
            out[key] = (total / len(states)).to(value.dtype)
        else:
            out[key] = value.clone()
    return out


def last_epochs(trn: TrainingDir, n: int) -> list[int]:
    """The last ``n`` trained epochs whose checkpoint is in ``TRN_DIR/weights``: epoch 0, the network
    before training (a fork's parent), is none of them."""
    epochs = [e for e in trn.epochs() if e > 0]
    if n < 1:
        raise SpkembError(f"--last {n}: average at least one epoch (e.g. --last 10)")
    if len(epochs) < n:
        raise SpkembError(f"--last {n}: {trn.weights} holds {len(epochs)} trained epoch checkpoint(s); "
                          f"pass TRN_DIR of a training run with at least {n} epochs, or a smaller N")
    wanted = list(range(epochs[-1] - n + 1, epochs[-1] + 1))
    gone = sorted(set(wanted) - set(epochs))
    if gone:  # the last N on disk would not be the last N trained: a mean over other epochs than asked
        there = epochs[-1] - gone[-1]
        raise SpkembError(f"--last {n}: epoch(s) {', '.join(map(str, gone))} of the last {n} are not in {trn.weights} "
                          f"(deleted by `spkemb-engine clean`?): pass --last {there} or less, or average --top K "
                          "of a VAL_DIR")
    return wanted


def top_epochs(val: ValidationDir, k: int, store: Any = None) -> list[tuple[int, float]]:
    """The ``k`` validated trained epochs of lowest EER (the earlier on a tie), with their EER, in epoch
    order; epoch 0, the network before training (a fork's parent), is none of them."""
    from engine.validation.selection import recorded_results

    if k < 1:
        raise SpkembError(f"--top {k}: average at least one epoch (e.g. --top 5)")
    results = recorded_results(val, store)
    ranked = sorted((r for r in results if r.checkpoint_name is None and int(r.checkpoint) > 0 and r.eer is not None),
                    key=ValidationResult.ranked)
    if len(ranked) < k:
        raise SpkembError(f"--top {k}: {val.root} holds {len(ranked)} validated trained epoch(s); validate more "
                          "epochs first (`spkemb-engine validate TRN_DIR PROTOCOL`), or pass a smaller K")
    return sorted((int(r.checkpoint), r.eer) for r in ranked[:k] if r.eer is not None)


def write_average(trn: TrainingDir, name: str, epochs: list[int], how: dict[str, Any],
                  trust: Trust | None = None) -> Saved:
    """Average the networks of ``epochs`` (each checked against its row by ``trust``) into
    ``weights/{name}.pt``; the file written and its sha256."""
    states, payload = [], {}
    paths = [trn.checkpoint(epoch) for epoch in epochs]
    for path in paths:
        payload = load_checkpoint(path, trust=trust)
        states.append(payload["model"])
    model = average_state_dicts(states, paths)
    # no optimizer, loss or RNG state: averaged weights are scored and applied, never resumed
    out = {"model": model, "config": payload["config"], "epoch": epochs[-1], "step": payload.get("step"),
           "averaged": {"name": name, "epochs": list(epochs), **how}}
    return write_checkpoint(trn.checkpoint(name), out)


@contextmanager
def _recording(db: str | None, trn: TrainingDir) -> Iterator[Callable[[str, list[int], Saved], str]]:
    """The checkpoints row's place, on the training run of TRN_DIR, opened before the weights are written
    (a read-only database is refused with nothing written); yields what records them and says what it did."""
    from engine.store import default_db_path, is_network_fs, open_store

    db_path = default_db_path(db)
    if not db_path.exists():
        yield lambda *_: f"no row recorded (no runs database at {db_path}: pass the training run's --db)"
        return
    if is_network_fs(db_path):
        yield lambda *_: f"no row recorded ({db_path} is on a network filesystem: record on a local disk)"
        return
    with open_store(db_path) as store:
        runs = store.find_runs(out_dir=trn.root, kind="train")
        if not runs:
            yield lambda *_: f"no row recorded ({db_path} has no training run of {trn.root})"
            return

        def record(name: str, epochs: list[int], saved: Saved) -> str:
            store.add_checkpoint(runs[0]["id"], Checkpoint(epoch=epochs[-1], step=None, path=saved.path,
                                                           partial=False, name=name, averaged=epochs,
                                                           sha256=saved.sha256))
            return f"recorded on run #{runs[0]['id']}"

        yield record


def cmd_average(args: AverageRequest) -> int:
    """``spkemb-engine average (--last N TRN_DIR | --top K VAL_DIR)``: see the module docstring."""
    from engine.store import default_db_path, existing_store

    folder = given_average_dir(args.dir, last=args.last is not None)
    how: dict[str, Any]
    eers: dict[int, float]
    if isinstance(folder, TrainingDir):
        trn = folder
        epochs = last_epochs(trn, args.last or 0)
        name, how, eers = f"{AVERAGE_LAST}{args.last}", {"how": "last"}, {}
    else:
        val = folder
        if args.top is None:  # the command line asks for one of the two
            raise SpkembError("average: pass --last N (of TRN_DIR) or --top N (of VAL_DIR)")
        with existing_store(default_db_path(args.db)) as store:
            trn, top = val.training, top_epochs(val, args.top, store)
        epochs, eers = [e for e, _ in top], dict(top)
        name, how = f"{AVERAGE_TOP}{args.top}", {"how": "top", "validation": str(val.root.resolve()), "eer": eers}
    missing = [e for e in epochs if not trn.checkpoint(e).is_file()]
    if missing:
        raise CheckpointError(f"checkpoints of epoch(s) {', '.join(map(str, missing))} are not in {trn.weights} "
                              "(deleted?): average other epochs")
    replaced = trn.checkpoint(name).is_file()
    with _recording(args.db, trn) as record:
        saved = write_average(trn, name, epochs, how, Trust(args.db, accept_changed=args.trust_checkpoint))
        said = ", ".join(f"{e}" + (f" ({100 * eers[e]:.2f} %)" if e in eers else "") for e in epochs)
        out(f"{saved.path}: mean of epochs {said}; {record(name, epochs, saved)}")
    pointing = _pointing_at(trn, name) if replaced else []
    for val in pointing:
        say(f"average: {val.params} points at {name}, whose weights are replaced now: its figures there are the "
            f"earlier weights' until `spkemb-engine validate {trn.root} ...` scores these (params.yml follows)")
    if not pointing:  # `pick --epoch avg-top5` refuses weights no validation has scored yet
        protocol, _, subset = folder.root.name.rpartition(".") if isinstance(folder, ValidationDir) else ("", "", "")
        db = "" if args.db is None else f"--db {shlex.quote(args.db)} "  # the database the run is recorded in
        lists = db + (f"--subset {subset} {shlex.quote(str(trn.root))} {protocol}" if protocol and subset
                      else f"{shlex.quote(str(trn.root))} PROTOCOL")
        say(f"average: next, `spkemb-engine validate {lists}` scores {name} (whatever its --from), then "
            f"`spkemb-engine pick --epoch {name} VAL_DIR` picks it if you want it")
    return 0


def _pointing_at(trn: TrainingDir, name: str) -> list[ValidationDir]:
    """The VAL_DIRs of ``trn`` whose params.yml names ``name``."""
    from engine.validation.params import read_params

    found = []
    for val in trn.validation_dirs():
        try:
            params = read_params(val)
        except SpkembError:
            continue
        if params is not None and params.checkpoint == name:
            found.append(val)
    return found
