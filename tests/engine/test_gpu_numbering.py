"""GPUs numbered as CUDA numbers them: a queue's slots through ``CUDA_VISIBLE_DEVICES`` (and refused where
CUDA sees no such GPU, before a sweep records anything), the TUI's picker in nvidia-smi's order."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from app.launching.children import Launcher
from engine.process.cuda_visible import entry_for, in_bus_order, visible_entries
from engine.process.gpus import as_seen, parse_nvidia_smi
from engine.sweeps.processes import child_env
from engine.sweeps.slots import parse_slots
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_in_process

PROTOCOL = "Demo.SpeakerVerification.Voices"
NO_GPU = {"CUDA_VISIBLE_DEVICES": ""}
SMI = ("0, GPU-aaaa1111, NVIDIA H100 80GB HBM3, 81559 MiB\n1, GPU-bbbb2222, NVIDIA H100 80GB HBM3, 81559 MiB\n"
       "2, GPU-cccc3333, NVIDIA A100-SXM4-40GB, 40960 MiB\n3, GPU-dddd4444, NVIDIA A100-SXM4-40GB, 40960 MiB\n")
# a sweep checks its protocol and subsets before it records anything
pytestmark = pytest.mark.usefixtures("demo_database_env")


def test_cuda_visible_devices_is_read_as_cuda_reads_it() -> None:
    assert visible_entries({}) is None and visible_entries({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_entries({"CUDA_VISIBLE_DEVICES": " 2, 3 "}) == ["2", "3"]
    # CUDA stops at the first entry that names no device
    assert visible_entries({"CUDA_VISIBLE_DEVICES": "1,-1,0"}) == ["1"]
    assert visible_entries({"CUDA_VISIBLE_DEVICES": "GPU-bbbb,MIG-1/2/3"}) == ["GPU-bbbb", "MIG-1/2/3"]
    assert entry_for(1, {}) == "1" and entry_for(1, {"CUDA_VISIBLE_DEVICES": "2,3"}) == "3"
    assert entry_for(2, {"CUDA_VISIBLE_DEVICES": "2,3"}) is None


def test_a_slot_child_gets_the_queues_own_entry_for_its_gpu() -> None:
    """Under CUDA_VISIBLE_DEVICES=2,3 the queue's cuda:0 is GPU 2; its child was given
    CUDA_VISIBLE_DEVICES=0, GPU 0 of the machine: another user's, or another SLURM job's."""
    first, second, cpu = parse_slots("cuda:0,cuda:1,cpu")
    shared = {"CUDA_VISIBLE_DEVICES": "2,3", "PATH": "/bin"}
    assert child_env(first, None, shared)["CUDA_VISIBLE_DEVICES"] == "2"
    assert child_env(second, None, shared)["CUDA_VISIBLE_DEVICES"] == "3"
    assert child_env(second, None, {"CUDA_VISIBLE_DEVICES": "GPU-aaaa,GPU-bbbb"})["CUDA_VISIBLE_DEVICES"] == "GPU-bbbb"
    assert child_env(second, None, {"PATH": "/bin"})["CUDA_VISIBLE_DEVICES"] == "1"
    assert child_env(cpu, None, shared)["CUDA_VISIBLE_DEVICES"] == ""


def test_the_tui_offers_gpus_by_the_numbers_its_children_see() -> None:
    """nvidia-smi numbers every GPU of the machine; a run started under CUDA_VISIBLE_DEVICES=2,3 with
    ``--device cuda:2`` (as the picker offered) found no such device."""
    gpus = parse_nvidia_smi(SMI)
    assert [(g.index, g.uuid) for g in gpus][:2] == [(0, "GPU-aaaa1111"), (1, "GPU-bbbb2222")]
    assert as_seen(gpus, {}) == gpus
    seen = as_seen(gpus, {"CUDA_VISIBLE_DEVICES": "3,GPU-bbbb"})
    assert [(g.index, g.uuid) for g in seen] == [(0, "GPU-dddd4444"), (1, "GPU-bbbb2222")]
    assert seen[0].label == "cuda:0  NVIDIA A100-SXM4-40GB (40 GiB)"
    (mig,) = as_seen(gpus, {"CUDA_VISIBLE_DEVICES": "MIG-1/2/3"})
    assert mig.label == "cuda:0  GPU MIG-1/2/3"
    assert as_seen(gpus, {"CUDA_VISIBLE_DEVICES": ""}) == []
    # CUDA ignores a GPU it does not have, and every entry after it
    assert [g.uuid for g in as_seen(gpus, {"CUDA_VISIBLE_DEVICES": "2,7,0"})] == ["GPU-cccc3333"]


def test_gpu_slots_cuda_does_not_see_here_are_refused_before_anything_is_recorded(tmp_path: Path,
                                                                                 db_path: Path) -> None:
    """Every trial of `sweep --slots cuda:0` on a machine without a GPU was queued, started and failed."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    done = run_in_process("sweep", "--set", "task.params.margin=0.1,0.2", "--slots", "cuda:0", "--no-validate",
                          str(base), PROTOCOL, db=db_path, env=NO_GPU)
    assert done.returncode == 2
    assert done.stderr.strip() == ("spkemb-engine sweep: error: --slots cuda:0: CUDA sees no GPU here "
                                   "(CUDA_VISIBLE_DEVICES=''): use --slots cpu, or queue the trials with "
                                   "--no-queue and start the queue on a GPU machine")
    if db_path.exists():
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM sweeps").fetchone() == (0,)
    done = run_in_process("queue", "--detach", "--slots", "cpu,cuda:1", db=db_path, env=NO_GPU)
    assert done.returncode == 2 and "--slots cpu,cuda:1: CUDA sees no GPU here" in done.stderr
    # queued for a queue started elsewhere, or run by SLURM: not this machine's GPUs
    done = run_in_process("sweep", "--set", "task.params.margin=0.1", "--slots", "cuda:0", "--no-validate",
                          "--no-queue", str(base), PROTOCOL, db=db_path, env=NO_GPU)
    assert done.returncode == 0, done.stderr


def test_the_tuis_children_number_gpus_in_nvidia_smis_order(tmp_path: Path, monkeypatch) -> None:
    """CUDA numbers the fastest GPU first unless told otherwise: on a machine of mixed GPUs the
    picker's `cuda:1  NVIDIA A100` (nvidia-smi's order) could train on the H100."""
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    log = tmp_path / "child.log"
    launcher = Launcher()
    pid = launcher.launch([sys.executable, "-c", "import os; print(os.environ['CUDA_DEVICE_ORDER'])"], log)
    deadline = time.monotonic() + 60
    while not launcher.exited(pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert log.read_text().strip() == "PCI_BUS_ID"
    assert in_bus_order({"CUDA_DEVICE_ORDER": "FASTEST_FIRST"}) == {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"}


def _nvidia_smi_on_path(tmp_path: Path, lines: str) -> str:
    """A PATH whose nvidia-smi prints ``lines``, as the real one prints the GPUs it is asked for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\ncat <<'END'\n" + lines + "END\n")
    smi.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_slots_left_out_are_every_gpu_nvidia_smi_lists_here(tmp_path: Path, db_path: Path) -> None:
    """`sweep` without --slots trained every trial on the CPU, one at a time, on a node of four GPUs."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    path = _nvidia_smi_on_path(tmp_path, SMI)
    sweep = ("sweep", "--set", "task.params.margin=0.1", "--no-validate", "--no-queue")
    done = run_in_process(*sweep, "--name", "four", str(base), PROTOCOL, db=db_path,
                          env={"PATH": path, "CUDA_VISIBLE_DEVICES": "0,1,2,3"})
    assert done.returncode == 0, done.stderr
    assert ("--slots cuda:0,cuda:1,cuda:2,cuda:3: every GPU nvidia-smi lists here, one run each "
            "(--slots chooses others)") in done.stderr
    assert "spkemb-engine queue --detach --slots cuda:0,cuda:1,cuda:2,cuda:3 " in done.stderr
    # a SLURM allocation or a shared machine's CUDA_VISIBLE_DEVICES: those GPUs alone, numbered as CUDA does
    done = run_in_process(*sweep, "--name", "two", str(base), PROTOCOL, db=db_path,
                          env={"PATH": path, "CUDA_VISIBLE_DEVICES": "3,GPU-bbbb"})
    assert done.returncode == 0, done.stderr
    done = run_in_process(*sweep, "--name", "none", str(base), PROTOCOL, db=db_path,
                          env={"PATH": str(tmp_path / "bin"), "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr
    assert ("--slots cpu: nvidia-smi lists no GPU here, so runs train on the CPU one at a time "
            "(--slots cpu*2 runs two; --slots cuda:0,cuda:1 names GPUs)") in done.stderr
    with sqlite3.connect(db_path) as conn:
        recorded = dict(conn.execute("SELECT name, slots FROM sweeps").fetchall())
    assert recorded == {"four": "cuda:0,cuda:1,cuda:2,cuda:3", "two": "cuda:0,cuda:1", "none": "cpu"}
    # an array job's tasks each take a GPU of their node: this machine's four say nothing of how many at once
    done = run_in_process("sweep", "--set", "task.params.margin=0.1,0.2", "--no-validate", "--sbatch", "--name",
                          "array", str(base), PROTOCOL, db=db_path,
                          env={"PATH": path, "CUDA_VISIBLE_DEVICES": "0,1,2,3"})
    assert done.returncode == 0 and "--slots" not in done.stderr, done.stderr
    assert "#SBATCH --array=0-1%1\n" in (base / "sweeps" / "array" / "sweep.sbatch").read_text()
    # given, it is taken as it is, and nvidia-smi is not asked
    done = run_in_process(*sweep, "--name", "given", "--slots", "cpu*2", str(base), PROTOCOL, db=db_path,
                          env={"PATH": path})
    assert done.returncode == 0 and "nvidia-smi" not in done.stderr, done.stderr
