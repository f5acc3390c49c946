"""The look of the main screens, pinned at 120x36 with fixed data and a fixed clock."""

from __future__ import annotations

import difflib
import html
import pickle
import re
from pathlib import Path

import pytest
from pytest_textual_snapshot import node_to_report_path

from app.screens.det import DetScreen
from app.screens.query import QueryScreen
from app.screens.run_detail import RunDetailScreen
from app.widgets.epoch_table import EpochTable
from app.widgets.runs_table import RunsTable
from tests.app.conftest import (
    columns_sized,
    compare_runs,
    make,
    open_run,
    settled,
    showing,
    wait_for,
    write_random_scores,
)

SIZE = (120, 36)


def _rows(svg: str) -> list[str]:
    """The text of a screenshot, a line per terminal row."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in re.findall(r'<text[^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return ["".join(t for _, t in sorted(row)) for _, row in sorted(rows.items())]


@pytest.fixture
def snap(snap_compare, request):
    """``snap_compare`` that, on a mismatch, says which rows of the screen differ (the HTML report
    it writes stays on the machine that ran it: a CI log shows only this)."""
    def compare(*args, **kwargs) -> bool:
        if snap_compare(*args, **kwargs):
            return True
        _, expected, actual, *_ = pickle.loads(node_to_report_path(request.node).read_bytes())
        diff = difflib.unified_diff(_rows(expected), _rows(actual), "expected", "actual", lineterm="", n=1)
        print("\n".join(diff))
        return False

    return compare


async def _runs_loaded(pilot) -> None:
    table = pilot.app.screen.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == 5)
    await settled(pilot)


def test_runs_screen(workspace: Path, snap) -> None:
    assert snap(make(workspace, refresh_interval=3600), terminal_size=SIZE, run_before=_runs_loaded)


@pytest.mark.slow
def test_run_detail_screen(workspace: Path, snap) -> None:
    async def open_detail(pilot) -> None:
        await _runs_loaded(pilot)
        table = pilot.app.screen.query_one(RunsTable)
        table.move_cursor(row=next(i for i in range(table.row_count) if str(table.get_row_at(i)[1]) == "aam-m0.1"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: showing(pilot.app, RunDetailScreen))
        await wait_for(pilot, lambda: pilot.app.screen.query_one(EpochTable).row_count == 3)
        await wait_for(pilot, lambda: columns_sized(pilot.app.screen.query_one(EpochTable)))
        await settled(pilot)

    assert snap(make(workspace, refresh_interval=3600), terminal_size=SIZE, run_before=open_detail)


@pytest.mark.slow
def test_query_screen(workspace: Path, snap) -> None:
    async def run_query(pilot) -> None:
        await _runs_loaded(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: showing(pilot.app, QueryScreen))
        pilot.app.screen.query_one("#examples").value = "best EER per run"
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#result").row_count == 2)
        await wait_for(pilot, lambda: columns_sized(pilot.app.screen.query_one("#result")))
        pilot.app.screen.query_one("#result").focus()
        await settled(pilot)

    assert snap(make(workspace, refresh_interval=3600), terminal_size=SIZE, run_before=run_query)


@pytest.mark.slow
def test_configs_screen(workspace: Path, snap) -> None:
    async def open_configs(pilot) -> None:
        await _runs_loaded(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: "task.params.margin" in getattr(pilot.app.screen, "keys", []))
        # the tutorial's config is shipped verbatim, so this picture does not move with the demo's
        pilot.app.screen.query_one("#source").value = "template:tutorial"
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#exp-dir").value == "experiments/tutorial")
        await settled(pilot)

    assert snap(make(workspace, refresh_interval=3600), terminal_size=SIZE, run_before=open_configs)


@pytest.mark.slow
def test_compare_screen(workspace: Path, snap) -> None:
    async def compare(pilot) -> None:
        await _runs_loaded(pilot)
        await compare_runs(pilot, ("aam-m0.2", "aam-m0.1"))
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#diff").row_count == 1)
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#pivot").row_count == 2)
        for table in ("#diff", "#pivot"):
            await wait_for(pilot, lambda t=table: columns_sized(pilot.app.screen.query_one(t)))
        await settled(pilot)

    assert snap(make(workspace, refresh_interval=3600), terminal_size=SIZE, run_before=compare)


@pytest.mark.slow
def test_det_screen(workspace: Path, snap) -> None:
    val_dir = (workspace / "experiments" / "aam-m0.2" / "train" / "Demo.SpeakerVerification.Voices.train"
               / "validate_equal_error_rate" / "Demo.SpeakerVerification.Voices.development")
    write_random_scores(val_dir, 3, seed=3)
    write_random_scores(val_dir, 2, seed=2)

    async def open_det(pilot) -> None:
        await open_run(pilot, "aam-m0.2")
        epochs = pilot.app.screen.query_one(EpochTable)
        await wait_for(pilot, lambda: epochs.row_count == 3)
        epochs.move_cursor(row=0)  # epoch 3, beside the picked epoch 2
        await pilot.press("d")
        await wait_for(pilot, lambda: showing(pilot.app, DetScreen) and len(pilot.app.screen.shown) == 2)
        await settled(pilot)

    assert snap(make(workspace, refresh_interval=3600), terminal_size=SIZE, run_before=open_det)
