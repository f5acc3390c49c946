"""What a report compared: each system's runs (seed, and the checkpoint each trial list's figures are
of) and how the systems' configs differ — a paper's "systems" paragraph, and what a reader needs to
trust the table (a group's runs, a pick moved by hand, the margin one system changed).

torch-free: ``spkemb-engine report`` writes it as ``systems.csv`` and into ``report.html``.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.compare.pivot import Pivot
from engine.config.dump import flattened


@dataclass(frozen=True)
class SystemRun:
    """One run of a system, on one trial list: the checkpoint whose figures the table holds."""

    system: str
    run_id: int
    seed: int | None
    trials: str
    #: ``2`` (an epoch) or ``avg-top5`` (averaged weights)
    checkpoint: str
    #: a DER's extraction and check, under the VAL_DIR (``apply/2``, ``apply/2-step0.5/rttm-collar0.5``);
    #: "" for a trial list's figures
    extraction: str = ""
    #: the run's status (``completed``; ``running``, ``stopped``, ``failed``…: figures of the epochs
    #: validated so far), ``+validating`` while a validation of it still scores
    status: str = "completed"


def system_runs(pivot: Pivot) -> list[SystemRun]:
    """Each system's runs and, per trial list they scored, the checkpoint picked there (per diarization
    protocol, the extraction its DER is of), in table order."""
    rows = []
    for system in pivot.systems:
        for run_id in system.run_ids:
            run = pivot.runs[run_id]
            status = run.status + ("+validating" if run.validating else "")
            for scored in run.scored:
                rows.append(SystemRun(system.label, run_id, run.seed, scored.trials,
                                      scored.checkpoint_name or str(scored.epoch), status=status))
            rows += [SystemRun(system.label, run_id, run.seed, d.trials, d.checkpoint, d.extraction, status)
                     for d in run.diarized]
    return rows


def config_differences(pivot: Pivot, configs: Mapping[int, Any]) -> list[tuple[str, list[str]]]:
    """The config keys whose values differ between the systems (each read from its first run), with
    each system's value: ``[("task.params.margin", ["0.05", "0.2"])]``. A run's seed is no config key."""
    flat = [flattened(c) if isinstance(c := configs.get(s.run_ids[0]), dict) else {} for s in pivot.systems]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [(k, [_text(f.get(k)) for f in flat]) for k in keys if len({_text(f.get(k)) for f in flat}) > 1]


def _text(value: Any) -> str:
    return "—" if value is None else str(value)


def systems_csv(rows: list[SystemRun]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["system", "run_id", "seed", "trials", "checkpoint", "extraction", "status"])
    writer.writerows([r.system, r.run_id, "" if r.seed is None else r.seed, r.trials, r.checkpoint, r.extraction,
                      r.status] for r in rows)
    return text.getvalue()


def systems_html(pivot: Pivot, configs: Mapping[int, Any]) -> str:
    """The page's systems: a line each (its network, its runs with their seeds and checkpoints), then the
    config keys that differ between them."""
    rows = system_runs(pivot)
    items = []
    for system in pivot.systems:
        runs = []
        for run_id in system.run_ids:
            seed = pivot.runs[run_id].seed
            picked = "; ".join(f"{r.trials}: {f'DER of {r.extraction}' if r.extraction else _checkpoint(r.checkpoint)}"
                               for r in rows if r.run_id == run_id and r.system == system.label)
            runs.append(f"#{run_id}{'' if seed is None else f' (seed {seed})'}{f' — {picked}' if picked else ''}")
        network = f" — {system.network}" if system.network else ""
        items.append(f"<li>{html.escape(system.label + network)}<ul>"
                     + "".join(f"<li>{html.escape(r)}</li>" for r in runs) + "</ul></li>")
    differences = config_differences(pivot, configs)
    table = ""
    if len(pivot.systems) > 1 and any(isinstance(configs.get(s.run_ids[0]), dict) for s in pivot.systems):
        if differences:
            head = "".join(f"<th>{html.escape(s.label)}</th>" for s in pivot.systems)
            body = "".join(f"<tr><td><code>{html.escape(k)}</code></td>"
                           + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>"
                           for k, values in differences)
            table = f"<h3>Config differences</h3>\n<table><thead><tr><th>key</th>{head}</tr></thead>{body}</table>\n"
        else:
            table = "<p>Their configs are the same (each system's first run's).</p>\n"
    return f"<ul>{''.join(items)}</ul>\n{table}"


def _checkpoint(checkpoint: str) -> str:
    return f"epoch {checkpoint}" if checkpoint.isdigit() else checkpoint
