"""The TUI names the network each run trained, and its config form keeps backbone and front end together."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from app.data.reader import RunsFeed, read_curves, read_detail, read_runs
from app.screens.compare import CompareScreen
from app.screens.configs import ConfigsScreen
from app.views.run_detail_view import summary_lines
from app.views.runs_view import COLUMNS
from app.widgets.plots import EerPlot, LossPlot
from app.widgets.runs_table import RunsTable
from engine.records import ValidationResult
from engine.store import open_store
from tests.app.conftest import NOW, compare_runs, make, wait_for

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


async def test_choosing_a_filterbank_backbone_switches_the_front_end_to_fbank(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigsScreen))
        screen = app.screen
        screen.query_one("#source").value = "template:demo"
        await wait_for(pilot, lambda: "architecture.params.sincnet.stride" in screen.keys)
        await pilot.pause(0.3)
        screen.field("architecture.name").value = "ResNet34"
        await wait_for(pilot, lambda: "architecture.params.m_channels" in screen.keys
                       and "feature_extraction.params.num_mel_bins" in screen.keys)
        await pilot.pause(0.3)  # the rebuilt form mounted
        assert screen.field("feature_extraction.name").value == "Fbank"
        assert screen.field("feature_extraction.params.num_mel_bins").value == "80"
        assert screen.field("feature_extraction.params.sample_rate").value == "16000"
        await wait_for(pilot, lambda: "valid" in str(screen.query_one("#status").render()))
        assert "[red]" not in str(screen.query_one("#status").render())
        # back to the raw waveform by hand: the config error shows under that field at once
        screen.field("feature_extraction.name").value = "RawAudio"
        await wait_for(pilot, lambda: "feature_extraction.params.num_mel_bins" not in screen.keys
                       and "reads log-mel filterbanks" in str(screen.field_error("feature_extraction.name")
                                                              .render()))
        await pilot.pause(0.3)
        # and SincTDNN takes the raw waveform back from Fbank
        screen.field("feature_extraction.name").value = "Fbank"
        await wait_for(pilot, lambda: "feature_extraction.params.num_mel_bins" in screen.keys)
        await pilot.pause(0.3)
        screen.field("architecture.name").value = "SincTDNN"
        await wait_for(pilot, lambda: "feature_extraction.params.num_mel_bins" not in screen.keys
                       and screen.field("feature_extraction.name").value == "RawAudio")
        await wait_for(pilot, lambda: "architecture.params.tdnn.embedding_dim" in screen.keys)
        await pilot.pause(0.2)
        assert screen.action_save() is not None


async def test_tui_launches_a_resnet34_run_from_the_form_and_compare_shows_it_beside_a_sinctdnn_run(
        tmp_path: Path, demo_corpus: Path) -> None:
    from app.app import make_app
    from app.screens.launch import LaunchScreen
    from engine.cli import parse_command
    from engine.config import load_config

    app = make_app(tmp_path, db=tmp_path / "runs.db", database=demo_corpus, now=lambda: NOW)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigsScreen))
        screen = app.screen
        screen.query_one("#source").value = "template:resnet34"
        await wait_for(pilot, lambda: "architecture.params.m_channels" in screen.keys)
        await pilot.pause(0.2)
        screen.action_save_launch()
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        launch = app.screen
        exp = tmp_path / "experiments" / "resnet34"
        await wait_for(pilot, lambda: bool(launch.query("#protocol"))
                       and launch.query_one("#protocol").value == PROTOCOL, timeout=60)
        await wait_for(pilot, lambda: launch.query_one("#exp").value == str(exp.resolve()))
        launch.query_one("#to").value = "1"
        launch.query_one("#device").value = "cpu"
        cmds = launch.commands()
        assert cmds is not None
        train, validate, _, _ = cmds
        assert train[:3] == [sys.executable, "-m", "engine"]
        command, request = parse_command(train[3:])
        assert command == "train" and request.to == 1 and request.protocol == PROTOCOL
        config = load_config(Path(request.exp_dir) / "config.yml")
        assert (config.architecture.name, config.feature_extraction.name) == ("ResNet34", "Fbank")
        if validate is not None:
            assert parse_command(validate[3:])[0] == "validate"
        await pilot.press("escape")

        # the runs that launch would record (its config as saved), beside a SincTDNN run
        saved = yaml.safe_load((exp / "config.yml").read_text(encoding="utf-8"))
        _fill(tmp_path / "runs.db", tmp_path, {"resnet": saved, "sinc": SINC})
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        network = [k for k, _ in COLUMNS].index("network")
        shown = {str(table.get_row_at(i)[1]): str(table.get_row_at(i)[network]) for i in range(table.row_count)}
        assert shown == {"resnet": "ResNet34", "sinc": "SincTDNN", "resnet validate": "ResNet34",
                         "sinc validate": "SincTDNN"}
        await compare_runs(pilot, ("resnet", "sinc"), runs=4)
        assert isinstance(app.screen, CompareScreen)
        loss, eer = app.screen.query_one(LossPlot), app.screen.query_one(EerPlot)
        await wait_for(pilot, lambda: len(loss.series) == 2)
        labels = sorted(s.label for s in loss.series)
        assert [label.split(" ", 1)[1] for label in labels] == ["resnet (ResNet34)", "sinc (SincTDNN)"]
        assert sorted(s.label for s in eer.series) == labels
        diff = app.screen.query_one("#diff")
        await wait_for(pilot, lambda: diff.row_count >= 1)
        rows = [[str(c) for c in diff.get_row_at(i)] for i in range(diff.row_count)]
        architecture = next(r for r in rows if r[0] == "architecture.name")
        assert set(architecture[1:]) == {"ResNet34", "pyannote.audio.models.SincTDNN"}
