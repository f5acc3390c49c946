"""What ``cuda:N`` means in a process that ``CUDA_VISIBLE_DEVICES`` restricts, without torch.

CUDA numbers the GPUs a process sees from 0, in the order ``CUDA_VISIBLE_DEVICES`` lists them: under
``CUDA_VISIBLE_DEVICES=2,3`` (a shared workstation, a SLURM allocation without device cgroups) a run's
``cuda:0`` is the machine's GPU 2. A child given one GPU of its parent's must therefore be given the
parent's entry for it, not the parent's number; and a picker must offer the numbers the parent sees.
"""

from __future__ import annotations

from collections.abc import Mapping

VARIABLE = "CUDA_VISIBLE_DEVICES"
#: how CUDA orders the GPUs it numbers: by speed unless told otherwise, nvidia-smi by PCI bus
ORDER = "CUDA_DEVICE_ORDER"


def visible_entries(env: Mapping[str, str]) -> list[str] | None:
    """The GPUs ``env`` lets CUDA see, as written (an index, a ``GPU-``/``MIG-`` UUID), in CUDA's order;
    None when it does not restrict them.

    CUDA reads the list up to its first entry that names no device (``-1`` hides every GPU after it) and
    ignores the rest: so is it read here.
    """
    value = env.get(VARIABLE)
    if value is None:
        return None
    entries = []
    for entry in (e.strip() for e in value.split(",")):
        if not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
            break
        entries.append(entry)
    return entries


def entry_for(index: int, env: Mapping[str, str]) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` entry that shows a child the GPU this process calls ``cuda:index``
    (None: this process sees no such GPU)."""
    entries = visible_entries(env)
    if entries is None:
        return str(index)
    return entries[index] if index < len(entries) else None


def in_bus_order(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a child whose ``cuda:N`` must be nvidia-smi's GPU N (unless ``env`` orders them already):
    on a machine of mixed GPUs CUDA's own order puts the fastest first."""
    return {ORDER: "PCI_BUS_ID", **env}
