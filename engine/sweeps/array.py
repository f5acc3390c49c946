"""``sweep --sbatch``: one SLURM array job whose task i trains trial i under ``srun torchrun``.

The same database rules as ``spkemb-engine sbatch``: ``--db`` and ``--database`` passed resolved (the
engine writes an event file instead when the database is on a network filesystem; ``import`` brings
it in). Each task validates its trial beside training, on the same node. The array's ``%K`` is the
number of ``--slots``: how many trials run at once. Pruning needs the queue, which sees the
validations as they come; an array's trials are not pruned.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from engine.cli import to_argv
from engine.console import say
from engine.errors import SpkembError
from engine.layout import TRAIN_LOCK, WEIGHTS
from engine.requests import SweepRequest
from engine.requests.training import SLURM_TIME
from engine.store import Store
from engine.sweeps.trials import SweepPlan, train_request, trn_dir, validate_request
from engine.training.slurm import (
    WARNING_SECONDS,
    check_time_limit,
    log_pattern,
    requeued_step,
    resume_lines,
    sbatch_header,
    sbatch_value,
)


def array_header(name: str, root: Path, request: SweepRequest, *, trials: int, parallel: int) -> str:
    """The ``#SBATCH`` lines of the array job of sweep ``name`` in folder ``root``; SpkembError for a
    name or folder that would break out of them (the sweep checks it before recording anything)."""
    check_time_limit(request.time or SLURM_TIME)
    # a task's CPUs: its loader processes, the training process and its validation
    directives = [f"--job-name={sbatch_value('spkemb-' + name)}", f"--array=0-{trials - 1}%{max(1, parallel)}",
                  "--nodes=1", "--ntasks-per-node=1", "--gpus-per-node=1", f"--cpus-per-task={request.parallel + 2}",
                  f"--time={request.time or SLURM_TIME}", f"--signal=B:USR1@{WARNING_SECONDS}", "--requeue",
                  "--open-mode=append",
                  f"--output={log_pattern(root, 'slurm-%A_%a.out')}"]
    if request.partition:
        directives.append(f"--partition={request.partition}")
    return sbatch_header(directives, fix="give the sweep a --name and an --out folder without one")


def array_script(store: Store, plan: SweepPlan, *, parallel: int) -> str:
    """The text of the array job for the plan's recorded trials."""
    trials = store.sweep_trials(plan.sweep_id)
    if not trials:
        raise SpkembError("the sweep has no trial to submit")
    header = array_header(plan.name, plan.folder.root, plan.request, trials=len(trials), parallel=parallel)
    trains, validates = [], []
    for t in trials:
        exp = Path(t["exp_dir"])
        train = train_request(plan, exp, t["seed"])
        trains.append(f"train_args=({shlex.join(to_argv(train)[1:])}); trn_dir={shlex.quote(str(trn_dir(train)))}")
        validate = validate_request(plan, exp)
        validates.append("" if validate is None else shlex.join(to_argv(validate)[1:]))
    cases_train = "\n".join(f"    {i}) {a} ;;" for i, a in enumerate(trains))
    cases_validate = "\n".join(f"    {i}) validate_args=({a}) ;;" for i, a in enumerate(validates))
    python = shlex.quote(sys.executable)
    # validation starts once training holds its folder (its run recorded a moment later): started with it,
    # validation could stop waiting while training still imports torch and checks its data
    beside = f"""if (( ${{#validate_args[@]}} )); then
    until [[ "$(lock_time)" != "$before" ]] || ! kill -0 "$step_pid" 2>/dev/null; do
        sleep 1
    done
    if [[ "$(lock_time)" != "$before" ]]; then
        # a step of its own beside training, sharing the task's GPU
        srun --overlap --ntasks=1 {python} -m engine validate --device cuda "${{validate_args[@]}}" &
        validate_pid=$!
    fi
fi"""
    # the task's own id: an array's first task shares its job id with the array, which scancel and
    # scontrol take as every task of it
    step = requeued_step(f"""srun --kill-on-bad-exit=1 --cpus-per-task="$SLURM_CPUS_PER_TASK" {python} \\
    -m torch.distributed.run --standalone --nproc_per_node=1 \\
    -m engine train --device cuda ${{resume[@]+"${{resume[@]}}"}} "${{train_args[@]}}\"""", beside,
                         job='"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"')
    return f"""#!/bin/bash
{header}
# Written by `spkemb-engine sweep --sbatch` (sweep {plan.name}). Submit with: sbatch THIS_FILE
set -euo pipefail
task="${{SLURM_ARRAY_TASK_ID:?run me with sbatch: SLURM sets SLURM_ARRAY_TASK_ID}}"
case "$task" in
{cases_train}
    *) echo "no trial $task in this sweep" >&2; exit 2 ;;
esac
validate_args=()
case "$task" in
{cases_validate}
esac
# a task requeued (node failure, preemption, the time limit's warning) resumes its trial
mkdir -p "$trn_dir"
{resume_lines(f'"$trn_dir"/{WEIGHTS}')}
# the lock's own clock (the file server's) tells when this task's training took it
lock_time() {{ stat -c %y "$trn_dir"/{TRAIN_LOCK} 2>/dev/null || echo none; }}
before=$(lock_time)
{step}
# requeued: the trap's wait has collected the validation too (a second wait is bash's error in the log)
if (( requeued )); then exit 0; fi
validated=0
if [[ -n "${{validate_pid:-}}" ]]; then wait "$validate_pid" || validated=$?; fi
if (( status == 0 )); then status=$validated; fi
exit "$status"
"""


def submit_array(store: Store, plan: SweepPlan, *, parallel: int) -> str | None:
    """Write the array script into the sweep's folder and submit it with ``sbatch`` when there is one;
    returns the job id (None when not submitted)."""
    script = plan.folder.script
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(array_script(store, plan, parallel=parallel))
    script.chmod(0o755)
    job = None
    if shutil.which("sbatch") is None:
        say(f"wrote {script}; submit it with: sbatch {script}")
    else:
        done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SpkembError(f"sbatch refused {script}: {done.stderr.strip() or done.stdout.strip()}; fix it and "
                              f"submit it again with: sbatch {script}")
        job = done.stdout.strip().split(";")[0] or None
        say(f"submitted {script} as SLURM job {job}")
    store.set_sweep_script(plan.sweep_id, script=str(script), slurm_job_id=job)
    return job
