"""What the run detail shows of validations: raw or AS-norm figures, and averages against the best epoch.

Rows are the ``validations`` rows of the runs database; averaged weights (``avg-top5``) carry a
``checkpoint_name`` and, as ``epoch``, the last epoch they average.
"""

from __future__ import annotations

from typing import Any

#: raw column -> its AS-norm twin
ASNORM = {"eer": "eer_asnorm", "eer_low": "eer_asnorm_low", "eer_high": "eer_asnorm_high",
          "mindcf_01": "mindcf_01_asnorm", "mindcf_005": "mindcf_005_asnorm", "threshold": "threshold_asnorm"}


def figures(validations: list[dict], asnorm: bool) -> list[dict]:
    """The rows with their raw figures, or with the AS-norm ones in their place (rows without any dropped)."""
    if not asnorm:
        return list(validations)
    out = []
    for v in validations:
        if v.get("eer_asnorm") is None:
            continue
        out.append({**v, **{raw: v.get(norm) for raw, norm in ASNORM.items()}})
    return out


def is_named(v: dict) -> bool:
    return bool(v.get("checkpoint_name"))


def best_epoch_row(rows: list[dict]) -> dict | None:
    """The epoch of lowest EER (the earlier on a tie), averages aside."""
    epochs = [v for v in rows if not is_named(v) and v.get("eer") is not None]
    return min(epochs, key=lambda v: (v["eer"], v["epoch"])) if epochs else None


def _interval(v: dict) -> str:
    if v.get("eer_low") is None or v.get("eer_high") is None:
        return ""
    return f" [{100 * v['eer_low']:.2f}, {100 * v['eer_high']:.2f}]"


def verdict(average: dict, best: dict) -> str:
    """Is the average better than the best single epoch? Judged by their 95 % intervals."""
    if None in (average.get("eer_low"), average.get("eer_high"), best.get("eer_low"), best.get("eer_high")):
        return "no intervals to judge by"
    if average["eer_high"] < best["eer_low"]:
        return "better (intervals apart)"
    if average["eer_low"] > best["eer_high"]:
        return "worse (intervals apart)"
    return "no clear difference (intervals overlap)"


def versus_best(rows: list[dict]) -> dict[str, str]:
    """For each averaged checkpoint: its EER minus the best epoch's and the verdict, in a few words."""
    best = best_epoch_row(rows)
    out: dict[str, str] = {}
    for v in rows:
        if is_named(v) and best is not None and v.get("eer") is not None:
            delta = 100 * (v["eer"] - best["eer"])
            out[v["checkpoint_name"]] = f"{delta:+.2f} vs {best['epoch']}: {verdict(v, best).split(' (')[0]}"
    return out


def comparison_lines(rows: list[dict]) -> list[str]:
    """One sentence per averaged checkpoint: its EER and interval next to the best epoch's, and the verdict."""
    best = best_epoch_row(rows)
    if best is None:
        return []
    return [f"{v['checkpoint_name']}: EER {100 * v['eer']:.2f} %{_interval(v)} vs best epoch {best['epoch']}: "
            f"{100 * best['eer']:.2f} %{_interval(best)} — {verdict(v, best)}"
            for v in rows if is_named(v) and v.get("eer") is not None]


def best_marker(run: dict[str, Any]) -> int | str | None:
    """What a validate run points at: averaged weights by name, else an epoch."""
    if run.get("best_checkpoint"):
        return str(run["best_checkpoint"])
    return None if run.get("best_epoch") is None else int(run["best_epoch"])
