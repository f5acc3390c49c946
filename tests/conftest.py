"""Session-wide fixtures: a tiny demo corpus registered for the whole session, a tiny config;
and the guard that fails a test leaving a process behind."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import template_text
from tests import children

# one thread for torch here and in every process a test starts (engines, the TUI's launches): the
# workers of `-n auto` already keep every core busy, and two threads each only contend for them
os.environ.setdefault("OMP_NUM_THREADS", "1")

_tests = itertools.count(1)
#: seconds a test's leftover processes get to end by themselves before they count as leaked: the
#: loader workers of an engine killed at teardown notice within 5 s that their parent is gone
#: (the guard's own test, whose leaks are sleeps that never end, sets less)
LEAK_GRACE = float(os.environ.get("SPKEMB_TEST_LEAK_GRACE", "10"))


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves a process running, after killing it.

    First here, so torn down last: after the fixtures that stop what they started. The children
    ``tests.children`` started are stopped (their whole trees) without complaint: that is how
    a test that failed half-way cleans up. What remains counts as leaked: a descendant of pytest
    (by parent chain: a child in a session of its own is still a child), or any process that
    inherited this test's token in its environment (one whose parent died and that init adopted).
    """
    token = f"{os.getpid()}.{next(_tests)}"
    os.environ[children.OWNER_VAR] = token
    at_start = children.processes()
    before = {(p.pid, p.start) for p in children.descendants(os.getpid(), at_start)}
    existing = {(p.pid, p.start) for p in at_start.values()}
    yield
    children.stop_all()
    table = children.processes()
    # only a process started during the test can carry its token: the environments of the others
    # were fixed before it was set (reading every process's environment costs most of the guard)
    new = {pid: p for pid, p in table.items() if (p.pid, p.start) not in existing}
    left = {p.pid: p for p in children.carrying(children.OWNER_VAR, token, new)}
    left.update((p.pid, p) for p in children.descendants(os.getpid(), table) if (p.pid, p.start) not in before)
    leaked = [p for p in left.values() if p.alive]
    deadline = time.monotonic() + LEAK_GRACE
    while leaked and time.monotonic() < deadline:  # ones on their way out (signalled, not yet ended)
        time.sleep(0.05)
        leaked = children.still_alive(leaked)
    if not leaked:
        return
    named = [f"pid {p.pid}: {p.command}" for p in leaked]
    children.kill(leaked, grace=1.0)
    pytest.fail("the test left processes running (now killed):\n  " + "\n  ".join(named), pytrace=False)


def _tiny(text: str) -> str:
    """The tutorial's config.yml on the demo corpus, sized so a CPU trains a few steps in seconds."""
    for old, new in (("MUSAN.Collection.", "Demo.Collection."),
                     ("embedding_dim: 512", "embedding_dim: 32\n         hidden_dim: 64"),
                     ("duration: 2.0   # train on 2s audio chunks", "duration: 1.0"),
                     ("per_fold: 256   # number of speakers per batch", "per_fold: 4"),
                     ("per_label: 1    # number of sample per speaker", "per_label: 2"),
                     ("per_epoch: 5    # one epoch = 5 days worth of audio", "per_epoch: 0.0002")):
        assert old in text, old
        text = text.replace(old, new)
    return text


#: a config of the tutorial's shape, sized so a CPU trains a few steps in seconds
TINY_CONFIG = _tiny(template_text("tutorial"))


@pytest.fixture(scope="session", autouse=True)
def index_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Cached training indexes of the session go to a temporary folder, never to ~/.cache."""
    root = tmp_path_factory.mktemp("spkemb-cache")
    previous = os.environ.get("SPKEMB_CACHE")
    os.environ["SPKEMB_CACHE"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("SPKEMB_CACHE", None)
    else:
        os.environ["SPKEMB_CACHE"] = previous


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic corpus (12 speakers) with its database.yml; returns the database.yml path.

    Tests only read it. Under pytest-xdist the workers share one copy: the first to get the lock
    writes it, the others wait for it and read the path it left.
    """
    from filelock import FileLock

    from engine.demo import make_demo_corpus

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's base is a folder of the session's
        shared = shared.parent
    root, built = shared / "demo-corpus", shared / "demo-corpus.yml-path"
    with FileLock(f"{root}.lock", timeout=600):
        if not built.exists():
            database = make_demo_corpus(root, speakers=12, seed=0)
            built.write_text(str(database))
    return Path(built.read_text())


#: the seconds a test marked ``slow`` without ``seconds=`` is expected to take
SLOW_S = 5.0


def expected_seconds(item: pytest.Item) -> float:
    """How long a test takes, as its ``slow`` mark says (``@pytest.mark.slow(seconds=180)``), else 0."""
    slow = item.get_closest_marker("slow")
    return 0.0 if slow is None else float(slow.kwargs.get("seconds", SLOW_S))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked slow first, the longest of them first, the order otherwise kept.

    xdist's work stealing hands each worker a contiguous share of this order and lets an idle
    worker steal from the end of another's: the minutes-long tests start at once instead of
    ending the run alone on one core while the others are idle.
    """
    items.sort(key=lambda item: -expected_seconds(item))


#: a test not marked slow that runs this long is named at the end of the run: ``make test-fast``
#: leaves out the slow ones and is meant to take about a minute and a half on two cores (tests of
#: about a second take up to 2.4 s under coverage beside another worker: 3 s names no jitter)
UNMARKED_SLOW_S = 3.0
_unmarked: list[tuple[float, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.duration >= UNMARKED_SLOW_S and "slow" not in report.keywords:
        _unmarked.append((report.duration, report.nodeid))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _unmarked:
        return
    terminalreporter.write_sep("-", f"{len(_unmarked)} tests not marked slow ran {UNMARKED_SLOW_S:g} s or more "
                                    "(mark them @pytest.mark.slow: make test-fast leaves those out)")
    for duration, nodeid in sorted(_unmarked, reverse=True):
        terminalreporter.write_line(f"{duration:6.2f}s {nodeid[:200]}")  # a generated parameter can be long



@pytest.fixture()
def demo_database_env(demo_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PYANNOTE_DATABASE_CONFIG names the demo corpus's database.yml, for commands that find it there."""
    monkeypatch.setenv("PYANNOTE_DATABASE_CONFIG", str(demo_corpus))

@pytest.fixture
def tiny_exp(tmp_path: Path) -> Path:
    """An experiment directory holding the tiny config."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    return exp


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh runs database path, also exported as SPKEMB_DB for subprocesses.

    Engine processes still running in it when the test ends (a test that failed half-way)
    are killed, so that they do not slow down the tests after it.
    """
    path = tmp_path / "runs.db"
    monkeypatch.setenv("SPKEMB_DB", str(path))
    yield path
    _kill_running(path)


def _kill_running(path: Path) -> None:
    from engine.errors import StoreError
    from engine.store import open_store
    from engine.store.liveness import process_start_time

    if not path.exists():
        return
    try:
        with open_store(path, readonly=True) as store:
            running = store.runs(status="running")
    except StoreError:  # a test that damaged the file on purpose: nothing of ours runs on it
        return
    for run in running:
        pid = run.get("pid")
        # runs a test recorded in-process carry the pid of pytest itself
        if (pid and pid != os.getpid() and run.get("pid_start") is not None
                and process_start_time(pid) == run["pid_start"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(autouse=True)
def _no_user_database_yml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep ~/.pyannote/database.yml of the machine out of the tests."""
    monkeypatch.setenv("HOME", os.environ.get("SPKEMB_TEST_HOME", str(tmp_path / "home")))
