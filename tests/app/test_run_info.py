"""``i`` on a run: the command that started it (as a shell reads it), where and when it ran, its
folders and the software it ran with, as plain text."""

from __future__ import annotations

import json
import shlex
import sqlite3
from pathlib import Path

from textual.widgets import Static

from app.dialogs.run_info import RunInfoDialog
from app.screens.run_detail import RunDetailScreen
from engine.store import open_store
from engine.version import software, software_text
from tests.app.conftest import make, open_run, showing, wait_for


async def test_i_shows_the_runs_command_process_and_software(workspace: Path) -> None:
    with open_store(workspace / "runs.db", readonly=True) as store:
        (run,) = [r for r in store.runs(kind="train") if r["name"] == "aam-m0.2"]
    # a command holding what a shell or Textual would read otherwise
    command = ["spkemb-engine", "train", "--note", "it's [b]one[/b]", str(workspace / "my exp"), "P"]
    conn = sqlite3.connect(workspace / "runs.db")
    conn.execute("UPDATE runs SET command = ? WHERE id = ?", (json.dumps(command), run["id"]))
    conn.commit()
    conn.close()
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_run(pilot, "aam-m0.2")
        assert isinstance(app.screen, RunDetailScreen)
        await wait_for(pilot, lambda: app.screen.data is not None)
        await pilot.press("i")
        await wait_for(pilot, lambda: showing(app, RunInfoDialog))
        text = str(app.screen.query_one("#info", Static).render())
        assert f"command   {shlex.join(command)}" in text
        assert shlex.split(text.split("command   ", 1)[1].splitlines()[0]) == command  # pasted, it runs that
        assert f"software  {software_text(software())}" in text  # fill_db's runs were recorded here
        assert f"folder    {run['out_dir']}" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))


def test_an_extractions_log_is_the_apply_log_of_its_val_dir(tmp_path: Path) -> None:
    """The TUI writes an extraction's output to VAL_DIR/apply.log; its detail looked in VAL_DIR/apply/3/ and
    said there was no log yet (and `i` showed none), so a failed extraction's log could not be found."""
    from app.views.run_detail_view import log_path
    from app.views.run_info_view import info_lines
    from engine.layout import ValidationDir
    from engine.records import Run

    val = ValidationDir(tmp_path / "exp" / "train" / "P.train" / "validate_equal_error_rate" / "P.test")
    run = Run(id=4, kind="apply", status="failed", out_dir=str(val.apply_root / "3"))
    assert log_path(run) == str(val.apply_log)
    assert f"log       {val.apply_log}" in info_lines(run)
    # a run that recorded its own log keeps it
    assert log_path(Run(id=5, kind="apply", status="failed", out_dir=str(val.apply_root / "3"),
                        log_path=str(tmp_path / "mine.log"))) == str(tmp_path / "mine.log")
