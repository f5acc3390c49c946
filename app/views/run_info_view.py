"""The text of a run's info dialog (``i``): how to start it again, where it ran, with what."""

from __future__ import annotations

import shlex
import time

from app.views.run_detail_view import log_path
from engine.records import Run
from engine.version import software_text


def _when(t: float | None) -> str:
    return "—" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def info_lines(run: Run) -> list[str]:
    """Plain text, one fact a line: the command as a shell reads it, the process, the times, the
    folders, the software."""
    command = shlex.join(run.command) if run.command else "not recorded"
    where = f"{run.host or '?'} pid {run.pid if run.pid is not None else '?'}"
    if run.slurm_job_id:
        where += f", SLURM job {run.slurm_job_id}"
    return [
        f"run #{run.id}  {run.kind}  {run.status}",
        f"command   {command}",
        f"process   {where}, device {run.device or '?'}",
        f"started   {_when(run.started_at)}   ended {_when(run.ended_at)}",
        f"folder    {run.out_dir or '—'}",
        f"log       {log_path(run) or '—'}",
        f"software  {software_text(run.software)}",
    ]
