"""A typed request back to its command line: ``parse_command(to_argv(request))`` is the request again."""

from __future__ import annotations

import dataclasses

import pytest

from engine import requests as r
from engine.cli import REQUESTS, parse_command, to_argv

#: every command, each field of its request away from its default in at least one request
#: (``average`` takes --last or --top, never both); folders named like options ("-x")
EXAMPLES: list[tuple[str, r.Request]] = [
    ("train", r.TrainRequest(
        exp_dir="-exp", protocol="Demo.SpeakerVerification.Voices", subset="development", to=7, parallel=0,
        device="cuda:1", seed=3, group="resnet34-lm", tag=("baseline", "-x"), note="a b -c", resume=True,
        strict=True, log_every=0.25, events=True, init_from="a b/0004.pt",
        init_classifier=True, trust_checkpoint=True, db="runs.db", database="-db.yml", reindex=True)),
    ("sbatch", r.SbatchRequest(
        exp_dir="e", protocol="P", subset="s", to=2, parallel=5, device="cuda", seed=1, group="g", tag=("t",),
        note="n", resume=True, strict=True,
        log_every=9.0, events=True, init_from="c.pt", init_classifier=True, trust_checkpoint=True, db="d",
        database="y", nodes=2, gpus_per_node=4, cpus_per_task=3, time="1:00:00", partition="gpu", output="-job.sh")),
    ("validate", r.ValidateRequest(
        trn_dir="t", protocol="P", subset="development", from_epoch=2, to=9, every=3, chronological=True,
        whole_file=True, rescore=True, score_norm="asnorm", cohort_size=50, cohort_files=2, calibration="train",
        device="cuda:0",
        batch=8, poll=0.5, trust_checkpoint=True, db="d", database="y")),
    ("apply", r.ApplyRequest(
        val_dir="v", protocol="P", step=0.5, subset="train", epoch="avg-top5", runtime="onnxruntime",
        model="m.onnx", device="cpu", batch=4, diarize=True, trust_checkpoint=True, db="d", database="y",
        collar=0.5, skip_overlap=True, num_speakers="tuned")),
    ("apply", r.ApplyRequest(val_dir="v", protocol="P", epoch=12, shared=True)),
    ("diarize", r.DiarizeRequest(extraction="x", protocol="P", subset="dev", db="d", database="y", collar=0.25,
                                 skip_overlap=True, num_speakers="tuned")),
    ("pick", r.PickRequest(val_dir="v", epoch=3, db="d")),
    ("average", r.AverageRequest(dir="t", last=3, trust_checkpoint=True, db="d")),
    ("average", r.AverageRequest(dir="v", top=2)),
    ("clean", r.CleanRequest(dirs=("t", "-e x"), keep_last=2, keep_best=3, skipped=True, yes=True, db="d")),
    ("verify", r.VerifyRequest(val_dir="v", enrolment="-a.wav", tests=("b 1.wav", "c.flac"), epoch="avg-top5",
                               device="cuda:1", batch=8, trust_checkpoint=True, db="d")),
    ("verify", r.VerifyRequest(val_dir="v", enrolment="a.wav", tests=("b.wav",), epoch=3, score_norm="asnorm")),
    ("embed", r.EmbedRequest(val_dir="-v", recordings=("a 1.wav", "-b.flac"), list_file="-l.txt", output="o.npz",
                             epoch="avg-top5", device="cuda:1", batch=8, trust_checkpoint=True, db="d")),
    ("embed", r.EmbedRequest(val_dir="v", output="o.ark", epoch=3, list_file="l.txt")),
    ("export", r.ExportRequest(val_dir="v", output="o.onnx", epoch="avg-last2", format="onnx",
                               trust_checkpoint=True, db="d", force=True)),
    ("runs", r.RunsRequest(status="lost", kind="apply", group="g", tag="t", format="json", stale=True, db="d")),
    ("tag", r.TagRequest(run_id=3, group="", add_tag=("a", "b"), remove_tag=("c",), note="-n", db="d")),
    ("report", r.ReportRequest(run_id=(3, 12), group=("resnet34-lm", "g"), out="-out dir", format=("csv", "html"),
                               force=True, db="d")),
    ("report", r.ReportRequest(group=("g",), out="o")),
    ("import", r.ImportRequest(paths=("a/events.jsonl", "-b"), db="d")),
    ("demo-data", r.DemoRequest(dir="d", speakers=12, seed=4)),
    ("demo-workspace", r.DemoRequest(dir="w", speakers=9, seed=2)),
    ("config check", r.ConfigCheckRequest(file="config.yml")),
    ("config template", r.ConfigTemplateRequest(name="resnet34")),
    ("config large-margin", r.ConfigLargeMarginRequest(parent="weights/0040.pt")),
    ("model-summary", r.ModelSummaryRequest(config="exp")),
    ("sweep", r.SweepRequest(
        base_config="-base", protocol="P", set=("task.params.margin=0.1,0.2", "-x=1"), seeds=3, random=2,
        slots="cuda:0,cuda:1", epochs=5, name="s", out="o", subset="dev", val_subset="test", every=2, no_validate=True,
        prune="none", prune_after=2, parallel=0, no_queue=True, sbatch=True, time="1:00:00", partition="gpu",
        db="d", database="y")),
    ("sweep", r.SweepRequest(base_config="b", protocol="P", optuna=4, space="s.yml", prune="halving")),
    ("queue", r.QueueRequest(slots="cpu*2", poll=0.5, idle_exit=5.0, detach=True, stop=True, cancel=(3, 4),
                             cancel_sweep="-s", db="d")),
]


@pytest.mark.parametrize(("command", "request_"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_a_request_parses_back_from_its_command_line(command: str, request_: r.Request) -> None:
    argv = to_argv(request_, command)
    assert parse_command(argv) == (command, request_), argv
    if len([c for c in REQUESTS.values() if c is type(request_)]) == 1:
        assert to_argv(request_) == argv


def test_the_examples_cover_every_command_and_option() -> None:
    assert {c for c, _ in EXAMPLES} == set(REQUESTS)
    for command, cls in REQUESTS.items():
        examples = [req for c, req in EXAMPLES if c == command]
        moved = {f.name for req in examples for f in dataclasses.fields(req)
                 if f.default is dataclasses.MISSING or getattr(req, f.name) != f.default}
        assert moved == {f.name for f in dataclasses.fields(cls)}, command


def test_defaults_are_left_out_and_a_shared_request_needs_its_command() -> None:
    assert to_argv(r.TrainRequest(exp_dir="e", protocol="P")) == ["train", "e", "P"]
    with pytest.raises(ValueError, match="name the command"):
        to_argv(r.DemoRequest(dir="d"))
