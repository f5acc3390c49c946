"""A config key as a form's label, wrapped after its dots rather than inside a name."""

from __future__ import annotations

from textual.app import RenderResult
from textual.widgets import Label


def dotted_lines(key: str, width: int) -> list[str]:
    """``key`` in lines of at most ``width`` characters, each break after a dot; a part longer than
    ``width`` on its own is cut where it must be."""
    if width < 1:
        return [key]
    parts = [part + "." for part in key.split(".")]
    parts[-1] = parts[-1][:-1]
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
        while len(lines[-1]) > width:  # a single name wider than the label
            lines[-1:] = [lines[-1][:width], lines[-1][width:]]
    return lines


class KeyLabel(Label):
    """A dotted config key (``feature_extraction.params.sample_rate``) that wraps as
    ``feature_extraction.params.`` / ``sample_rate`` in a narrow form, where a plain label cut it as
    ``…params.samp`` / ``le_rate``."""

    def __init__(self, key: str, **kwargs) -> None:
        super().__init__(key, markup=False, **kwargs)
        self.key = key

    def render(self) -> RenderResult:
        return "\n".join(dotted_lines(self.key, self.content_size.width))
