"""``sweep --sbatch``: one array job, submitted to (stand-in) ``sbatch``, whose tasks run each trial under
``srun torchrun`` with validation beside it."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

from engine.store import open_store
from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import engine_env

PROTOCOL = "Demo.SpeakerVerification.Voices"

#: records its arguments, then runs each task of the script's array as SLURM would (one after the other)
SBATCH = r"""#!/bin/bash
echo "$*" >> "$RECORD/sbatch.args"
script="${@: -1}"
range=$(sed -n 's/^#SBATCH --array=\([0-9]*\)-\([0-9]*\)%.*/\1 \2/p' "$script")
for task in $(seq $range); do
    SLURM_JOB_ID=77 SLURM_ARRAY_JOB_ID=77 SLURM_ARRAY_TASK_ID=$task SLURM_CPUS_PER_TASK=4 bash "$script" || exit $?
done
echo "77;cluster"
"""
#: records its arguments, one line per call; a training takes its folder's lock, as the engine does once
#: it has checked its data, and ends at once (a trial at its target already): its validation is started
#: all the same, once the lock is taken
SRUN = """#!/bin/bash
echo "$*" >> "$RECORD/srun.args"
if [[ " $* " == *" train "* ]]; then
    touch "${@: -2:1}/train/${@: -1}.train/.train.lock"
fi
"""
# a sweep checks its protocol and subsets before it records anything
pytestmark = pytest.mark.usefixtures("demo_database_env")


@pytest.mark.slow
def test_the_array_job_runs_each_trial_under_srun_torchrun_with_validation(tmp_path: Path, db_path: Path,
                                                                        demo_corpus: Path) -> None:
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    for name, text in (("sbatch", SBATCH), ("srun", SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    (tmp_path / "database.yml").write_text(f"Requirements:\n- {demo_corpus}\n")  # found where the sweep is made
    env = {**engine_env(db_path), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RECORD": str(record)}
    done = children.run([sys.executable, "-m", "engine", "sweep", "--set", "task.params.margin=0.1,0.2",
                         "--seeds", "2", "--slots", "cuda:0,cuda:1", "--epochs", "3", "--sbatch", "--name", "arr",
                         "--database", str(tmp_path / "database.yml"), str(base), PROTOCOL],
                        env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    script = base / "sweeps" / "arr" / "sweep.sbatch"
    assert (record / "sbatch.args").read_text().split() == ["--parsable", str(script)]
    text = script.read_text()
    assert "#SBATCH --array=0-3%2\n" in text  # four trials, two at a time (two slots)
    assert "#SBATCH --cpus-per-task=4\n" in text  # two loader processes, training, validation
    # the task's own id: the first task's job id is the array's, which scancel and scontrol take as all of it
    assert 'scancel --signal=TERM "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"' in text
    calls = [shlex.split(line) for line in (record / "srun.args").read_text().splitlines()]
    trains = [c for c in calls if "torch.distributed.run" in c]
    validates = [c for c in calls if "validate" in c]
    assert len(trains) == len(validates) == 4
    db = str(db_path.resolve())
    for task, call in enumerate(trains):
        exp = str(base.resolve() / "sweeps" / "arr" / f"trial-{task:03d}")
        # this interpreter, not whichever `torchrun` a node's PATH finds; the task's CPUs for the step
        assert call[:call.index("-m")] == ["--kill-on-bad-exit=1", "--cpus-per-task=4", sys.executable]
        assert call[call.index("-m"):call.index("train")] == ["-m", "torch.distributed.run", "--standalone",
                                                             "--nproc_per_node=1", "-m", "engine"]
        assert call[-2:] == [exp, PROTOCOL]
        assert call[call.index("--seed") + 1] == str(task % 2)  # each trial's own, 0 too
        for flag, value in (("--group", "arr"), ("--to", "3"), ("--db", db), ("--device", "cuda"),
                            ("--database", str((tmp_path / "database.yml").resolve()))):
            assert call[call.index(flag) + 1] == value, (flag, call)
    for task, call in enumerate(validates):
        trn = str(base.resolve() / "sweeps" / "arr" / f"trial-{task:03d}" / "train" / f"{PROTOCOL}.train")
        assert call[:3] == ["--overlap", "--ntasks=1", sys.executable] and call[-2:] == [trn, PROTOCOL]
        assert call[call.index("--subset") + 1] == "development" and call[call.index("--db") + 1] == db
    store = open_store(db_path, readonly=True)
    (sweep,) = store.sweeps()
    assert sweep["slurm_job_id"] == "77" and sweep["script"] == str(script.resolve())
    assert len(store.sweep_trials(sweep["id"])) == 4
    assert store.runs(kind="train") == []  # the array's tasks record their runs, not the queue
