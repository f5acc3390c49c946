"""A checkbox whose state reads without colour: a tick when on, blank when off."""

from __future__ import annotations

from textual.widgets import Checkbox


class TickBox(Checkbox):
    """Textual's checkbox draws the same ``X`` in both states and tells them apart by colour alone."""

    # upper case: the name Textual's ToggleButton reads
    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # Textual declares a writable str; it is only read
        return "✓" if self.value else " "
