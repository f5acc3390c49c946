"""PyTorch's own DistributedDataParallel, as torchrun starts it; nothing home-made.

Under ``torchrun`` the environment carries RANK, WORLD_SIZE and LOCAL_RANK; a plain
``spkemb-engine train`` is a world of one. Rank 0 alone writes checkpoints and
database rows; every rank agrees on stopping at a step boundary, because a signal
may reach only some of them. A rank stops as on SIGTERM when its torchrun agent dies: killed
without the chance to stop its workers, the agent would otherwise leave them training on, unseen.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from engine.errors import SpkembError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    #: the gloo group the ranks agree on stopping through (None: the default group, gloo itself)
    control: Any = field(default=None, compare=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def pick_device(name: str | None, world: World | None = None) -> torch.device:
    """The requested device, else the first GPU, else the CPU; under torchrun, this rank's GPU. A GPU
    picked becomes the process's current one, so that nothing (the loader's pinning thread, a barrier)
    opens a context on GPU 0 beside it.

    Raises
    ------
    SpkembError
        A GPU that CUDA does not see here; under torchrun, a GPU named by index (each rank takes its
        LOCAL_RANK's) or more processes a node than its GPUs.
    """
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise SpkembError(f"--device {name}: no CUDA GPU is visible here; use --device cpu")
    distributed = world is not None and world.distributed
    if distributed and device.index is not None:
        raise SpkembError(f"--device {name} under torchrun: every rank would train on that one GPU; pass "
                          "--device cuda and each rank takes the GPU of its LOCAL_RANK")
    index = world.local_rank if world is not None and distributed else device.index or 0
    seen = torch.cuda.device_count()
    if index >= seen and distributed:
        raise SpkembError(f"LOCAL_RANK {index}: CUDA sees {seen} GPU(s) on this node; start at most {seen} "
                          f"processes a node (torchrun --nproc_per_node {seen})")
    if index >= seen:
        raise SpkembError(f"--device {name}: CUDA sees {seen} GPU(s) here, cuda:0 to cuda:{seen - 1}")
    device = torch.device("cuda", index)
    torch.cuda.set_device(device)
    return device


def join_world(device: str | None) -> tuple[World, torch.device]:
    """This process's world (one process, or the group torchrun prepared) and its device there."""
    world = _join_group(device)
    return world, pick_device(device, world)


def _join_group(device: str | None) -> World:
    """Join the process group torchrun prepared (gloo on CPU, nccl on GPU), each rank on its own GPU."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    _stop_with_the_agent()
    local = World(size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    picked = pick_device(device, local)
    backend = "nccl" if picked.type == "cuda" else "gloo"
    if not dist.is_initialized():
        # nccl binds the rank's communicators to its GPU (a barrier then never guesses device 0)
        dist.init_process_group(backend=backend, device_id=picked if picked.type == "cuda" else None)
    # on GPUs the stop flag goes through a gloo group of its own: a one-number all-reduce on the
    # GPU would make the host wait for the step's kernels (``.item()``) at every step
    control = dist.new_group(backend="gloo") if backend == "nccl" else None
    return World(rank=dist.get_rank(), size=dist.get_world_size(),
                 local_rank=int(os.environ.get("LOCAL_RANK", "0")), control=control)


_PR_SET_PDEATHSIG = 1


def _stop_with_the_agent() -> None:
    """SIGTERM, which training takes as a stop request, when torchrun's agent (our parent) dies."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the agent died before the line above: init adopted us already
        os.kill(os.getpid(), signal.SIGTERM)


def agree(flag: bool, world: World) -> bool:
    """True on every rank when ``flag`` is true on any rank: a one-number all-reduce on the CPU
    (through ``world.control`` under nccl), which never waits for the GPU."""
    if not world.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=world.control)
    return bool(t.item() > 0)


def batch_mean(loss: torch.Tensor, weight: float, world: World) -> torch.Tensor:
    """The whole batch's mean loss from this rank's mean over its share (``weight``: the share's
    ``share_weight``, which sums to ``world.size`` over the ranks): what a single process would
    record. A one-number all-reduce on the device, in step with every rank (no host sync)."""
    if not world.distributed:
        return loss
    total = loss * (weight / world.size)
    dist.all_reduce(total)
    return total


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
