"""spkemb's headless engine. Importing it is cheap: no torch until a command needs it."""

from __future__ import annotations

from typing import Any

from engine.version import VERSION as __version__

__all__ = ["Precomputed", "__version__"]


def __getattr__(name: str) -> Any:
    # lazy, so that `from engine import Precomputed` reads embeddings without torch (PEP 562)
    if name == "Precomputed":
        from engine.extraction.precomputed import Precomputed
        return Precomputed
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
