"""``sweep --optuna N --space FILE``: an Optuna study (TPE) picks each trial's values, its pruner (median or
successive halving) reads the validated EERs, and each ended trial's lowest EER is told to it.

The study lives in a journal file in the sweep's folder, so that the queue process (which asks for the
next trials as slots free up) and a later one share it. Optuna is imported only for such sweeps.
"""

from __future__ import annotations

import hashlib
import statistics
from typing import Any

from engine.console import say
from engine.errors import ConfigError, SpkembError
from engine.store import Store
from engine.sweeps.space import Point, Range
from engine.sweeps.trials import SweepPlan, add_trial, plan_of


def open_study(plan: SweepPlan) -> Any:
    """The sweep's study (created on first use), with its sampler and pruner."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan.folder.root.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(plan.folder.study)))
    after = max(plan.request.prune_after, 1)
    # the steps are epochs: the earliest a trial is pruned at is epoch `after` (`step == n_warmup_steps`)
    pruner = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=after),
              "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=after),
              "none": optuna.pruners.NopPruner}["none" if plan.request.no_validate else plan.request.prune]()
    study = optuna.create_study(study_name=plan.name, storage=storage, direction="minimize", load_if_exists=True,
                                pruner=pruner)
    # a study is opened anew for each trial the queue asks for: a sampler seeded alike each time drew
    # trial 0's values again; seeded by the sweep and the trials made so far, a sweep stays reproducible.
    # Hashed: numpy's generators seeded 0 and 3 start alike (0.549, 0.551), and trial 3 redid trial 0
    key = hashlib.sha256(f"{plan.name}/{len(study.trials)}".encode()).digest()
    study.sampler = optuna.samplers.TPESampler(seed=int.from_bytes(key[:4], "big"))
    return study


def _distributions(ranges: list[Range]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for r in ranges:
        if r.choices:
            out[r.key] = CategoricalDistribution(list(r.choices))
        elif isinstance(r.low, int) and isinstance(r.high, int):
            out[r.key] = IntDistribution(r.low, r.high, log=r.log)
        else:
            out[r.key] = FloatDistribution(float(r.low or 0), float(r.high or 0), log=r.log)
    return out


def _ranges(sweep: dict[str, Any]) -> list[Range]:
    return [Range(key, low=spec.get("low"), high=spec.get("high"), log=bool(spec.get("log")),
                  choices=tuple(spec.get("choices") or ())) for key, spec in sweep["space"].items()]


def start_trials(store: Store, plan: SweepPlan, study: Any, *, count: int, ranges: list[Range] | None = None) -> None:
    """Ask the study for ``count`` trials and record each (folder, config, queued run)."""
    sweep = store.sweep(plan.sweep_id)
    assert sweep is not None
    distributions = _distributions(ranges if ranges is not None else _ranges(sweep))
    from optuna.trial import TrialState

    for _ in range(count):
        trial = study.ask(distributions)
        number = len(store.sweep_trials(plan.sweep_id))
        try:
            add_trial(store, plan, number, Point(dict(trial.params), seed=0), optuna_trial=trial.number)
        except ConfigError:  # values the config refuses (a rule between keys): the study learns it
            trial.set_user_attr(REFUSED, True)
            study.tell(trial, state=TrialState.FAIL)
            raise
        except BaseException:  # the trial could not be made (the database, the disk): no values to blame
            study.tell(trial, state=TrialState.FAIL)
            raise


def first_trials(store: Store, plan: SweepPlan, study: Any, *, count: int, ranges: list[Range]) -> None:
    """A new sweep's first ``count`` trials, asked again past values the config refuses together.

    Raises
    ------
    SpkembError
        ``MAX_REFUSED`` trials in a row refused: the sweep is recorded ended, with the trials made.
    """
    made = 0
    while made < count:
        try:
            start_trials(store, plan, study, count=1, ranges=ranges)
        except ConfigError as e:
            if _refused_in_a_row(study) < MAX_REFUSED:
                continue
            store.end_sweep(plan.sweep_id)
            raise SpkembError(f"--space: {MAX_REFUSED} trials in a row the config refuses (the last: {e}); sweep "
                              f"{plan.name} is recorded ended with {made} trial(s): narrow --space") from None
        made += 1


def _short(store: Store) -> list[dict[str, Any]]:
    """Optuna sweeps that have not made all their trials yet."""
    return [s for s in store.sweeps()
            if s["method"] == "optuna" and not s["script"] and len(store.sweep_trials(s["id"])) < s["planned"]]


def wants_trials(store: Store) -> bool:
    return bool(_short(store))


def ask_next(store: Store) -> bool:
    """Make the next trial of an Optuna sweep that has fewer than planned; False when none was made.

    Values the config refuses (a rule between keys) fail that trial in the study, which asks again
    at the next poll; after ``MAX_REFUSED`` such trials in a row the sweep makes no more, so that a
    queue neither asks forever nor keeps the other sweeps waiting behind it.
    """
    for sweep in _short(store):
        plan = plan_of(sweep)
        study = open_study(plan)
        try:
            start_trials(store, plan, study, count=1)
        except ConfigError as e:
            refused = _refused_in_a_row(study)
            if refused < MAX_REFUSED:
                say(f"queue: sweep {sweep['name']}: a trial's values are refused ({e}); the study asks again")
                continue
            store.end_sweep(sweep["id"])
            say(f"queue: sweep {sweep['name']}: {refused} trials in a row refused (the last: {e}); it makes no more "
                f"trials ({len(store.sweep_trials(sweep['id']))} made) — narrow its --space and sweep again")
            continue
        except SpkembError as e:
            say(f"queue: sweep {sweep['name']}: the study's next trial cannot be made ({e}); asking again later")
            continue
        return True
    return False


#: trials in a row whose values the config refuses before a sweep makes no more
MAX_REFUSED = 10
#: the user attribute of a study's trial whose values the config refused
REFUSED = "spkemb_refused"


def _refused_in_a_row(study: Any) -> int:
    """The study's latest trials whose values the config refused, in a row (a trial that failed in
    training breaks the row: it is no sign of a space the config cannot take)."""
    from optuna.trial import TrialState

    count = 0
    for trial in reversed(study.get_trials(deepcopy=False)):
        if trial.state != TrialState.FAIL or not trial.user_attrs.get(REFUSED):
            break
        count += 1
    return count


def _trial_id(study: Any, number: int) -> int:
    return next(t._trial_id for t in study.get_trials(deepcopy=False) if t.number == number)


def optuna_prune(sweep: dict[str, Any], trial: dict[str, Any], own: dict[int, float],
                 seen: set[int]) -> tuple[str, int] | None:
    """Report the trial's newly validated epochs to the study; its pruner's verdict with the reason."""
    if trial.get("optuna_trial") is None:
        return None
    import optuna
    from optuna.trial import TrialState

    new = sorted(e for e in own if e not in seen and e >= 1)
    if not new:
        return None
    study = open_study(plan_of(sweep))
    handle = optuna.trial.Trial(study, _trial_id(study, trial["optuna_trial"]))
    for epoch in new:
        handle.report(own[epoch], epoch)
        seen.add(epoch)
        if handle.should_prune():
            # the values the pruner weighed: completed trials' at this epoch (not the running or pruned)
            completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            values = [t.intermediate_values[epoch] for t in completed if epoch in t.intermediate_values]
            versus = f"median {100 * statistics.median(values):.1f} %" \
                if values and sweep["prune"] == "median" else "the study's pruner"
            how = "" if sweep["prune"] == "median" else " (successive halving)"
            return f"pruned at epoch {epoch}{how}: EER {100 * own[epoch]:.1f} % > {versus}", epoch
    return None


def trial_ended(store: Store, trial: dict[str, Any], run_id: int) -> None:
    """Tell the study how an Optuna trial ended: its lowest validated EER, pruned, or failed."""
    if trial.get("optuna_trial") is None:
        return
    sweep = store.sweep(trial["sweep_id"])
    if sweep is None:
        return
    import optuna
    from optuna.trial import TrialState

    row = next((t for t in store.sweep_trials(sweep["id"]) if t["id"] == trial["id"]), None)
    study = open_study(plan_of(sweep))
    number = trial["optuna_trial"]
    frozen = study.trials[number]
    if frozen.state.is_finished():
        return
    # epochs validated after the queue last looked (the validation ends after training): the pruner of
    # later trials compares against every epoch of this one
    handle = optuna.trial.Trial(study, frozen._trial_id)
    for epoch, eer in sorted(store.trial_eers(sweep["id"]).get(trial["id"], {}).items()):
        if epoch >= 1 and epoch not in frozen.intermediate_values:
            handle.report(eer, epoch)
    if row is not None and row["prune_reason"]:
        study.tell(number, state=TrialState.PRUNED)
    elif row is not None and row["status"] == "completed" and row["best_eer"] is not None:
        study.tell(number, row["best_eer"])
    else:
        study.tell(number, state=TrialState.FAIL)

