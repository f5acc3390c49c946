"""``spkemb-engine sbatch``: a SLURM batch script that trains under ``srun torchrun``.

The script asks SLURM for a warning signal before the time limit (``--signal``), has SLURM
send the training step's tasks SIGTERM (the engine checkpoints and records ``stopped``;
srun itself would answer a SIGTERM by killing them), then requeues the job; a requeued job
finds the checkpoints and resumes. Preemption and the time limit itself reach srun too, which
then kills its tasks: the requeued job resumes from the last checkpoint written.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from engine.console import out_text, say
from engine.data.database_yml import pinned_database
from engine.errors import SpkembError
from engine.layout import CHECKPOINT_SUFFIX, CONFIG, ExperimentDir
from engine.requests import SbatchRequest
from engine.store import default_db_path

#: seconds of warning before the time limit: saving fits well inside it
WARNING_SECONDS = 180
#: the shortest ``--time`` a job is given: the warning, and minutes for start-up and steps before it
MIN_TIME_SECONDS = 10 * 60


def check_time_limit(limit: str) -> None:
    """Refuse a ``--time`` (one of the forms sbatch reads) that the warning would take whole: each
    start would be told to stop before its first step, checkpoint nothing and requeue, for ever."""
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = (parts + [0, 0])[:3]
        total = ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    elif len(parts) == 3:  # HH:MM:SS
        total = (parts[0] * 60 + parts[1]) * 60 + parts[2]
    else:  # MINUTES, MINUTES:SECONDS
        total = parts[0] * 60 + (parts[1] if len(parts) == 2 else 0)
    if 0 < total < MIN_TIME_SECONDS:  # 0: no limit
        raise SpkembError(f"--time {limit}: the job is warned {WARNING_SECONDS} s before its time limit to "
                          "checkpoint and requeue, which leaves it no time to train; give it at least "
                          f"{MIN_TIME_SECONDS // 60} minutes (--time {MIN_TIME_SECONDS // 60})")


def _train_arguments(args: SbatchRequest) -> list[str]:
    argv = ["--subset", args.subset, "--parallel", str(args.parallel), "--log-every", str(args.log_every)]
    if args.seed is not None:  # a requeued job resumes with the run's own seed either way
        argv += ["--seed", str(args.seed)]
    if args.device is not None:
        if ":" in args.device:
            raise SpkembError(f"--device {args.device}: under torchrun each rank trains on the GPU of its "
                              "LOCAL_RANK; pass --device cuda (or cpu)")
        argv += ["--device", args.device]
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


def sbatch_value(text: str) -> str:
    """``text`` as one ``#SBATCH`` value: sbatch splits those lines at blanks and ends them at a ``#``,
    except inside quotes (where a backslash escapes a quote)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def log_pattern(folder: Path, name: str) -> str:
    """``--output``'s value for the log ``name`` (which may hold sbatch's ``%j``, ``%A``...) in ``folder``,
    whose own ``%`` are kept as they are."""
    return sbatch_value(f"{str(folder).replace('%', '%%')}/{name}")


def resume_lines(weights: str) -> str:
    """Bash that sets ``resume`` to ``(--resume)`` when the folder ``weights`` (a bash word: quoted, or a
    quoted variable) holds a checkpoint (a requeued job); no pattern in its name is expanded."""
    return (f"resume=()\nsaved=({weights}/*{CHECKPOINT_SUFFIX})\n"
            'if [[ -e "${saved[0]}" ]]; then resume=(--resume); fi')


def requeued_step(command: str, beside: str = "", job: str = '"$SLURM_JOB_ID"') -> str:
    """Bash that runs ``command`` (an srun step) in the background, then ``beside`` (which may start
    other steps), and on SLURM's USR1 has the steps of ``job`` (bash for its id) stop, waits for them
    and requeues it; ``status`` is then the step's exit status, and ``requeued`` 1 when the job was
    requeued."""
    return f"""# Before the time limit SLURM sends USR1 to this script. srun would answer a SIGTERM by
# killing its tasks: SLURM sends SIGTERM to the steps' tasks themselves (scancel --signal reaches every
# step of the job but this script); the engine checkpoints at a step boundary and records `stopped`;
# then the job is requeued, and the requeued job resumes from that checkpoint.
requeued=0
requeue() {{
    scancel --signal=TERM {job} || true
    wait || true
    scontrol requeue {job}
    requeued=1
}}
trap requeue USR1

{command} &
step_pid=$!
{beside}
status=0
wait "$step_pid" || status=$?"""


def batch_script(args: SbatchRequest) -> str:
    """The text of the batch script for the parsed ``sbatch`` arguments."""
    check_time_limit(args.time)
    exp_dir = Path(args.exp_dir).resolve()
    trn = ExperimentDir(exp_dir).training(args.protocol, args.subset)
    trn_dir = trn.root
    directives = [
        f"--job-name={sbatch_value('spkemb-' + exp_dir.name)}",
        f"--nodes={args.nodes}",
        "--ntasks-per-node=1",
        f"--gpus-per-node={args.gpus_per_node}",
        f"--cpus-per-task={args.cpus_per_task}",
        f"--time={args.time}",
        f"--signal=B:USR1@{WARNING_SECONDS}",
        "--requeue",
        "--open-mode=append",
        f"--output={log_pattern(trn_dir, 'slurm-%j.out')}",
    ]
    if args.partition:
        directives.append(f"--partition={args.partition}")
    train = shlex.join(_train_arguments(args))
    header = sbatch_header(directives, fix="give EXP_DIR, PROTOCOL and --subset without one")
    # srun of Slurm 22.05 to 23.02 gives its step one CPU unless told the job's count
    step = requeued_step(f"""srun --kill-on-bad-exit=1 --cpus-per-task="$SLURM_CPUS_PER_TASK" \\
    {shlex.quote(sys.executable)} -m torch.distributed.run \\
    --nnodes="$SLURM_NNODES" --nproc_per_node={args.gpus_per_node} \\
    --rdzv_id="$SLURM_JOB_ID" --rdzv_backend=c10d --rdzv_endpoint="$head_node:$port" \\
    -m engine train ${{resume[@]+"${{resume[@]}}"}} {train}""")
    return f"""#!/bin/bash
{header}
# Written by `spkemb-engine sbatch`. Submit with: sbatch THIS_FILE
set -euo pipefail
mkdir -p {shlex.quote(str(trn_dir))}
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
# the rendezvous port of this job: two jobs sharing a head node do not meet on one
port=$((20000 + SLURM_JOB_ID % 20000))
{resume_lines(shlex.quote(str(trn.weights)))}

{step}
if (( requeued )); then exit 0; fi
exit "$status"
"""


def cmd_sbatch(args: SbatchRequest) -> int:
    config = ExperimentDir(Path(args.exp_dir)).config
    if not config.is_file():
        raise SpkembError(f"{config} does not exist: create the experiment's config first "
                          f"(spkemb-tui, or copy experiments/tutorial/{CONFIG})")
    script = batch_script(args)
    # SLURM opens the job's log (TRN_DIR/slurm-JOBID.out) before the script runs
    ExperimentDir(Path(args.exp_dir).resolve()).training(args.protocol, args.subset).root.mkdir(
        parents=True, exist_ok=True)
    if args.output:
        Path(args.output).write_text(script)
        say(f"wrote {args.output}; submit it with: sbatch {args.output}")
    else:
        out_text(script)
    return 0
