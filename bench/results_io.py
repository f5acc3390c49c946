"""Where every benchmark leaves its figures: one JSON file under bench/results/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_results(path: str | Path, result: dict[str, Any]) -> Path:
    """Write ``result`` as indented JSON to ``path`` (its folder made) and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return out
