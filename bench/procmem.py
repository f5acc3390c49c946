"""Memory of processes, from /proc: private memory (USS), the peak resident size, a process tree.

The peak is ``VmHWM``, not ``ru_maxrss``: Linux carries the parent's high-water mark over fork
and exec into a child's ``ru_maxrss``, so a child of a big benchmark process would report the
parent's size.
"""

from __future__ import annotations

from pathlib import Path


def uss_mb(pid: int) -> float | None:
    """Private memory of a process (USS, from smaps_rollup); None when it is gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty")) / 1024


def peak_mb(pid: int | str = "self") -> float | None:
    """The peak resident size of a process (VmHWM); None when it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM")), None)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found
