"""What ``sbatch``, ``sweep`` and ``queue`` take from a user stays inside its bounds: a SLURM directive
never ends its line (bash would run the rest), a sweep name is one folder below the experiment, and
slot counts and grids are counted before anything is made of them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.errors import SpkembError
from engine.sweeps.slots import parse_slots
from engine.sweeps.space import grid_points
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_in_process

PROTOCOL = "Demo.SpeakerVerification.Voices"
# a sweep checks its protocol and subsets before it records anything
pytestmark = pytest.mark.usefixtures("demo_database_env")


def _exp(tmp_path: Path) -> Path:
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    return exp


def _refused(done, *says: str) -> None:
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    for text in says:
        assert text in done.stderr


def _values(count: int, scale: float) -> str:
    return ",".join(f"{scale * i:g}" for i in range(1, count + 1))


def test_an_sbatch_value_that_would_end_its_line_is_refused_and_no_script_written(tmp_path: Path) -> None:
    """``--partition $'gpu\\ntouch /tmp/x'`` wrote a line ``touch /tmp/x`` into the script, which bash runs."""
    exp, script = _exp(tmp_path), tmp_path / "job.sh"
    for options, says in ((["--partition", "gpu\ntouch /tmp/x"], "argument --partition: 'gpu\\ntouch /tmp/x'"),
                          (["--partition", "gpu;id"], "letters, digits and _ - . , : + = @"),
                          (["--partition", "$(id)"], "argument --partition"),
                          (["--time", "1:00\nid"], "argument --time: '1:00\\nid'"),
                          (["--time", "abc"], "D-HH:MM:SS"),
                          (["--time", "1:00:00:00"], "argument --time"),
                          # the 180 s warning before the limit would stop and requeue each start before a step
                          (["--time", "3"], "--time 3: the job is warned 180 s before its time limit"),
                          (["--time", "0:09:59"], "give it at least 10 minutes"),
                          (["--subset", "train\nid"], "subset 'train\\nid' is not one of")):
        done = run_in_process("sbatch", *options, "-o", str(script), str(exp), PROTOCOL)
        _refused(done, says)
        assert not script.exists()
    for limit in ("30", "30:00", "1:00:00", "2-0", "2-00:30", "2-00:00:00", "10", "0"):
        done = run_in_process("sbatch", "--time", limit, "--partition", "gpu,a100", "-o", str(script), str(exp),
                              PROTOCOL)
        assert done.returncode == 0, done.stderr
        assert f"#SBATCH --time={limit}\n" in script.read_text()
        assert "#SBATCH --partition=gpu,a100\n" in script.read_text()


def test_a_sweep_array_refuses_a_directive_that_would_end_its_line(tmp_path: Path, db_path: Path) -> None:
    exp = _exp(tmp_path)
    for options, says in ((["--partition", "a\nb"], "argument --partition: 'a\\nb'"),
                          (["--time", "abc"], "argument --time: abc"),
                          (["--time", "5"], "--time 5: the job is warned 180 s before its time limit"),
                          (["--out", str(tmp_path / "o\nid")], "line break")):
        done = run_in_process("sweep", "--sbatch", "--no-queue", "--set", "task.params.margin=0.1", *options,
                              str(exp), PROTOCOL, db=db_path)
        _refused(done, says)
        assert not db_path.exists() and not (exp / "sweeps").exists()
        assert [p.name for p in tmp_path.iterdir()] == ["exp"]


@pytest.mark.parametrize("name", ["../../escaped", "ABSOLUTE", "a/b", "..", ".hidden", "-x", "", "n" * 65,
                                  "tab\there"])
def test_a_sweep_name_is_one_folder_name(tmp_path: Path, db_path: Path, name: str) -> None:
    """Without --out the trials go in BASE/sweeps/NAME: ``../../escaped`` put them two folders up."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    exp = _exp(work)
    name = str(tmp_path / "abs") if name == "ABSOLUTE" else name  # a folder of the test's, had it been taken
    done = run_in_process("sweep", "--no-queue", "--set", "task.params.margin=0.1", f"--name={name}", str(exp),
                          PROTOCOL, db=db_path)
    _refused(done, "argument --name: sweep name")
    assert not db_path.exists() and not (exp / "sweeps").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "config.yml", "exp"]


def test_a_plain_sweep_name_is_its_folder_below_the_experiment(tmp_path: Path, db_path: Path) -> None:
    exp = _exp(tmp_path)
    done = run_in_process("sweep", "--no-queue", "--no-validate", "--set", "task.params.margin=0.1",
                          "--name", "margin_0.1-a", str(exp), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    assert (exp / "sweeps" / "margin_0.1-a" / "trial-000" / "config.yml").is_file()


def test_slot_counts_and_gpu_indexes_are_bounded() -> None:
    """``cpu*99999999999`` listed that many slots (gigabytes, minutes); ``cuda:99999999999999999999`` was taken."""
    assert len(parse_slots("cpu*64")) == 64 and parse_slots("cuda:1023")[0].visible == "1023"
    assert len(parse_slots("cuda:0*064")) == 64
    for bad, says in (("cpu*99999999999", "1 to 64"), ("cpu*65", "1 to 64"), ("cuda:0*" + "9" * 5000, "1 to 64"),
                      ("cuda:99999999999999999999", "0 to 1023"), ("cuda:1024", "0 to 1023"),
                      (",".join(f"cuda:{i}*64" for i in range(17)), "more than 1024 slots")):
        started = time.monotonic()
        with pytest.raises(SpkembError, match=says):
            parse_slots(bad)
        assert time.monotonic() - started < 1


@pytest.mark.parametrize("slots", ["cpu*99999999999", "cuda:99999999999999999999"])
def test_queue_and_sweep_refuse_unbounded_slots_in_one_line(tmp_path: Path, db_path: Path, slots: str) -> None:
    done = run_in_process("queue", "--slots", slots, "--db", str(db_path))
    _refused(done, "--slots: ")
    exp = _exp(tmp_path)
    done = run_in_process("sweep", "--no-queue", "--slots", slots, "--set", "task.params.margin=0.1", str(exp),
                          PROTOCOL, db=db_path)
    _refused(done, "--slots: ")
    assert not db_path.exists() and not (exp / "sweeps").exists()


def test_a_grid_is_counted_before_it_is_made_and_a_random_draw_never_lists_it() -> None:
    over = {"task.params.margin": list(range(101)), "task.params.s": list(range(100))}
    with pytest.raises(SpkembError, match=r"10,100 combinations x 1 seed\(s\) = 10,100 trials, more than 10,000: "
                                          r".*--random N"):
        grid_points(over, seeds=1)
    assert len(grid_points({"k": list(range(100))}, seeds=100)) == 10_000
    huge = {key: list(range(1000)) for key in ("a", "b", "c")}
    with pytest.raises(SpkembError, match="1,000,000,000 combinations"):
        grid_points(huge, seeds=1)
    drawn = grid_points(huge, seeds=7, sample=5)  # five combinations, each with every seed
    assert drawn == grid_points(huge, seeds=7, sample=5) and len({str(p.params) for p in drawn}) == 5
    assert [p.seed for p in drawn] == list(range(7)) * 5 and all(set(p.params) == {"a", "b", "c"} for p in drawn)
    with pytest.raises(SpkembError, match=r"--random 1000 x 1,000 seed\(s\) = 1,000,000 trials, more than 10,000"):
        grid_points(huge, seeds=1000, sample=1000)  # the cap holds for a draw too
    # 1e20 combinations: more than a range random.sample takes (an OverflowError's traceback before)
    wide = grid_points({f"k{i}": list(range(10)) for i in range(20)}, seeds=1, sample=3)
    assert len({str(p.params) for p in wide}) == 3
    small = {"a": [1, 2, 3], "b": ["x", "y"]}
    everything = grid_points(small, seeds=2)
    drawn = grid_points(small, seeds=2, sample=2)  # the draw is of the same trials, in the same order
    assert len(drawn) == 4 and all(p in everything for p in drawn)
    assert [everything.index(p) for p in drawn] == sorted(everything.index(p) for p in drawn)


def test_sweep_refuses_a_huge_grid_in_one_line_and_draws_from_it_with_random(tmp_path: Path, db_path: Path) -> None:
    """Three keys of 1,000 values: sweep printed nothing and grew past 4.6 GB, with or without --random."""
    exp = _exp(tmp_path)
    grid = ("--set", f"task.params.margin={_values(1000, 0.0005)}", "--set", f"task.params.s={_values(1000, 1)}",
            "--set", f"scheduler.params.learning_rate={_values(1000, 0.00001)}")
    started = time.monotonic()
    done = run_in_process("sweep", "--no-queue", *grid, str(exp), PROTOCOL, db=db_path)
    _refused(done, "1,000,000,000 trials, more than 10,000", "--random N")
    assert not db_path.exists() and not (exp / "sweeps").exists()
    done = run_in_process("sweep", "--no-queue", "--no-validate", "--random", "2", "--name", "drawn", *grid,
                          str(exp), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    trials = sorted(p.name for p in (exp / "sweeps" / "drawn").iterdir())
    assert trials == ["trial-000", "trial-001"]


def test_a_random_draw_as_large_as_the_grid_says_it_runs_the_whole_grid(tmp_path: Path, db_path: Path) -> None:
    """`--random 20` of a grid of six ran the six without a word: the flag had no effect."""
    exp = _exp(tmp_path)
    done = run_in_process("sweep", "--no-queue", "--no-validate", "--random", "20", "--name", "all",
                          "--set", "task.params.margin=0.1,0.2,0.3", "--set", "task.params.s=10,30",
                          str(exp), PROTOCOL, db=db_path)
    assert done.returncode == 0, done.stderr
    assert "--random 20 draws from a grid of 6 combination(s): all of them run" in done.stderr
    assert len(list((exp / "sweeps" / "all").glob("trial-*"))) == 6
    drawn = run_in_process("sweep", "--no-queue", "--no-validate", "--random", "2", "--name", "two",
                           "--set", "task.params.margin=0.1,0.2,0.3", str(exp), PROTOCOL, db=db_path)
    assert drawn.returncode == 0 and "all of them run" not in drawn.stderr, drawn.stderr
