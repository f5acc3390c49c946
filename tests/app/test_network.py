"""The TUI names the network each run trained, and its config form keeps backbone and front end together."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest
from textual.widgets import Select

from app.data.reader import RunsFeed, read_curves, read_detail, read_runs
from app.screens.compare import CompareScreen
from app.screens.configs import ConfigsScreen
from app.views.run_detail_view import summary_lines
from app.views.runs_view import COLUMNS
from app.widgets.plots import LossPlot
from app.widgets.runs_table import RunsTable
from engine.records import ValidationResult
from engine.store import open_store
from tests.app.conftest import NOW, compare_runs, make, open_configs, showing, wait_for

PROTOCOL = "Demo.SpeakerVerification.Voices"
RESNET = {"feature_extraction": {"name": "Fbank", "params": {"num_mel_bins": 80}},
          "architecture": {"name": "ResNet34", "params": {"m_channels": 8}},
          "task": {"name": "AdditiveAngularMarginLoss", "params": {"margin": 0.1}}}
SINC = {"feature_extraction": {"name": "pyannote.audio.features.RawAudio", "params": {"sample_rate": 16000}},
        "architecture": {"name": "pyannote.audio.models.SincTDNN", "params": {}},
        "task": {"name": "AdditiveAngularMarginLoss", "params": {"margin": 0.1}}}


def _fill(path: Path, root: Path, configs: dict[str, object]) -> dict[str, int]:
    """A finished training run per config, with steps and a validate run that scored 2 epochs."""
    ids = {}
    with open_store(path) as store:
        for i, (name, config) in enumerate(configs.items()):
            exp = root / "experiments" / name
            trn = exp / "train" / f"{PROTOCOL}.train"
            run = store.create_run(kind="train", exp_dir=exp, out_dir=trn, protocol=PROTOCOL, subset="train",
                                   config=config, command=["spkemb-engine", "train"], device="cpu",
                                   target_epoch=2, name=name, _at=NOW - 3600 + 60 * i)
            ids[name] = run
            store.add_steps(run, [{"step": s, "epoch": s // 10, "loss": 5.0 - 0.1 * s, "lr": 0.1}
                                  for s in range(20)])
            store.heartbeat(run, epoch=2, step=19)
            store.set_status(run, "completed")
            val = store.create_run(kind="validate", exp_dir=exp, out_dir=trn / "validate", protocol=PROTOCOL,
                                   subset="development", config=config, command=["spkemb-engine", "validate"],
                                   device="cpu", target_epoch=2, parent_id=run, name=f"{name} validate")
            for epoch in (1, 2):
                store.add_validation(val, ValidationResult(epoch=epoch, eer=0.3 - 0.05 * epoch - 0.01 * i,
                                                           eer_low=0.1, eer_high=0.4, mindcf_01=0.9,
                                                           mindcf_005=0.8, threshold=0.5, n_trials=100),
                                     train_run_id=run)
            store.set_status(val, "completed")
    return ids


def test_reader_names_each_runs_network(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    odd = {**SINC, "feature_extraction": {"name": "Fbank"}}  # refused by config check, still named
    ids = _fill(db, tmp_path, {"resnet": RESNET, "sinc": SINC, "odd": odd, "none": {"task": {"name": "Softmax"}}})
    with open_store(db) as store:  # a config that is a JSON string, not an object: no network, no error
        bare = store.create_run(kind="train", exp_dir=tmp_path, out_dir=tmp_path / "t", protocol=PROTOCOL,
                                subset="train", config=None, command=["x"], device="cpu", name="bare")
        store.db.conn.execute("""UPDATE runs SET config = '"ResNet34"' WHERE id = ?""", (bare,))
        store.db.conn.commit()
    want = {"resnet": "ResNet34", "sinc": "SincTDNN", "odd": "SincTDNN+Fbank", "none": "", "bare": ""}
    for runs in (read_runs(db), RunsFeed(db).read()):
        named = {r.name: r.network for r in runs}
        assert {k: named[k] for k in want} == want
        assert named["resnet validate"] == "ResNet34"
    detail = read_detail(db, ids["resnet"], -1)
    assert detail is not None and detail.network == "ResNet34"
    assert "  network ResNet34  " in summary_lines(detail.run, detail, asnorm=False, now=lambda: NOW)[0]
    assert [c.network for c in read_curves(db, [ids["resnet"], ids["sinc"]])] == ["ResNet34", "SincTDNN"]


def mounted(screen: ConfigsScreen) -> bool:
    """Every field of the config form is mounted and shows its value: the keys change before a rebuilt
    form's widgets are there, and a Select (never blank here) has no value until it is mounted."""
    for i in range(len(screen.keys)):
        found, error = screen.query(f"#{screen.fid(i)}"), screen.query(f"#{screen.eid(i)}")
        if not found or not error or not found.first().is_mounted:
            return False
        if isinstance(found.first(), Select) and found.first().value is Select.NULL:
            return False
    return bool(screen.keys)


@pytest.mark.slow(seconds=20)
async def test_choosing_a_filterbank_backbone_switches_the_front_end_to_fbank(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_configs(pilot)
        screen.query_one("#source").value = "template:demo"
        await wait_for(pilot, lambda: "architecture.params.sincnet.stride" in screen.keys)
        await wait_for(pilot, lambda: mounted(screen))
        screen.field("architecture.name").value = "ResNet34"
        await wait_for(pilot, lambda: "architecture.params.m_channels" in screen.keys
                       and "feature_extraction.params.num_mel_bins" in screen.keys)
        await wait_for(pilot, lambda: mounted(screen))
        assert screen.field("feature_extraction.name").value == "Fbank"
        assert screen.field("feature_extraction.params.num_mel_bins").value == "80"
        assert screen.field("feature_extraction.params.sample_rate").value == "16000"
        await wait_for(pilot, lambda: "valid" in str(screen.query_one("#status").render()))
        assert "[red]" not in str(screen.query_one("#status").render())
        # back to the raw waveform by hand: the config error shows under that field at once
        screen.field("feature_extraction.name").value = "RawAudio"
        await wait_for(pilot, lambda: "feature_extraction.params.num_mel_bins" not in screen.keys and mounted(screen)
                       and "reads log-mel filterbanks" in str(screen.field_error("feature_extraction.name")
                                                              .render()))
        await wait_for(pilot, lambda: mounted(screen))
        # and SincTDNN takes the raw waveform back from Fbank
        screen.field("feature_extraction.name").value = "Fbank"
        await wait_for(pilot, lambda: "feature_extraction.params.num_mel_bins" in screen.keys)
        await wait_for(pilot, lambda: mounted(screen))
        screen.field("architecture.name").value = "SincTDNN"
        await wait_for(pilot, lambda: "feature_extraction.params.num_mel_bins" not in screen.keys and mounted(screen)
                       and screen.field("feature_extraction.name").value == "RawAudio")
        await wait_for(pilot, lambda: "architecture.params.tdnn.embedding_dim" in screen.keys)
        await wait_for(pilot, lambda: mounted(screen))
        assert screen.action_save() is not None


#: the resnet34 template's fields set so that one epoch trains in seconds (the rest of the template kept)
TINY_FIELDS = {"architecture.params.m_channels": "4", "architecture.params.embed_dim": "16",
               "feature_extraction.params.num_mel_bins": "16", "task.params.duration": "1.0",
               "task.params.per_fold": "4", "task.params.per_epoch": "0.0002"}


def _trained_epochs(db: Path) -> list[dict]:
    """The train runs of ``db`` that recorded an epoch, with their config."""
    if not db.exists():
        return []
    with open_store(db, readonly=True) as store:
        return [r for r in store.runs(kind="train") if store.epochs(r["id"])]


@pytest.mark.slow(seconds=20)
async def test_tui_launches_a_resnet34_run_from_the_form_and_compare_shows_it_beside_a_sinctdnn_run(
        tmp_path: Path, demo_corpus: Path) -> None:
    """For real: the form's ResNet34 config launched, its engine process trains an epoch into the runs
    database, and Compare draws it beside a SincTDNN run."""
    from app.app import make_app
    from app.screens.launch import LaunchScreen
    from engine.cli import parse_command
    from engine.config import load_config

    db = tmp_path / "runs.db"
    app = make_app(tmp_path, db=db, database=demo_corpus, now=lambda: NOW)
    pid = None
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            screen = await open_configs(pilot)
            screen.query_one("#source").value = "template:resnet34"
            await wait_for(pilot, lambda: "architecture.params.m_channels" in screen.keys and mounted(screen))
            for key, value in TINY_FIELDS.items():
                screen.field(key).value = value
            await wait_for(pilot, lambda: "valid" in str(screen.query_one("#status").render()))
            screen.action_save_launch()
            await wait_for(pilot, lambda: showing(app, LaunchScreen))
            launch = app.screen
            exp = tmp_path / "experiments" / "resnet34"
            await wait_for(pilot, lambda: bool(launch.query("#protocol"))
                           and launch.query_one("#protocol").value == PROTOCOL, timeout=60)
            await wait_for(pilot, lambda: launch.query_one("#exp").value == str(exp.resolve()))
            for widget, value in (("#to", "1"), ("#parallel", "0"), ("#device", "cpu")):
                launch.query_one(widget).value = value
            launch.query_one("#validate").value = False
            cmds = launch.commands()
            assert cmds is not None
            train, validate, _, _ = cmds
            assert train[:3] == [sys.executable, "-m", "engine"] and validate is None
            command, request = parse_command(train[3:])
            assert command == "train" and request.to == 1 and request.protocol == PROTOCOL
            config = load_config(Path(request.exp_dir) / "config.yml")
            assert (config.architecture.name, config.feature_extraction.name) == ("ResNet34", "Fbank")
            assert config.architecture.backbone.m_channels == 4

            await pilot.press("ctrl+l")
            await wait_for(pilot, lambda: app.pending and app.pending[0].pid is not None, timeout=120)
            pid = app.pending[0].pid
            # the engine process records the run and trains its epoch (the app only started it)
            await wait_for(pilot, lambda: _trained_epochs(db), timeout=300)
            (resnet,) = _trained_epochs(db)
            assert resnet["config"]["architecture"]["name"] == "ResNet34" and resnet["pid"] == pid
            await wait_for(pilot, lambda: app.launcher.exited(pid), timeout=120)
            assert open_store(db, readonly=True).run(resnet["id"])["status"] == "completed"

            # beside a SincTDNN run
            _fill(db, tmp_path, {"sinc": SINC})
            table = app.screen.query_one(RunsTable)
            await wait_for(pilot, lambda: table.row_count == 3, timeout=30)
            network = [k for k, _ in COLUMNS].index("network")
            shown = {str(table.get_row_at(i)[1]): str(table.get_row_at(i)[network]) for i in range(table.row_count)}
            assert shown == {resnet["name"]: "ResNet34", "sinc": "SincTDNN", "sinc validate": "SincTDNN"}
            await compare_runs(pilot, (resnet["name"], "sinc"), runs=3)
            assert isinstance(app.screen, CompareScreen)
            loss = app.screen.query_one(LossPlot)
            await wait_for(pilot, lambda: len(loss.series) == 2)
            labels = sorted(s.label.split(" ", 1)[1] for s in loss.series)
            assert labels == sorted([f"{resnet['name']} (ResNet34)", "sinc (SincTDNN)"])
            assert all(s.steps for s in loss.series)  # the launched run's own steps, drawn
            diff = app.screen.query_one("#diff")
            await wait_for(pilot, lambda: diff.row_count >= 1)
            rows = [[str(c) for c in diff.get_row_at(i)] for i in range(diff.row_count)]
            architecture = next(r for r in rows if r[0] == "architecture.name")
            assert set(architecture[1:]) == {"ResNet34", "pyannote.audio.models.SincTDNN"}
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
