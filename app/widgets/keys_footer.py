"""The footer of every screen: ``? Help`` first, and compact, without the palette's hint, under 120 columns.

Textual's footer shows a screen's keys before the application's and cuts off what does not fit:
at 80 columns the Runs screen lost Sort, Filter, Quit and Help. Help comes first because it lists
every key of the screen, those cut off included.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: below this width the keys lose their padding (at 100 columns every key of the Runs screen fits)
COMPACT_BELOW = 120


class KeysFooter(Footer):
    def compose(self) -> ComposeResult:
        widgets = list(super().compose())
        first = [w for w in widgets if isinstance(w, FooterKey) and w.action in ("help", "app.help")]
        yield from first + [w for w in widgets if w not in first]

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < COMPACT_BELOW
        self.compact = narrow
        # the palette's hint is drawn over the last keys (^p still opens it, and Help lists it)
        self.show_command_palette = not narrow
