"""The `sbatch` job script run by bash against stand-in srun, scancel and scontrol that behave as SLURM's:
its directives read as sbatch reads them, its log folder there before SLURM opens the log, the time
limit's warning stopping the training's tasks (not srun, which would kill them) and requeueing the job,
a requeued job resuming, and the step's exit status kept."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_in_process

PROTOCOL = "Demo.SpeakerVerification.Voices"

#: srun: records its arguments and runs the step's one task; a SIGTERM to srun itself is what SLURM's
#: srun answers by killing its tasks (SIGKILL), recorded as such
SRUN = r"""#!/bin/bash
echo "$*" >> "$RECORD/srun.args"
trap 'echo "srun got SIGTERM: it kills its tasks" >> "$RECORD/step.log"; kill -KILL $task; exit 137' TERM
"$RECORD/task" &
task=$!
echo $task > "$RECORD/task.pid"
wait $task
"""
#: the step's task: the engine, which checkpoints and ends on SIGTERM at a step boundary
TASK = r"""#!/bin/bash
trap 'echo "task stopped at a step boundary" >> "$RECORD/step.log"; exit 0' TERM
if [[ -n "${TASK_EXIT:-}" ]]; then exit "$TASK_EXIT"; fi
while :; do sleep 0.05; done
"""
#: scancel --signal=TERM JOB: SLURM's daemons signal the job's steps' tasks (never srun)
SCANCEL = r"""#!/bin/bash
echo "$*" >> "$RECORD/scancel.args"
kill -TERM "$(cat "$RECORD/task.pid")"
"""
SCONTROL = r"""#!/bin/bash
case "$1" in
    show) echo node1 ;;
    requeue) echo "$*" >> "$RECORD/requeue.args" ;;
esac
"""


def _stand_ins(folder: Path) -> Path:
    folder.mkdir()
    for name, text in (("srun", SRUN), ("task", TASK), ("scancel", SCANCEL), ("scontrol", SCONTROL)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def _job_env(record: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{record}{os.pathsep}{os.environ['PATH']}", "RECORD": str(record),
            "SLURM_JOB_ID": "4242", "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "node1",
            "SLURM_CPUS_PER_TASK": "6", **extra}


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_the_job_script_stops_the_tasks_requeues_and_resumes(tmp_path: Path, demo_corpus: Path) -> None:
    """The warning's trap sent SIGTERM to srun, which kills its tasks: no checkpoint, no `stopped`,
    each requeue back to the last epoch's checkpoint; the folder of the log did not exist when SLURM
    opened it; a space or a `#` in a folder name broke the #SBATCH lines."""
    exp = tmp_path / "my exps" / "aam #2"
    exp.mkdir(parents=True)
    (exp / "config.yml").write_text(TINY_CONFIG)
    job = tmp_path / "job.sh"
    done = run_in_process("sbatch", "--cpus-per-task", "6", "-o", str(job), str(exp), PROTOCOL,
                          db=tmp_path / "runs.db", database=demo_corpus)
    assert done.returncode == 0, done.stderr
    trn_dir = exp / "train" / f"{PROTOCOL}.train"
    assert trn_dir.is_dir()  # where SLURM writes slurm-JOBID.out, before the script runs
    directives = [shlex.split(line[len("#SBATCH "):]) for line in job.read_text().splitlines()
                  if line.startswith("#SBATCH ")]
    assert ["--job-name=spkemb-aam #2"] in directives
    assert [f"--output={trn_dir}/slurm-%j.out"] in directives

    record = _stand_ins(tmp_path / "bin")
    with children.started(["bash", str(job)], env=_job_env(record), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        _wait_for(record / "task.pid")
        os.kill(proc.pid, signal.SIGUSR1)  # SLURM's warning before the time limit
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (record / "step.log").read_text() == "task stopped at a step boundary\n"
    assert (record / "scancel.args").read_text().split() == ["--signal=TERM", "4242"]
    assert (record / "requeue.args").read_text().split() == ["requeue", "4242"]
    first = shlex.split((record / "srun.args").read_text().splitlines()[0])
    assert first[:2] == ["--kill-on-bad-exit=1", "--cpus-per-task=6"] and "--resume" not in first
    assert "--rdzv_endpoint=node1:24242" in first  # the job's own port

    # the requeued job finds the checkpoint the stop wrote, and resumes
    (trn_dir / "weights").mkdir()
    (trn_dir / "weights" / "0001.pt").write_bytes(b"")
    (record / "task.pid").unlink()
    again = children.run(["bash", str(job)], env=_job_env(record, TASK_EXIT="0"), timeout=60)
    assert again.returncode == 0, again.stderr
    assert "--resume" in shlex.split((record / "srun.args").read_text().splitlines()[1])
    # a failed training is a failed job
    failed = children.run(["bash", str(job)], env=_job_env(record, TASK_EXIT="3"), timeout=60)
    assert failed.returncode == 3 and not (record / "requeue.args").read_text().count("\n") > 1


def test_sbatch_refuses_a_gpu_index_that_every_rank_would_share(tmp_path: Path, demo_corpus: Path) -> None:
    (tmp_path / "config.yml").write_text(TINY_CONFIG)
    done = run_in_process("sbatch", "--device", "cuda:1", str(tmp_path), PROTOCOL, db=tmp_path / "runs.db",
                          database=demo_corpus)
    assert done.returncode == 2 and done.stderr == (
        "spkemb-engine sbatch: error: --device cuda:1: under torchrun each rank trains on the GPU of its "
        "LOCAL_RANK; pass --device cuda (or cpu)\n")
    assert "--device cuda " in run_in_process("sbatch", "--device", "cuda", str(tmp_path), PROTOCOL,
                                              db=tmp_path / "runs.db", database=demo_corpus).stdout
