"""The TUI on a runs database on read-only media: runs listed, queries answered, no file left."""

from __future__ import annotations

import pytest

from app.dialogs import ErrorDialog
from app.screens.query import QueryScreen
from app.widgets.runs_table import RunsTable
from tests.app.conftest import fill_db, make, showing, wait_for
from tests.engine.read_only import Media, files, media  # noqa: F401 - fixture


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_the_tui_reads_a_database_on_read_only_media(
        media: Media, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811 - a fixture imported above
    root = media.folder
    monkeypatch.chdir(root)
    monkeypatch.delenv("SPKEMB_DB", raising=False)
    fill_db(root / "runs.db", root)
    media.make_read_only()
    before = files(root)
    app = make(root)
    async with app.run_test(size=(140, 36)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 5, timeout=30)
        await pilot.pause(0.5)
        assert not isinstance(app.screen, ErrorDialog)  # no "Runs database unreadable"
        await pilot.press("s")
        await wait_for(pilot, lambda: showing(app, QueryScreen))
        app.screen.query_one("#examples").value = "best EER per run"
        await wait_for(pilot, lambda: app.screen.query_one("#result").row_count == 2, timeout=30)
    assert files(root) == before  # no -wal, no -shm
