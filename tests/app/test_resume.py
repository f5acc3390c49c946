"""Resuming a training run from the TUI starts it again as it ran: torchrun with as many processes,
its data-loading workers, and a device that ``--device`` takes (the database records ``cpu x2``)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from app.launching import commands
from app.screens.run_detail import RunDetailScreen
from engine.cli import request_of
from engine.requests import TrainRequest
from engine.store import open_store
from tests.app.conftest import NOW, make, notified, open_run, wait_for

PROTOCOL = "Demo.SpeakerVerification.Voices"


def add_stopped_run(root: Path, name: str, device: str, command: list[str]) -> int:
    """A training run stopped at epoch 1, recorded with ``device`` and ``command`` as the engine records them."""
    exp = root / "experiments" / name
    (exp / "train" / f"{PROTOCOL}.train").mkdir(parents=True)
    with open_store(root / "runs.db") as store:
        run = store.create_run(kind="train", exp_dir=exp, out_dir=exp / "train" / f"{PROTOCOL}.train",
                               protocol=PROTOCOL, subset="train", config={}, command=command, device=device,
                               target_epoch=5, name=name, _at=NOW - 600)
        store.heartbeat(run, epoch=1, step=10)
        store.set_status(run, "stopped", reason="SIGTERM")
    return run


def engine_request(argv: list[str]) -> TrainRequest:
    """The request the engine's own parser makes of a launch command (``... -m engine ARGS``)."""
    request = request_of(argv[argv.index("engine") + 1:])
    assert isinstance(request, TrainRequest)
    return request


async def test_resume_of_a_torchrun_run_starts_torchrun_again_with_its_processes_and_workers(
        workspace: Path) -> None:
    # as rank 0 of `torchrun --nproc_per_node 2 -m engine train --parallel 3 --device cpu ...` records itself
    command = [str(Path(commands.__file__).parents[2] / "engine" / "__main__.py"), "train", "--parallel", "3",
               "--device", "cpu", "--to", "5", str(workspace / "experiments" / "ddp"), PROTOCOL]
    add_stopped_run(workspace, "ddp", "cpu x2", command)
    app = make(workspace)
    pid = None
    try:
        async with app.run_test(size=(160, 44)) as pilot:
            await open_run(pilot, "ddp", runs=6)
            detail = app.screen
            assert isinstance(detail, RunDetailScreen)
            await wait_for(pilot, lambda: detail.data is not None)
            await pilot.press("r")
            await wait_for(pilot, lambda: any(p.kind == "train" for p in app.pending))
            (launched,) = [p for p in app.pending if p.kind == "train"]
            pid = launched.pid
            argv = launched.argv
            # `r` again before the resumed process records its run: it started a second one, which the engine
            # refused into the run's own log while the TUI said the resume had failed
            await pilot.press("r")
            assert notified(app, "The resume of #", severity="warning")
            assert [p.pid for p in app.pending if p.kind == "train"] == [pid]
    finally:
        if pid is not None:  # the launch is real; its own session holds torchrun and its workers
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert argv[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    request = engine_request(argv)
    assert (request.device, request.parallel, request.resume, request.to) == ("cpu", 3, True, 5)
    assert request.exp_dir == str(workspace / "experiments" / "ddp") and request.protocol == PROTOCOL


def test_resume_commands_built_from_recorded_runs(workspace: Path) -> None:
    ids = {
        # four GPUs: each process takes its local rank's GPU (`--device cuda`), not all of them cuda:0
        "gpus": add_stopped_run(workspace, "gpus", "cuda:0 x4",
                                ["engine/__main__.py", "train", "--parallel=6", "x", PROTOCOL]),
        # one process: its device as recorded, no torchrun
        "one": add_stopped_run(workspace, "one", "cuda:1", ["engine/__main__.py", "train", "x", PROTOCOL]),
    }
    with open_store(workspace / "runs.db", readonly=True) as store:
        runs = {name: store.run_record(i) for name, i in ids.items()}
    gpus = commands.resume_argv(runs["gpus"], db=workspace / "runs.db")
    assert gpus[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert (engine_request(gpus).device, engine_request(gpus).parallel) == ("cuda", 6)
    one = commands.resume_argv(runs["one"], db=workspace / "runs.db")
    assert one[:3] == [sys.executable, "-m", "engine"]
    assert (engine_request(one).device, engine_request(one).parallel, engine_request(one).resume) == ("cuda:1", 2, True)
    # no seed: the resumed run goes on with its checkpoint's (--seed 0 was refused for a run of seed 5)
    assert "--seed" not in one and engine_request(one).seed is None
    # validation and extraction beside a torchrun run are one process: rank 0's device
    assert commands.run_device(runs["gpus"]) == "cuda:0"
