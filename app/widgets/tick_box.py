"""A checkbox whose state reads without colour: a tick when on, blank when off."""

from __future__ import annotations

from textual.widgets import Checkbox


class TickBox(Checkbox):
    """Textual's checkbox draws the same ``X`` in both states and tells them apart by colour alone."""

    # upper case: the name Textual's ToggleButton reads; it types it as a writable class attribute,
    # which a read-only property cannot override for mypy, though reading it works the same
    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "✓" if self.value else " "
