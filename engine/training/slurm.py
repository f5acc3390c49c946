"""``spkemb-engine sbatch``: a SLURM batch script that trains under ``srun torchrun``.

The script asks SLURM for a warning signal before the time limit (``--signal``),
forwards it to the training step as SIGTERM (the engine checkpoints and records
``stopped``), then requeues the job; a requeued job finds the checkpoints and
resumes. Preemption with ``PreemptMode=REQUEUE`` sends SIGTERM the same way.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from engine.console import out_text, say
from engine.data.database_yml import pinned_database
from engine.errors import SpkembError
from engine.layout import CHECKPOINT_SUFFIX, CONFIG, ExperimentDir
from engine.requests import SbatchRequest
from engine.store import default_db_path

#: seconds of warning before the time limit: saving fits well inside it
WARNING_SECONDS = 180


def _train_arguments(args: SbatchRequest) -> list[str]:
    argv = ["--subset", args.subset, "--parallel", str(args.parallel), "--seed", str(args.seed),
            "--log-every", str(args.log_every)]
    if args.to is not None:
        argv += ["--to", str(args.to)]
    # the job runs on another node, maybe from another folder: the files this folder resolves to
    argv += ["--db", str(default_db_path(args.db).resolve())]
    database = pinned_database(args.database)
    if database:
        argv += ["--database", database]
    if args.strict:
        argv.append("--strict")
    if args.events:
        argv.append("--events")
    if args.trust_checkpoint:
        argv.append("--trust-checkpoint")
    # how the run is compared: joined to the flag, so that a note like "-x" stays a value
    labels = [("--group", args.group), *(("--tag", t) for t in args.tag or ()), ("--note", args.note)]
    argv += [f"{flag}={value}" for flag, value in labels if value]
    init_from = getattr(args, "init_from", None)
    if init_from:
        argv += ["--init-from", str(Path(init_from).resolve())]
        if args.init_classifier:
            argv.append("--init-classifier")
    return argv + [str(Path(args.exp_dir).resolve()), args.protocol]


def sbatch_header(directives: list[str], *, fix: str) -> str:
    """The ``#SBATCH`` lines of ``directives``.

    Raises
    ------
    SpkembError
        A directive holding a line break or another control character: bash would run what follows
        it (``--subset $'train\\nid'`` made a line ``id/slurm-%j.out``). ``fix`` says what to change.
    """
    for directive in directives:
        if not directive.isprintable():
            raise SpkembError(f"#SBATCH {directive!r} holds a line break or another control character, which "
                              f"would run as a command in the batch script: {fix}")
    return "\n".join(f"#SBATCH {d}" for d in directives)


def batch_script(args: SbatchRequest) -> str:
    """The text of the batch script for the parsed ``sbatch`` arguments."""
    exp_dir = Path(args.exp_dir).resolve()
    trn = ExperimentDir(exp_dir).training(args.protocol, args.subset)
    trn_dir = trn.root
    directives = [
        f"--job-name=spkemb-{exp_dir.name}",
        f"--nodes={args.nodes}",
        "--ntasks-per-node=1",
        f"--gpus-per-node={args.gpus_per_node}",
        f"--cpus-per-task={args.cpus_per_task}",
        f"--time={args.time}",
        f"--signal=B:USR1@{WARNING_SECONDS}",
        "--requeue",
        "--open-mode=append",
        f"--output={trn_dir}/slurm-%j.out",
    ]
    if args.partition:
        directives.append(f"--partition={args.partition}")
    train = shlex.join(_train_arguments(args))
    header = sbatch_header(directives, fix="give EXP_DIR, PROTOCOL and --subset without one")
    return f"""#!/bin/bash
{header}
# Written by `spkemb-engine sbatch`. Submit with: sbatch THIS_FILE
set -euo pipefail
mkdir -p {shlex.quote(str(trn_dir))}
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
resume=()
if compgen -G {shlex.quote(str(trn.weights))}'/*{CHECKPOINT_SUFFIX}' > /dev/null; then resume=(--resume); fi

# Before the time limit SLURM sends USR1 to this script: pass it on as SIGTERM (the
# engine finishes the step, checkpoints, records `stopped`), then requeue the job.
requeue() {{
    kill -TERM "$step_pid" 2>/dev/null || true
    wait "$step_pid" || true
    scontrol requeue "$SLURM_JOB_ID"
}}
trap requeue USR1

srun --kill-on-bad-exit=1 torchrun \\
    --nnodes="$SLURM_NNODES" --nproc_per_node={args.gpus_per_node} \\
    --rdzv_id="$SLURM_JOB_ID" --rdzv_backend=c10d --rdzv_endpoint="$head_node:29500" \\
    -m engine train "${{resume[@]}}" {train} &
step_pid=$!
wait "$step_pid"
"""


def cmd_sbatch(args: SbatchRequest) -> int:
    config = ExperimentDir(Path(args.exp_dir)).config
    if not config.is_file():
        raise SpkembError(f"{config} does not exist: create the experiment's config first "
                          f"(spkemb-tui, or copy experiments/tutorial/{CONFIG})")
    script = batch_script(args)
    if args.output:
        Path(args.output).write_text(script)
        say(f"wrote {args.output}; submit it with: sbatch {args.output}")
    else:
        out_text(script)
    return 0
