"""The whole workflow from the TUI with real engine subprocesses on the demo corpus (slow)."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest
import yaml

from app.dialogs import ConfirmDialog
from app.screens.launch import LaunchScreen
from app.screens.run_detail import RunDetailScreen
from app.widgets.epoch_table import EpochTable
from app.widgets.plots import EerPlot, LossPlot
from app.widgets.runs_table import RunsTable
from engine.store import open_store
from engine.store.liveness import LOST_AFTER, is_alive
from tests.app.conftest import runs_cell, showing, wait_for

pytestmark = pytest.mark.slow

PROTOCOL = "Demo.SpeakerVerification.Voices"


def _app(root: Path, db: Path, database: Path):
    from app.app import make_app

    return make_app(root, db=db, database=database, refresh_interval=0.5)


def _runs(db: Path, **where) -> list[dict]:
    if not db.exists():
        return []
    with open_store(db, readonly=True) as store:
        return store.find_runs(**where)


async def _launch(pilot, exp: Path, to: int, validate: bool) -> None:
    await pilot.press("l")
    await wait_for(pilot, lambda: showing(pilot.app, LaunchScreen))
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.query_one("#protocol").value == PROTOCOL, timeout=60)
    await wait_for(pilot, lambda: str(exp.resolve()) in [v for _, v in screen.query_one("#exp")._options])
    screen.query_one("#exp").value = str(exp.resolve())
    screen.query_one("#to").value = str(to)
    screen.query_one("#parallel").value = "0"
    screen.query_one("#device").value = "cpu"
    screen.query_one("#validate").value = validate
    screen.query_one("#val-subset").value = "development"
    screen.action_launch()
    await wait_for(pilot, lambda: not isinstance(pilot.app.screen, LaunchScreen))


@pytest.mark.slow(seconds=55)
async def test_launch_watch_stop_resume_pick_extract(tmp_path: Path, demo_corpus: Path, tiny_exp: Path,
                                                    db_path: Path) -> None:
    # epochs of 32 batches (a few seconds), so that the stop below lands while training runs (with
    # the tiny config's three batches, all four epochs can be over before the first EER shows)
    config = tiny_exp / "config.yml"
    config.write_text(config.read_text().replace("per_epoch: 0.0002", "per_epoch: 0.003"))
    app = _app(tmp_path, db_path, demo_corpus)
    async with app.run_test(size=(140, 44)) as pilot:
        await _launch(pilot, tiny_exp, to=4, validate=True)
        table = app.screen.query_one(RunsTable)
        # the launch shows at once, before the engine has even recorded its run
        await wait_for(pilot, lambda: table.row_count >= 1)
        await wait_for(pilot, lambda: _runs(db_path, kind="train"), timeout=120)
        train = _runs(db_path, kind="train")[0]
        app.action_open_run(int(train["id"]))
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))
        detail = app.screen
        await wait_for(pilot, lambda: detail.is_mounted and detail.query(LossPlot))
        loss = detail.query_one(LossPlot)
        await wait_for(pilot, lambda: loss.series and len(loss.series[0].steps) > 0, timeout=300)
        first = len(loss.series[0].steps)
        await wait_for(pilot, lambda: len(loss.series[0].steps) > first, timeout=300)
        await wait_for(pilot, lambda: detail.query_one(EerPlot).series
                       and detail.query_one(EerPlot).series[0].validations, timeout=300)

        # x asks first (a key pressed by mistake must not end the run): no leaves it running
        await pilot.press("x")
        await wait_for(pilot, lambda: showing(app, ConfirmDialog))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is detail)
        assert _runs(db_path, kind="train")[-1]["status"] == "running"
        await pilot.press("x")
        await wait_for(pilot, lambda: showing(app, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: _runs(db_path, kind="train")[-1]["status"] == "stopped", timeout=120)
        await wait_for(pilot, lambda: detail.data.train.status == "stopped", timeout=30)
        # its validation ends too, once it has scored what training left
        await wait_for(pilot, lambda: all(v["status"] != "running" for v in _runs(db_path, kind="validate")),
                       timeout=300)
        await wait_for(pilot, lambda: all(v.status != "running" for v in detail.data.validators), timeout=30)
        await pilot.press("r")
        await wait_for(pilot, lambda: any(r["status"] in ("running", "completed")
                                          for r in _runs(db_path, kind="train")), timeout=120)
        await wait_for(pilot, lambda: any(r["status"] == "completed" for r in _runs(db_path, kind="train")),
                       timeout=400)
        await wait_for(pilot, lambda: detail.query_one(EpochTable).row_count >= 2, timeout=60)

        # the resume started the validation beside it again, in the same VAL_DIR; it ends with training
        await wait_for(pilot, lambda: len(_runs(db_path, kind="validate")) == 2
                       and all(v["status"] == "completed" for v in _runs(db_path, kind="validate")), timeout=400)
        validators = _runs(db_path, kind="validate")
        assert validators[0]["out_dir"] == validators[1]["out_dir"]
        val_dir = Path(validators[0]["out_dir"])
        with open_store(db_path, readonly=True) as store:
            assert {v["epoch"] for v in store.validations(validators[0]["id"])} == {0, 1, 2, 3, 4}
        # the screen shows the last validations one refresh after the database has them
        await wait_for(pilot, lambda: {0, 1, 2, 3, 4} <= {v.epoch for v in detail.data.validations},
                       timeout=30)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.query("#epoch"))
        app.screen.query_one("#epoch").value = "1"
        await pilot.click("#ok")
        params = val_dir / "params.yml"
        await wait_for(pilot, lambda: params.exists() and yaml.safe_load(params.read_text())["epoch"] == 1,
                       timeout=120)

        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query("#protocol")
                       and app.screen.query_one("#protocol").value == "Demo.SpeakerDiarization.Meetings", timeout=60)
        await pilot.click("#ok")
        await wait_for(pilot, lambda: any(r["status"] == "completed" for r in _runs(db_path, kind="apply")),
                       timeout=400)
        assert list((val_dir / "apply").rglob("*.npy"))
        await wait_for(pilot, lambda: "completed" in str(detail.query_one("#extractions").render()), timeout=30)


async def test_reopen_finds_running_run_and_sigkill_turns_lost(tmp_path: Path, demo_corpus: Path,
                                                              tiny_exp: Path, db_path: Path) -> None:
    app = _app(tmp_path, db_path, demo_corpus)
    async with app.run_test(size=(140, 44)) as pilot:
        await _launch(pilot, tiny_exp, to=1000, validate=False)
        await wait_for(pilot, lambda: _runs(db_path, kind="train"), timeout=120)
    run = _runs(db_path, kind="train")[0]
    os.kill(int(run["pid"]), 0)  # closing the TUI left the training running

    app = _app(tmp_path, db_path, demo_corpus)
    async with app.run_test(size=(140, 44)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1 and runs_cell(table, 0, "status") == "running")
        os.kill(int(run["pid"]), signal.SIGKILL)
        await wait_for(pilot, lambda: is_alive(run["host"], run["pid"], run["pid_start"]) is False)
        await pilot.pause(2.0)  # four refreshes: a gone pid alone, with a fresh heartbeat, is not lost
        assert runs_cell(table, 0, "status") == "running"
        # lost once the heartbeat is three intervals old and the pid is gone: the intervals pass
        # in the file, as a reader finds them after that long
        with sqlite3.connect(db_path) as conn:
            conn.execute("UPDATE runs SET heartbeat_at = heartbeat_at - ?", (LOST_AFTER + 1,))
        conn.close()
        await wait_for(pilot, lambda: runs_cell(table, 0, "status") == "lost", timeout=60)
