"""The log panel follows its file: a new line is in sight, until the reader scrolls away."""

from __future__ import annotations

from contextlib import asynccontextmanager
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


async def appended(pilot, log: LogTail, path: Path, *lines: str) -> None:
    """Append ``lines`` to ``path`` and wait until the panel has read and drawn them."""
    count = log.line_count + len(lines)
    append(path, *lines)
    await wait_for(pilot, lambda: log.line_count == count)
    await pilot.pause()


@asynccontextmanager
async def following(tmp_path: Path, size: tuple[int, int], lines: int):
    """A panel of ``size`` following a log of ``lines`` lines, at its end: (pilot, panel, log path)."""
    path = tmp_path / "train.log"
    path.touch()
    app = Host(path)
    async with app.run_test(size=size) as pilot:
        log = app.query_one(LogTail)
        await appended(pilot, log, path, *(f"line {i}" for i in range(lines)))
        assert last_shown(log) == lines - 1
        yield pilot, log, path


def last_shown(log: LogTail) -> int:
    """The index of the last line in sight."""
    return log.scroll_offset.y + log.scrollable_content_region.height - 1


async def test_a_line_wider_than_the_panel_does_not_stop_the_following(tmp_path: Path) -> None:
    """A progress line wider than the panel brings a horizontal scrollbar, which takes a row from the
    view: the newest line stays in sight all the same."""
    async with following(tmp_path, (80, 6), 10) as (pilot, log, path):
        await appended(pilot, log, path, "train: epoch 1 " + "x" * 150)
        await appended(pilot, log, path, "line 11", "line 12")
        assert last_shown(log) == 12, (log.scroll_offset, log.max_scroll_y)

        # the reader scrolls up: the panel stays where they are while lines come
        log.scroll_to(y=0, animate=False, immediate=True)
        await appended(pilot, log, path, "line 13")
        assert log.scroll_offset.y == 0


async def test_the_following_holds_through_a_resize_to_a_shorter_panel(tmp_path: Path) -> None:
    """At the end of a 40-row panel, a resize to 24 rows left the view 10 lines above the end; the
    lines written next did not scroll it (only a view at the end follows): the panel showed the run's
    progress of minutes before, not its end."""
    async with following(tmp_path, (80, 40), 60) as (pilot, log, path):
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await appended(pilot, log, path, "train: run #4 completed")
        assert last_shown(log) == 60, (log.scroll_offset, log.max_scroll_y)
