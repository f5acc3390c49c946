"""What train, validate, apply, average and export refuse before torch is imported: the same one line, exit 2, and
nothing written, in a process that never imports torch (a real interpreter, so that nothing this
test process already imported hides an import)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests import children

PROTOCOL = "Demo.SpeakerVerification.Voices"

#: runs each argument list (argv[1:] is JSON) through engine.cli.main in turn, then prints for each
#: its exit status, its stderr and whether torch had been imported by then
_REFUSE_EACH = """
import contextlib, io, json, sys
from engine.cli import main
answers = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as refused:  # a request's options that contradict each other, parsed
            status = refused.code
    answers.append([status, err.getvalue(), "torch" in sys.modules])
print(json.dumps(answers))
"""


def refusals(cases: list[list[str]], cwd: Path) -> list[tuple[int, str, bool]]:
    done = children.run([sys.executable, "-c", _REFUSE_EACH, json.dumps(cases)], cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return [tuple(answer) for answer in json.loads(done.stdout)]


def tree(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_misspelt_name_or_folder_is_refused_before_torch_is_imported(
        tiny_exp: Path, demo_corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    common = ["--db", str(db), "--database", str(demo_corpus)]
    trn = tiny_exp / "train" / f"{PROTOCOL}.train"  # not made yet: validate would wait 60 s for it
    val = tmp_path / "val"
    val.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yml").write_text((tiny_exp / "config.yml").read_text().replace("per_fold:", "per_fold: [", 1))
    before = tree(tmp_path)
    cases = {
        "train Demo.SpeakerVerification.Nobody": (
            ["train", *common, str(tiny_exp), "Demo.SpeakerVerification.Nobody"],
            "protocol Demo.SpeakerVerification.Nobody is not defined in"),
        "train --subset trian": (["train", *common, "--subset", "trian", str(tiny_exp), PROTOCOL],
                                 "subset 'trian' is not one of"),
        "train of a config that does not load": (["train", *common, str(broken), PROTOCOL], "config.yml"),
        "validate Demo.SpeakerVerification.Nobody": (
            ["validate", *common, str(trn), "Demo.SpeakerVerification.Nobody"], "is not defined in"),
        "validate of an experiment folder": (["validate", *common, str(tiny_exp), PROTOCOL], "TRN_DIR"),
        "apply of no folder": (["apply", *common, str(tmp_path / "nowhere"), PROTOCOL],
                               "is not a directory: pass the VAL_DIR"),
        "apply Demo.SpeakerVerification.Nobody": (
            ["apply", *common, str(val), "Demo.SpeakerVerification.Nobody"], "is not defined in"),
        "apply --shared --runtime onnxruntime": (
            ["apply", *common, "--shared", "--runtime", "onnxruntime", str(val), PROTOCOL],
            "--shared is a path of the torch runtime"),
        "average of no folder": (["average", "--db", str(db), "--top", "2", str(tmp_path / "nowhere")],
                                 "is not a directory: pass TRN_DIR (--last) or VAL_DIR (--top)"),
        "average --last of an experiment folder": (["average", "--db", str(db), "--last", "2", str(tiny_exp)],
                                                   "is an experiment folder (EXP_DIR), not a TRN_DIR"),
        "export of a VAL_DIR with no pick": (["export", "--db", str(db), "-o", str(tmp_path / "x.onnx"), str(val)],
                                             "params.yml does not exist: validate first"),
        "export --epoch misspelt": (["export", "--db", str(db), "--epoch", "avg-tpo2", "-o",
                                     str(tmp_path / "x.onnx"), str(val)], "--epoch 'avg-tpo2': expected"),
    }
    answers = refusals([argv for argv, _ in cases.values()], cwd=tmp_path)
    for (name, (argv, words)), (status, err, torch_imported) in zip(cases.items(), answers, strict=True):
        command = argv[0]
        assert status == 2, (name, status, err)
        assert err.startswith(f"spkemb-engine {command}: error: ") and err.count("\n") == 1, (name, err)
        assert words in err, (name, err)
        assert not torch_imported, name
    assert tree(tmp_path) == before and not db.exists()


@pytest.mark.slow
def test_a_request_that_passes_the_early_checks_goes_on_to_the_command(tiny_exp: Path, demo_corpus: Path,
                                                                      tmp_path: Path) -> None:
    """The early checks refuse only what is wrong: a right request reaches the command, which imports
    torch and refuses what only it can see (here: no checkpoint to resume)."""
    db = tmp_path / "runs.db"
    ((status, err, torch_imported),) = refusals(
        [["train", "--db", str(db), "--database", str(demo_corpus), "--resume", str(tiny_exp), PROTOCOL]],
        cwd=tmp_path)
    assert status != 0 and "has no checkpoint yet; train without --resume" in err, err
    assert torch_imported


def test_under_torchrun_a_refusal_is_said_by_rank_0_alone(tiny_exp: Path, demo_corpus: Path, tmp_path: Path) -> None:
    """A misspelt protocol under `torchrun --nproc_per_node 2`: the same line twice, one a rank."""
    from tests.engine.engine_runner import run_in_process

    argv = ("train", "--db", str(tmp_path / "runs.db"), "--database", str(demo_corpus), str(tiny_exp), PROTOCOL + "z")
    said = [run_in_process(*argv, env={"RANK": rank}) for rank in ("0", "1")]
    assert [done.returncode for done in said] == [2, 2]
    assert "error:" in said[0].stderr and said[1].stderr == ""
