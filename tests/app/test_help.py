"""`?` lists the keys of the screen it is pressed on; the palette starts with the app's own commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable

from app.dialogs import HelpScreen
from app.screens.runs import RunsScreen
from tests.app.conftest import make, open_run, showing, wait_for


@pytest.mark.slow
async def test_question_mark_lists_every_key_of_the_screen(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: showing(app, RunsScreen))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: showing(app, HelpScreen))
        table = app.screen.query_one(DataTable)
        rows = {tuple(table.get_row_at(i)) for i in range(table.row_count)}
        assert ("n", "Configs") in rows and ("x", "Stop run") in rows and ("/", "Filter") in rows
        order = [tuple(table.get_row_at(i)) for i in range(table.row_count)]
        assert order.index(("n", "Configs")) < order.index(("↑", "Cursor up"))  # the screen's keys first
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: showing(app, RunsScreen))
        await open_run(pilot, "aam-m0.2")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: showing(app, HelpScreen))
        assert str(app.screen.query_one("#title").render()) == "Keys of Run detail"
        # the footer's word for a key (Verify), said in full (so that at 80 columns more keys show)
        table = app.screen.query_one(DataTable)
        rows = {tuple(table.get_row_at(i)) for i in range(table.row_count)}
        assert ("s", "Verify recordings") in rows and ("C", "Clean checkpoints") in rows
        await pilot.press("escape")
        await wait_for(pilot, lambda: not showing(app, HelpScreen))
        footer = {key.description for key in app.screen.query("FooterKey")}
        assert {"Verify", "Clean"} <= footer and "Verify recordings" not in footer


@pytest.mark.slow
async def test_at_80x24_every_key_of_the_help_can_be_scrolled_to(workspace: Path) -> None:
    """The key table was cut by its box: 14 of the Runs screen's 30 keys showed, and ↓ moved the
    cursor out of sight without scrolling (the run detail's `d`, `a`, `C`, `s` were nowhere)."""
    app = make(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_run(pilot, "aam-m0.2")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: showing(app, HelpScreen))
        table = app.screen.query_one(DataTable)
        box = app.screen.query_one("Vertical")
        await wait_for(pilot, lambda: table.row_count > table.size.height > 3)  # more keys than rows: it scrolls
        assert table.region.bottom <= box.region.bottom and str(app.screen.query_one("#hint").render()).startswith(
            "ctrl+p: every command")
        for _ in range(table.row_count):
            await pilot.press("down")
        await wait_for(pilot, lambda: table.cursor_row == table.row_count - 1 and table.scroll_y == table.max_scroll_y
                       > 0)
        assert app.screen.query_one("#hint").region.bottom <= box.region.bottom  # the hint below it, in sight


async def test_footer_shows_quit_once(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(200, 40)) as pilot:
        await wait_for(pilot, lambda: showing(app, RunsScreen))
        shown = [b.binding.description for b in app.screen.active_bindings.values() if b.binding.show]
        assert shown.count("Quit") == 1


async def test_palette_starts_with_the_app_commands(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: showing(app, RunsScreen))
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: showing(app, CommandPalette))
        commands = app.screen.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count >= 7)
        first = [str(commands.get_option_at_index(i).prompt).split("\n")[0] for i in range(7)]
        assert [line.split()[0] for line in first] == ["Runs", "Configs", "Launch", "Query", "Compare", "Sweeps",
                                                       "Help"]


@pytest.mark.slow
async def test_at_80_columns_the_footer_keeps_help_in_sight_on_every_screen(workspace: Path) -> None:
    """Textual's footer put the app's `? Help` last: at 80 columns it was cut off, with Sort, Filter and Quit."""
    from textual.widgets._footer import FooterKey

    def shown() -> list[str]:
        """The keys drawn whole: inside the screen, and left of the palette's hint (drawn over the last keys)."""
        keys = [k for k in app.screen.query(FooterKey) if k.region.width]
        edge = min([app.screen.size.width] + [k.region.x for k in keys if k.description == "palette"])
        return [k.description for k in keys if k.region.right <= edge]

    app = make(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: showing(app, RunsScreen))
        await wait_for(pilot, lambda: shown()[:1] == ["Help"])
        assert {"Configs", "Launch", "Stop run", "Sort"} <= set(shown())  # compact: eight keys more fit
        await open_run(pilot, "aam-m0.2")
        await wait_for(pilot, lambda: shown()[:1] == ["Help"])
