"""Placeholder: the fast reader of database.yml protocols (see list_fast)."""

from __future__ import annotations

from collections.abc import Callable

from engine.data.cache_key import SubsetSource
from engine.data.table import Listed


def list_fast(source: SubsetSource, audio_templates: list[str], advance: Callable[[int], None]) -> Listed | None:
    return None
