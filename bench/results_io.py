"""Where every benchmark leaves its figures: one JSON file under bench/results/."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_results(path: str | Path, result: dict[str, Any]) -> Path:
    """Write ``result`` as indented JSON to ``path`` (its folder made) and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return out


def against(ours: float, baseline: Callable[[], float] | None) -> tuple[dict[str, float], str]:
    """Seconds of this checkout and, when ``baseline`` measures another in the same run, theirs and the
    ratio: the result's row and its words (``0.063 s, baseline 11.286 s (ratio 0.0056)``)."""
    row, said = {"seconds": round(ours, 5)}, f"{ours:.3f} s"
    if baseline is not None:
        theirs = baseline()
        row.update(baseline_seconds=round(theirs, 5), ratio=round(ours / theirs, 4))
        said += f", baseline {theirs:.3f} s (ratio {ours / theirs:.4f})"
    return row, said
