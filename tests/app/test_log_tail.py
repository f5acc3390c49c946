"""The log panel follows its file: a new line is in sight, until the reader scrolls away."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult

from app.widgets.log_tail import LogTail
from tests.app.conftest import wait_for


class Host(App):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield LogTail(self.path, interval=0.05)


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.write("".join(line + "\n" for line in lines))


def last_shown(log: LogTail) -> int:
    """The index of the last line in sight."""
    return log.scroll_offset.y + log.scrollable_content_region.height - 1


async def test_a_line_wider_than_the_panel_does_not_stop_the_following(tmp_path: Path) -> None:
    """A progress line wider than the panel brings a horizontal scrollbar, which takes a row from the
    view: the newest line stays in sight all the same."""
    path = tmp_path / "train.log"
    append(path, *(f"line {i}" for i in range(10)))
    app = Host(path)
    async with app.run_test(size=(80, 6)) as pilot:
        log = app.query_one(LogTail)
        await wait_for(pilot, lambda: log.line_count == 10)
        await pilot.pause()
        assert last_shown(log) == 9
        append(path, "train: epoch 1 " + "x" * 150)
        await wait_for(pilot, lambda: log.line_count == 11)
        await pilot.pause()
        append(path, "line 11", "line 12")
        await wait_for(pilot, lambda: log.line_count == 13)
        await pilot.pause()
        assert last_shown(log) == 12, (log.scroll_offset, log.max_scroll_y)

        # the reader scrolls up: the panel stays where they are while lines come
        log.scroll_to(y=0, animate=False, immediate=True)
        append(path, "line 13")
        await wait_for(pilot, lambda: log.line_count == 14)
        await pilot.pause()
        assert log.scroll_offset.y == 0


async def test_the_following_holds_through_a_resize_to_a_shorter_panel(tmp_path: Path) -> None:
    """At the end of a 40-row panel, a resize to 24 rows left the view 10 lines above the end; the
    lines written next did not scroll it (only a view at the end follows): the panel showed the run's
    progress of minutes before, not its end."""
    path = tmp_path / "train.log"
    append(path, *(f"line {i}" for i in range(60)))
    app = Host(path)
    async with app.run_test(size=(80, 40)) as pilot:
        log = app.query_one(LogTail)
        await wait_for(pilot, lambda: log.line_count == 60)
        await pilot.pause()
        assert last_shown(log) == 59
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        append(path, "train: run #4 completed")
        await wait_for(pilot, lambda: log.line_count == 61)
        await pilot.pause()
        assert last_shown(log) == 60, (log.scroll_offset, log.max_scroll_y)
