"""A stop (Ctrl-C, SIGTERM) during ``apply`` says what the folder lacks and how to finish it: the
extraction is recorded stopped, exit 0, the files written are kept (a real process and signal), and the
same apply again writes the others alone."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

from engine.store import open_store
from tests.engine.engine_runner import run_in_process, start_engine, wait_for
from tests.engine.test_export import write_val_dir


@pytest.mark.slow(seconds=30)
def test_a_stopped_apply_names_its_incomplete_folder_and_the_fix(tmp_path: Path, demo_corpus: Path,
                                                                 db_path: Path) -> None:
    val_dir = write_val_dir(tmp_path)
    log = tmp_path / "apply.log"
    # the files of the verification test subset, each taking a while (a small step): the stop
    # comes between two of them, as it does between the meetings of AMI
    proc = start_engine("apply", "--step", "0.01", "--subset", "test", "--device", "cpu", str(val_dir),
                        "Demo.SpeakerVerification.Voices", db=db_path, database=demo_corpus, log=log)
    folder = val_dir / "apply" / "7-step0.01"
    wait_for(lambda: any(folder.rglob("*.npy")), what="the first file's embeddings", timeout=120)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 0, log.read_text()
    said = log.read_text()
    written = sorted(folder.rglob("*.npy"))
    assert f"apply: stopped after writing {len(written)} of the " in said and "run the same apply again" in said
    with open_store(db_path, readonly=True) as store:
        (run,) = store.runs(kind="apply")
    assert run["status"] == "stopped" and "Traceback" not in said
    assert said.strip().splitlines()[-2:] == ["stopped by SIGINT",
                                              f"apply: run #{run['id']} stopped, recorded in {db_path}"]
    total = int(said.split(f"apply: stopped after writing {len(written)} of the ", 1)[1].split()[0])
    assert (run["progress"], run["progress_total"]) == (len(written), total) and total > len(written)

    # the same apply again finishes it: the files written are kept (an AMI extraction is hours), the others written
    before = {p: p.stat().st_ino for p in written}
    done = run_in_process("apply", "--step", "0.01", "--subset", "test", "--device", "cpu", str(val_dir),
                          "Demo.SpeakerVerification.Voices", db=db_path, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    assert (f"apply: finishing the stopped extraction in {folder} (same checkpoint, mode and step): {len(written)} of "
            f"the {total} files are there, {total - len(written)} to write") in done.stderr
    assert {p: p.stat().st_ino for p in written} == before and len(list(folder.rglob("*.npy"))) == total
    # its speed is of the files it wrote, and says so (it read as the whole folder's audio)
    assert (f"apply: {total} files, {len(written)} kept from the stopped apply, {total - len(written)} written now: "
            in done.stderr), done.stderr
    assert yaml.safe_load((folder / "metadata.yml").read_text())["subsets"] == [
        {"protocol": "Demo.SpeakerVerification.Voices", "subset": "test"}]
    # whole, it is replaced when asked again
    done = run_in_process("apply", "--step", "0.01", "--subset", "test", "--device", "cpu", str(val_dir),
                          "Demo.SpeakerVerification.Voices", db=db_path, database=demo_corpus)
    assert done.returncode == 0 and "apply: replacing the extraction in" in done.stderr, done.stderr


@pytest.mark.slow
def test_a_stop_during_a_long_file_ends_it_at_once_and_writes_none_of_it(tmp_path: Path, demo_corpus: Path,
                                                                       db_path: Path) -> None:
    val_dir = write_val_dir(tmp_path)
    log = tmp_path / "apply.log"
    # two meetings, each seconds of CPU at this step: the stop comes inside the first
    proc = start_engine("apply", "--step", "0.002", "--device", "cpu", str(val_dir),
                        "Demo.SpeakerDiarization.Meetings", db=db_path, database=demo_corpus, log=log)
    wait_for(lambda: log.exists() and "s of audio" in log.read_text(), what="the extraction under way", timeout=120)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, log.read_text()
    folder = val_dir / "apply" / "7-step0.002"
    assert f"apply: stopped after writing 0 of the 2 files into {folder}: run the same apply again" in log.read_text()
    assert not list(folder.rglob("*.npy")) and not list(folder.rglob(".tmp*"))
