"""The TUI at a lab's size: ten thousand runs in the table, a run of a million steps opened."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.screens.run_detail import RunDetailScreen
from app.widgets.plots import LossPlot
from app.widgets.runs_table import RunsTable
from engine.store import open_store
from tests.app.conftest import make, showing, wait_for

RUNS = 10_000


def fill(path: Path, runs: int, long_steps: int = 0) -> None:
    """``runs`` finished training runs (loss falling with the id), written as the bench does;
    with ``long_steps``, run 1 has that many step rows."""
    with open_store(path) as store:
        conn = store.db.conn
        now = time.time()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO runs (id, name, kind, status, exp_dir, out_dir, protocol, subset, config, command, "
            "device, started_at, ended_at, epoch, target_epoch, step) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(i, f"run-{i}", "train", "completed", f"/exp/{i}", f"/exp/{i}/train/P.train", "P", "train", "{}", "[]",
              "cpu", now - 3600, now, 3, 3, 10) for i in range(1, runs + 1)])
        conn.executemany("INSERT INTO train_steps (run_id, step, epoch, loss, time) VALUES (?,?,?,?,?)",
                         [(i, 10, 3, 1.0 + i / runs, now) for i in range(1, runs + 1)])
        conn.executemany("INSERT INTO train_steps (run_id, step, epoch, loss, time) VALUES (?,?,?,?,?)",
                         [(1, s, s // 1000, 5.0 / (1 + s), now) for s in range(11, 11 + long_steps)])
        conn.execute("COMMIT")


@pytest.mark.slow
async def test_ten_thousand_runs_sort_filter_and_scroll_to_the_last(tmp_path: Path) -> None:
    fill(tmp_path / "runs.db", RUNS)
    app = make(tmp_path, refresh_interval=3600)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == RUNS, timeout=60)
        assert table.get_row_at(0)[1] == f"run-{RUNS}"  # newest first
        await pilot.press("end")
        assert table.current_run_id == 1
        # the last row is on screen, under a header that stayed on top
        lines = [str(table.render_line(y).text) for y in range(table.size.height)]
        assert lines[0].split()[:2] == ["#", "▼"] and "run-1 " in lines[-1]
        table.sort_by("loss")  # the lowest loss first: run 1
        assert [table.get_row_at(i)[1] for i in range(3)] == ["run-1", "run-2", "run-3"]
        assert table.current_run_id == 1 and table.cursor_row == 0  # the cursor kept its run
        await pilot.press("pagedown", "down")
        assert table.cursor_row == table.size.height - 2 + 1
        app.screen.query_one("#filter").value = "run-9999"
        await wait_for(pilot, lambda: table.row_count == 1)
        assert table.get_row_at(0)[1] == "run-9999"


@pytest.mark.slow
async def test_a_click_on_a_header_sorts_and_enter_opens_the_run(tmp_path: Path) -> None:
    fill(tmp_path / "runs.db", 30)
    app = make(tmp_path, refresh_interval=3600)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 30)
        await pilot.click(RunsTable, offset=(2, 0))  # the "#" header: the same column, reversed
        assert table.sort_column == "id" and [table.get_row_at(i)[0] for i in range(2)] == ["1", "2"]
        assert table.current_run_id == 30  # the cursor kept its run, now the last row
        await pilot.press("home", "down", "space")
        assert table.marked == {2} and table.get_row_at(1)[0] == "✓ 2"
        await pilot.press("enter")
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))
        assert app.screen.run_id == 2


@pytest.mark.slow
async def test_a_run_of_a_million_steps_is_read_as_evenly_spaced_steps(tmp_path: Path) -> None:
    fill(tmp_path / "runs.db", 1, long_steps=1_000_000)
    with open_store(tmp_path / "runs.db") as store:
        picked = store.steps(1, -1, at_most=2000)
        steps = [r["step"] for r in picked]
        assert 1900 <= len(steps) <= 2002 and steps == sorted(steps) and len(set(steps)) == len(steps)
        assert steps[0] == 10 and steps[-1] == 1_000_010  # the first and the last step are read
        gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
        assert max(gaps) <= 2 * min(gaps)  # evenly spaced
        assert store.steps(1, 1_000_005, at_most=2000) == store.steps(1, 1_000_005)  # a few after: every one
    app = make(tmp_path, refresh_interval=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        app.action_open_run(1)
        await wait_for(pilot, lambda: showing(app, RunDetailScreen) and bool(app.screen.steps), timeout=30)
        assert len(app.screen.steps) == len(picked) and app.screen.query_one(LossPlot).series


def test_the_first_page_is_the_newest_runs(tmp_path: Path) -> None:
    from app.data.reader import read_runs

    fill(tmp_path / "runs.db", 300)
    first = read_runs(tmp_path / "runs.db", newest=100)
    assert [r.id for r in first] == list(range(300, 200, -1))
    assert len(read_runs(tmp_path / "runs.db")) == 300
