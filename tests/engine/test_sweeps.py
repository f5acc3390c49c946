"""``spkemb-engine sweep`` and ``queue``: trials recorded with their diffs, run on slots with validation beside,
never lost nor started twice when the queue is killed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from engine.config import config_to_dict, parse_config
from engine.config.overrides import set_keys
from engine.errors import ConfigError, SpkembError, StoreError
from engine.records.labels import check_label
from engine.store import open_store
from engine.store.sweeps import CLAIM_VAR, NewTrial
from engine.sweeps.processes import child_env
from engine.sweeps.slots import parse_slots
from engine.sweeps.space import grid_points, parse_grid
from engine.version import software
from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_engine, run_in_process, start_engine, wait_for

PROTOCOL = "Demo.SpeakerVerification.Voices"
GRID = ("--set", "task.params.margin=0.05,0.2", "--set", "scheduler.params.learning_rate=0.01,0.02")
# a sweep checks its protocol and subsets before it records anything
pytestmark = pytest.mark.usefixtures("demo_database_env")


def _base(tmp_path: Path) -> Path:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    return base


def _sweep(base: Path, db: Path, corpus: Path, *options: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_engine("sweep", *options, "--parallel", "0", "--database", str(corpus), str(base), PROTOCOL, db=db,
                      timeout=timeout)


def test_slots_name_each_place_and_refuse_what_is_not_one() -> None:
    assert [(s.name, s.device, s.visible) for s in parse_slots("cpu*2")] == [("cpu/0", "cpu", ""), ("cpu/1", "cpu", "")]
    assert [(s.name, s.visible) for s in parse_slots("cuda:0,cuda:1")] == [("cuda:0", "0"), ("cuda:1", "1")]
    assert [s.name for s in parse_slots("cuda:3*2")] == ["cuda:3/0", "cuda:3/1"]
    for bad in ("gpu", "cuda", "cpu*0", "cpu,cpu"):
        with pytest.raises(SpkembError, match="slot"):
            parse_slots(bad)


def test_a_detached_queue_asked_for_other_slots_says_it_keeps_its_own(tmp_path: Path) -> None:
    """``queue --detach --slots cpu*2`` beside a queue on ``cpu`` said that queue starts the runs and
    dropped cpu*2 in silence: the line now says which slots stay, and how to change them."""
    db = tmp_path / "my runs.db"
    with open_store(db) as store:
        store.start_queue("cpu")  # this process stands for the running queue
    done = run_in_process("queue", "--detach", "--slots", "cpu*2", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (f"the queue of {db} (pid {os.getpid()}) keeps its slots cpu (asked: cpu*2) and "
                                   f"starts the queued runs there; stop it with `spkemb-engine queue --stop --db "
                                   f"'{db}'` to change them")
    for same in ("cpu", "cpu*1"):
        done = run_in_process("queue", "--detach", "--slots", same, "--db", str(db))
        assert done.stderr.strip() == f"the queue of {db} (pid {os.getpid()}, slots cpu) starts the queued runs"
    with contextlib.closing(sqlite3.connect(db)) as conn:  # no second queue was started
        assert conn.execute("SELECT COUNT(*) FROM queues").fetchone() == (1,)


def test_a_detached_queue_keeps_the_poll_and_idle_exit_it_was_given(tmp_path: Path) -> None:
    """``queue --detach --idle-exit 3`` started a queue with neither option: it idled 60 s."""
    db = tmp_path / "runs.db"
    done = run_in_process("queue", "--detach", "--idle-exit", "0.5", "--poll", "0.1", "--db", str(db))
    assert done.returncode == 0, done.stderr
    pid = int(re.search(r"\(pid (\d+), slots cpu\)", done.stderr).group(1))
    try:
        wait_for(lambda: _ended(pid), timeout=30, what="the detached queue's idle exit")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    assert "idle: nothing queued or running" in Path(f"{db}-queue.log").read_text()


def _ended(pid: int) -> bool:
    """Whether this process's child ``pid`` has exited (reaped here, or already by subprocess)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


def test_each_child_sees_its_slots_gpu_alone_and_only_training_gets_the_claim() -> None:
    gpu, cpu = parse_slots("cuda:3,cpu")
    base = {"CUDA_VISIBLE_DEVICES": "0,1,2,3", CLAIM_VAR: "old", "PATH": "/bin"}
    assert child_env(gpu, "tok", base) == {"CUDA_VISIBLE_DEVICES": "3", CLAIM_VAR: "tok", "PATH": "/bin",
                                           "PYTHONUNBUFFERED": "1"}
    env = child_env(cpu, None, base)
    assert env["CUDA_VISIBLE_DEVICES"] == "" and CLAIM_VAR not in env
    assert (gpu.device, cpu.device) == ("cuda", "cpu")


def test_the_grid_is_every_combination_times_seeds_and_keys_are_checked_by_the_table() -> None:
    grid = parse_grid(["task.params.margin=0.1,0.2", "architecture.params.sincnet.stride=[5,1,1],[3,1,1]"])
    assert grid == {"task.params.margin": [0.1, 0.2], "architecture.params.sincnet.stride": [[5, 1, 1], [3, 1, 1]]}
    points = grid_points(grid, seeds=2)
    assert len(points) == 8 and {p.seed for p in points} == {0, 1}
    assert len(grid_points(grid, seeds=2, sample=3)) == 6  # three combinations, each with both seeds
    base = config_to_dict(parse_config(TINY_CONFIG))
    assert set_keys(base, {"task.params.margin": 0.3}).task.margin == 0.3
    with pytest.raises(ConfigError, match="task.params.marginn: unknown parameter"):
        set_keys(base, {"task.params.marginn": 0.3})
    with pytest.raises(ConfigError, match=r"task.params.margin: must be in"):
        set_keys(base, {"task.params.margin": -1})


@pytest.mark.slow
@pytest.mark.parametrize(("args", "named"), [
    (("--protocol-is", "Demo.SpeakerVerification.Voicse"), "protocol Demo.SpeakerVerification.Voicse is not defined"),
    (("--subset", "trian"), "subset 'trian' is not one of"),
    (("--val-subset", "developement"), "--val-subset"),
])
def test_a_misspelt_protocol_or_subset_is_one_line_and_writes_nothing(tmp_path: Path, demo_corpus: Path,
                                                                     db_path: Path, args, named: str) -> None:
    """Each trial of the sweep was queued, then failed at its start, one after another."""
    base = _base(tmp_path)
    protocol = args[1] if args[0] == "--protocol-is" else PROTOCOL
    options = () if args[0] == "--protocol-is" else args
    done = run_in_process("sweep", "--set", "task.params.margin=0.1,0.2", "--no-queue", *options, str(base),
                          protocol, db=db_path, database=demo_corpus)
    assert done.returncode == 2 and named in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (base / "sweeps").exists() and not db_path.exists()


def test_the_queue_says_a_trial_that_failed_and_why(tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    """Its log read `queue: run 5 ended on cpu` of a trial that failed at its start."""
    base = _base(tmp_path)
    done = run_in_process("sweep", "--set", "task.params.margin=0.1", "--no-queue", "--no-validate", "--slots", "cpu",
                          "--name", "gone", str(base), PROTOCOL, db=db_path, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    (base / "sweeps" / "gone" / "trial-000" / "config.yml").unlink()  # its train refuses to start
    done = run_engine("queue", "--slots", "cpu", "--poll", "0.2", "--idle-exit", "1", db=db_path, timeout=120)
    assert done.returncode == 0, done.stderr
    (run,) = open_store(db_path, readonly=True).runs(kind="train")
    assert run["status"] == "failed"
    assert f"queue: run {run['id']} failed on cpu: {run['reason']}" in done.stderr, done.stderr


def test_queue_stop_cancel_and_cancel_sweep_of_a_missing_database_make_none(tmp_path: Path) -> None:
    """`queue --stop --db none.db` said no queue ran for it, and left none.db (and its lock) behind."""
    missing = tmp_path / "none.db"
    for args in (("--stop",), ("--cancel", "1"), ("--cancel-sweep", "s")):
        done = run_in_process("queue", *args, "--db", str(missing))
        assert done.returncode == 2 and f"no runs database at {missing}" in done.stderr, done.stderr
        assert list(tmp_path.iterdir()) == []


def test_a_claim_a_killed_queue_left_does_not_keep_a_run_from_being_cancelled(tmp_path: Path, demo_corpus: Path,
                                                                               db_path: Path) -> None:
    """A queue SIGKILLed between claiming a run and starting it: `--cancel` said a queue was starting it,
    `--cancel-sweep` found no queued run, and the next queue started the run of the ended sweep."""
    base = _base(tmp_path)
    done = run_in_process("sweep", "--set", "task.params.margin=0.1,0.2", "--no-queue", "--no-validate",
                          "--name", "ended", str(base), PROTOCOL, db=db_path, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    with open_store(db_path) as store:
        first, second = sorted(r["id"] for r in store.runs(kind="train"))
        for run_id in (first, second):  # claimed by a queue that is gone (no queue row is alive)
            assert store.claim("cpu", 999, run_id=run_id) is not None
    done = run_in_process("queue", "--cancel", str(first), db=db_path)
    assert done.returncode == 0 and f"queue: run #{first} taken off the queue" in done.stderr, done.stderr
    done = run_in_process("queue", "--cancel-sweep", "ended", db=db_path)
    assert done.returncode == 0 and f"run(s) #{second} taken off the queue" in done.stderr, done.stderr
    statuses = {r["id"]: (r["status"], r["reason"]) for r in open_store(db_path, readonly=True).runs(kind="train")}
    assert statuses == {first: ("stopped", "cancelled while queued"), second: ("stopped", "cancelled while queued")}


def test_a_bad_key_is_one_line_and_writes_nothing(tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    base = _base(tmp_path)
    done = _sweep(base, db_path, demo_corpus, "--set", "task.params.margn=0.1,0.2", "--no-queue")
    assert done.returncode == 2
    assert done.stderr.startswith("spkemb-engine sweep: error: task.params.margn: unknown parameter")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (base / "sweeps").exists() and not db_path.exists()
    (tmp_path / "space.yml").write_text("task.params.margn: {low: 0.1, high: 0.2}\n")
    done = _sweep(base, db_path, demo_corpus, "--optuna", "2", "--space", str(tmp_path / "space.yml"), "--no-queue")
    assert done.returncode == 2 and "task.params.margn: unknown parameter" in done.stderr
    assert not (base / "sweeps").exists() and not db_path.exists()
    assert _sweep(base, db_path, demo_corpus, "--set", "task.params.margin=0.1", "--name", "s", "--no-queue",
                  "--no-validate").returncode == 0
    again = _sweep(base, db_path, demo_corpus, "--set", "task.params.margin=0.2", "--name", "s", "--no-queue")
    assert again.returncode == 2 and "a sweep named s exists already" in again.stderr


def test_the_default_name_from_an_odd_folder_name_is_a_group_runs_can_be_asked_for(tmp_path: Path,
                                                                                   db_path: Path) -> None:
    """A base folder `my exp (v2)` made the group `my exp (v2)-sweep1`, which `runs --group` refuses."""
    base = tmp_path / "my exp (v2)"
    base.mkdir()
    (base / "config.yml").write_text(TINY_CONFIG)
    done = run_in_process("sweep", "--set", "task.params.margin=0.1", "--no-queue", "--no-validate",
                          str(base), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    (sweep,) = open_store(db_path, readonly=True).sweeps()
    assert sweep["name"] == "my-exp-v2-sweep1" and check_label(sweep["name"], "group") == sweep["name"]
    listed = run_in_process("runs", "--group", sweep["name"], db=db_path)
    assert listed.returncode == 0 and "queued" in listed.stdout, listed.stderr


def test_queue_cancel_takes_queued_runs_off_and_names_one_that_is_not_waiting(tmp_path: Path,
                                                                             db_path: Path) -> None:
    """A queued run could be taken off the queue only from the TUI."""
    base = _base(tmp_path)
    done = run_in_process("sweep", "--set", "task.params.margin=0.1,0.2,0.3", "--no-queue", "--no-validate",
                          str(base), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    first, second, third = sorted(r["id"] for r in open_store(db_path, readonly=True).runs(kind="train"))
    done = run_in_process("queue", "--cancel", str(first), str(second), db=db_path)
    assert done.returncode == 0, done.stderr
    assert f"queue: run #{second} taken off the queue (recorded stopped: cancelled while queued)" in done.stderr
    # every id is tried: the one that cannot be taken off does not keep the next one queued
    again = run_in_process("queue", "--cancel", str(first), str(third), "99", db=db_path)
    assert again.returncode == 2 and again.stderr.strip().endswith(
        f"--cancel: run {first} is stopped, not waiting; run 99 is not in the runs database — only a queued run no "
        "queue has started can be taken off (`spkemb-engine runs --status queued` lists them)")
    assert f"queue: run #{third} taken off the queue" in again.stderr
    store = open_store(db_path, readonly=True)
    assert {r["id"]: (r["status"], r["reason"]) for r in store.runs(kind="train")} == {
        run: ("stopped", "cancelled while queued") for run in (first, second, third)}


def test_a_trial_reads_the_database_yml_found_where_the_sweep_was_made(tmp_path: Path, db_path: Path,
                                                                        demo_corpus: Path) -> None:
    """The queue starts trials from its own folder (a SLURM array from a node's): the sweep hands each
    the database.yml its own folder resolves to, by absolute path."""
    base, folder = _base(tmp_path), tmp_path / "workspace"
    folder.mkdir()
    (folder / "database.yml").write_text(f"Requirements:\n- {demo_corpus}\n")  # the demo corpus's protocols
    done = run_in_process("sweep", "--set", "task.params.margin=0.1,0.2", "--no-queue", "--no-validate",
                          str(base), PROTOCOL, db=db_path, env={"PYANNOTE_DATABASE_CONFIG": ""}, cwd=folder)
    assert done.returncode == 0, done.stderr
    queued = open_store(db_path, readonly=True).runs(kind="train")
    assert len(queued) == 2
    for run in queued:
        command = run["command"]
        assert command[command.index("--database") + 1] == str((folder / "database.yml").resolve())


def _trial(store, sweep_id: int, number: int, tmp_path: Path) -> int:
    exp = tmp_path / f"t{number}"
    return store.add_trial(sweep_id, NewTrial(number=number, exp_dir=str(exp), out_dir=str(exp / "train"),
                                              params={"k": number}, seed=0, diff=[], config={},
                                              train=["train", str(exp), PROTOCOL], validate=None, target_epoch=1),
                           run_group="g", protocol=PROTOCOL, subset="train")


def test_a_claim_is_taken_once_and_a_stale_claim_cannot_be_adopted(tmp_path: Path, db_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(db_path)
    sweep = store.create_sweep(name="g", method="grid", base_config="b", sweep_dir=str(tmp_path), protocol=PROTOCOL,
                               subset="train", space={}, seeds=1, epochs=1, planned=1, slots="cpu", prune="none",
                               prune_after=1, run_group="g", command=[])
    _trial(store, sweep, 0, tmp_path)
    first = store.claim("cpu", 1)
    assert first is not None and store.claim("cpu/1", 1) is None  # one queued run: one claim
    store.release(first.run_id)  # a queue that died before its child took the run
    second = store.claim("cpu", 2)
    assert second is not None and second.run_id == first.run_id and second.token != first.token
    with pytest.raises(StoreError, match="not training it twice"):  # the first queue's child, late
        store.adopt_queued(first.token, command=["x"], device="cpu", target_epoch=1, config=None)
    assert store.run(first.run_id)["software"] is None  # queued: nothing ran it yet
    assert store.adopt_queued(second.token, command=["x"], device="cpu", target_epoch=1, config=None) == first.run_id
    assert store.run(first.run_id)["status"] == "indexing"
    assert store.run(first.run_id)["software"] == software()  # what the process that took it runs
    with pytest.raises(StoreError):  # adopted already: not again
        store.adopt_queued(second.token, command=["x"], device="cpu", target_epoch=1, config=None)



def test_a_run_on_a_gpu_slot_records_the_gpu_as_the_queue_numbers_it(tmp_path: Path, db_path: Path) -> None:
    """The child sees its slot's GPU alone, as cuda:0, and recorded that: resume, validate and apply of it
    from the TUI then went to GPU 0, the queue's other slot."""
    store = open_store(db_path)
    sweep = store.create_sweep(name="g", method="grid", base_config="b", sweep_dir=str(tmp_path), protocol=PROTOCOL,
                               subset="train", space={}, seeds=1, epochs=1, planned=2, slots="cuda:0,cuda:1*2",
                               prune="none", prune_after=1, run_group="g", command=[])
    for number in (0, 1):
        _trial(store, sweep, number, tmp_path)
    on_gpu, on_cpu = store.claim("cuda:1/1", 1), store.claim("cpu", 1)
    assert on_gpu is not None and on_cpu is not None
    store.adopt_queued(on_gpu.token, command=["x"], device="cuda:0", target_epoch=1, config=None)
    store.adopt_queued(on_cpu.token, command=["x"], device="cpu", target_epoch=1, config=None)
    assert (store.run(on_gpu.run_id)["device"], store.run(on_cpu.run_id)["device"]) == ("cuda:1", "cpu")

def test_damaged_json_of_a_sweep_or_a_queued_run_is_read_around(tmp_path: Path, db_path: Path) -> None:
    import sqlite3

    store = open_store(db_path)
    sweep = store.create_sweep(name="g", method="grid", base_config="b", sweep_dir=str(tmp_path), protocol=PROTOCOL,
                               subset="train", space={"k": [1, 2]}, seeds=1, epochs=1, planned=2, slots="cpu",
                               prune="none", prune_after=1, run_group="g", command=[])
    damaged, good = _trial(store, sweep, 0, tmp_path), _trial(store, sweep, 1, tmp_path)
    with sqlite3.connect(db_path) as conn:  # a hand edit, a bad disk
        conn.execute("UPDATE sweeps SET space = '{not json' WHERE id = ?", (sweep,))
        conn.execute("UPDATE sweep_trials SET params = '[[[', diff = '7' WHERE run_id = ?", (damaged,))
        conn.execute("UPDATE runs SET command = '{\"x\": 1}' WHERE id = ?", (damaged,))
    assert store.sweep(sweep)["space"] == {}
    assert [t["params"] for t in store.sweep_trials(sweep)] == [{}, {"k": 1}]
    claim = store.claim("cpu", 1)  # the damaged run is failed with its reason; the next one is claimed
    assert claim is not None and claim.run_id == good
    assert store.run(damaged)["status"] == "failed" and "queued command" in store.run(damaged)["reason"]
    assert store.claim("cpu/1", 1) is None and [e["run_id"] for e in store.queue_entries()] == [good]


def _overlaps(runs: list[dict]) -> int:
    """The most training runs that ran at one time."""
    events = sorted([(r["started_at"], 1) for r in runs] + [(r["ended_at"], -1) for r in runs],
                    key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, delta in events:
        now += delta
        most = max(most, now)
    return most


def _most_at_once(log: str) -> int:
    """The most runs the queue's log says it had started and not yet seen end."""
    most = now = 0
    ended = re.compile(r"queue: run \d+ (ended|failed|stopped|lost) ")
    for line in log.splitlines():
        now += line.startswith("queue: started run ") - bool(ended.match(line))
        most = max(most, now)
    return most


@pytest.mark.slow(seconds=35)
def test_a_2x2_grid_runs_through_the_queue_two_at_a_time_with_validation(tmp_path: Path, demo_corpus: Path,
                                                                         db_path: Path) -> None:
    base = _base(tmp_path)
    # pruning has its own test: here every trial runs to its end
    done = _sweep(base, db_path, demo_corpus, *GRID, "--slots", "cpu*2", "--epochs", "1", "--name", "m",
                  "--prune", "none", "--no-queue")
    assert done.returncode == 0, done.stderr
    store = open_store(db_path, readonly=True)
    assert [r["status"] for r in store.runs(kind="train")] == ["queued"] * 4
    queue = start_engine("queue", "--slots", "cpu*2", "--poll", "0.3", "--idle-exit", "1", db=db_path,
                         log=tmp_path / "queue.log")
    assert queue.wait(timeout=900) == 0, (tmp_path / "queue.log").read_text()

    (sweep,) = store.sweeps()
    assert (sweep["name"], sweep["method"], sweep["planned"], sweep["run_group"]) == ("m", "grid", 4, "m")
    trials = store.sweep_trials(sweep["id"])
    assert [t["params"] for t in trials] == [
        {"task.params.margin": m, "scheduler.params.learning_rate": lr} for m in (0.05, 0.2) for lr in (0.01, 0.02)]
    # each trial's folder holds its own config, and its diff against the base is recorded
    assert all(parse_config(Path(t["exp_dir"], "config.yml").read_text()).task.margin == t["params"][
        "task.params.margin"] for t in trials)
    assert trials[3]["diff"] == [("task.params.margin", 0.05, 0.2), ("scheduler.params.learning_rate", 0.01, 0.02)]
    assert trials[0]["diff"] == []  # the base's own values
    trains = store.runs(kind="train")
    assert {r["status"] for r in trains} == {"completed"} and {r["run_group"] for r in trains} == {"m"}
    assert {r["device"] for r in trains} == {"cpu"}
    # never more than the two slots; two at a time as the queue started them (the runs' own recorded
    # times overlap less on a loaded machine: one tiny training can end before the other records its start)
    assert _overlaps(trains) <= 2
    log = (tmp_path / "queue.log").read_text()
    assert _most_at_once(log) == 2, log
    assert sorted(t["slot"] for t in trials) == ["cpu/0", "cpu/0", "cpu/1", "cpu/1"]
    validates = store.runs(kind="validate")
    assert sorted(v["parent_id"] for v in validates) == sorted(r["id"] for r in trains)  # one beside each
    assert all(t["best_eer"] is not None for t in trials)
    assert all(log.count(f"started run {r['id']} ") == 1 for r in trains)
    from app.views.sweeps_view import TRIAL_COLUMNS

    status = [key for key, _ in TRIAL_COLUMNS].index("state")
    assert [row[status] for row in asyncio.run(_sweeps_screen_rows(tmp_path, db_path))] == ["completed"] * 4


async def _sweeps_screen_rows(root: Path, db: Path) -> list[list[str]]:
    """The trials table of the TUI's Sweeps screen on ``db``."""
    from textual.widgets import DataTable

    from app.app import make_app
    from app.screens.sweeps import SweepsScreen

    app = make_app(root, db=db)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("w")
        for _ in range(200):
            if isinstance(app.screen, SweepsScreen) and app.screen.shown:
                break
            await pilot.pause(0.05)
        table = app.screen.query_one("#trials", DataTable)
        return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.mark.slow(seconds=20)
def test_a_killed_queue_loses_no_queued_run_and_starts_none_twice(tmp_path: Path, demo_corpus: Path,
                                                                  db_path: Path) -> None:
    base = _base(tmp_path)
    done = _sweep(base, db_path, demo_corpus, "--set", "task.params.margin=0.1,0.2,0.3", "--slots", "cpu",
                  "--epochs", "1", "--no-validate", "--no-queue")
    assert done.returncode == 0, done.stderr
    store = open_store(db_path, readonly=True)
    # a queue that died between claiming the last trial and starting it: its claim is given back
    last = store.runs(kind="train")[0]["id"]
    with open_store(db_path) as writer:
        assert writer.claim("cpu", 999, run_id=last) is not None
    first = start_engine("queue", "--poll", "0.3", "--idle-exit", "1", db=db_path, log=tmp_path / "first.log")
    running = wait_for(lambda: [r for r in store.runs(kind="train") if r["status"] in ("indexing", "running")],
                       timeout=300, what="the first trial to start")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    (started,) = running  # type: ignore[misc]
    second = start_engine("queue", "--poll", "0.3", "--idle-exit", "1", db=db_path, log=tmp_path / "second.log")
    assert second.wait(timeout=900) == 0, (tmp_path / "second.log").read_text()
    trains = store.runs(kind="train")
    assert len(trains) == 3 and {r["status"] for r in trains} == {"completed"}
    second_log = (tmp_path / "second.log").read_text()
    assert f"adopted run {started['id']} " in second_log and f"started run {started['id']} " not in second_log
    for run in trains:  # each trained once: one start in its log
        log = Path(run["out_dir"], "train.log").read_text()
        assert log.count("train: up to epoch") == 1, log


def test_the_queue_is_alone_on_its_database_and_stops_on_request(tmp_path: Path, db_path: Path) -> None:
    queue = start_engine("queue", "--poll", "0.2", "--idle-exit", "600", db=db_path, log=tmp_path / "q.log")
    store = open_store(db_path)
    live = wait_for(store.live_queue, timeout=60, what="the queue's row")
    assert live["pid"] == queue.pid  # type: ignore[index]
    again = run_engine("queue", db=db_path, timeout=60)
    assert again.returncode == 0 and "another queue runs" in again.stderr
    stopped = run_engine("queue", "--stop", db=db_path, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert queue.wait(timeout=60) == 0
    assert store.live_queue() is None
    assert "stopped by SIGTERM" in (tmp_path / "q.log").read_text()


def test_cli_refuses_contradicting_sweep_options(tmp_path: Path) -> None:
    for options, words in ((["--optuna", "3"], "--optuna N needs --space"),
                           (["--set", "a=1", "--space", "s.yml"], "--space FILE is the search space"),
                           ([], "nothing to sweep"),
                           (["--set", "a=1", "--prune", "halving"], "successive halving"),
                           (["--set", "a=1", "--time", "4:00:00"], "--time is a setting of the SLURM array job"),
                           (["--set", "a=1", "--partition", "gpu"], "--partition is a setting of the SLURM")):
        done = run_in_process("sweep", *options, str(tmp_path), PROTOCOL)
        assert done.returncode == 2 and words in done.stderr, done.stderr
    children.stop_all()


@pytest.mark.slow
def test_a_new_queue_follows_a_live_validation_and_counts_runs_of_other_slots(tmp_path: Path,
                                                                               db_path: Path) -> None:
    """A queue that died while a trial's validation still ran: the next one freed the slot at once and
    started the next trial beside it. Runs started on `cpu*2` held no slot of a queue on `cpu`: three
    ran at once on its one slot."""
    from engine.sweeps.queue import Queue

    base = _base(tmp_path)
    done = run_in_process("sweep", "--set", "task.params.margin=0.1,0.2,0.3", "--slots", "cpu*2", "--no-queue",
                          str(base), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    validating, training = children.spawn(["sleep", "300"]), children.spawn(["sleep", "300"])
    with open_store(db_path) as store:
        first, second, third = sorted(r["id"] for r in store.runs(kind="train"))
        for run_id, slot in ((first, "cpu/0"), (second, "cpu/1")):  # as a dead queue on cpu*2 left them
            assert store.claim(slot, 999, run_id=run_id) is not None
        store.set_child(first, pid=children.dead_pid())  # its training ended, its validation goes on
        store.set_child(first, pid=validating.pid, validate=True)
        store.set_status(first, "completed")
        store.set_child(second, pid=training.pid)
        store.set_status(second, "running")
        queue = Queue(store, parse_slots("cpu"), "cpu")
        queue.adopt()
        assert sorted(queue.running) == [first, second] and queue.running[first].slot == "cpu"
        queue.step()
        assert store.run(third)["status"] == "queued" and sorted(queue.running) == [first, second]
        validating.kill()
        validating.wait()
        queue.step()  # the slot is free again, but the run of cpu/1 is still on this cpu
        assert sorted(queue.running) == [second] and store.run(third)["status"] == "queued"
        assert [e["run_id"] for e in store.queue_entries() if e["claim"] is None] == [third]
        beside = queue.running[second].validate  # the validation it started beside the adopted training
        if beside is not None and beside.proc is not None:
            beside.proc.kill()
            beside.proc.wait()


def test_an_adopted_runs_own_slot_taken_by_a_run_of_other_slots_is_seated_elsewhere(tmp_path: Path,
                                                                                     db_path: Path) -> None:
    """A run of a `cpu` queue took cpu/0 of a `cpu*2` queue, then the run recorded on cpu/0 kept it too:
    cpu/1 looked free and a third run started on the two slots."""
    from engine.sweeps.queue import Queue

    base = _base(tmp_path)
    done = run_in_process("sweep", "--set", "task.params.margin=0.1,0.2,0.3", "--slots", "cpu*2", "--no-queue",
                          "--no-validate", str(base), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    with open_store(db_path) as store:
        first, second, third = sorted(r["id"] for r in store.runs(kind="train"))
        for run_id, slot in ((first, "cpu"), (second, "cpu/0")):
            assert store.claim(slot, 999, run_id=run_id) is not None
            store.set_child(run_id, pid=children.spawn(["sleep", "300"]).pid)
            store.set_status(run_id, "running")
        queue = Queue(store, parse_slots("cpu*2"), "cpu*2")
        queue.adopt()
        assert {run_id: held.slot for run_id, held in queue.running.items()} == {first: "cpu/0", second: "cpu/1"}
        queue.step()
        assert store.run(third)["status"] == "queued" and sorted(queue.running) == [first, second]
