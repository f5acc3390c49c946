"""A checkbox whose state reads without colour: a tick when on, blank when off."""

from __future__ import annotations

from textual.widgets import Checkbox


class TickBox(Checkbox):
    """Textual's checkbox draws the same ``X`` in both states and tells them apart by colour alone."""

    @property
    def BUTTON_INNER(self) -> str:  # upper case: the name Textual's ToggleButton reads
        return "✓" if self.value else " "
