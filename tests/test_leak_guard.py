"""The suite's guard against leaked processes, on a pytest run of its own."""

from __future__ import annotations

import ast
import os
import sys
import uuid
from pathlib import Path

import pytest

from tests import children

REPO = Path(__file__).resolve().parents[1]

LEAKY = '''
import subprocess


def test_clean():
    subprocess.run(["true"], check=True)


def test_leaks_a_child():
    subprocess.Popen(["sleep", "{child}"])


def test_leaks_an_orphan():
    # the shell ends at once: its sleep, adopted by init, is no descendant of pytest any more
    subprocess.run(["sh", "-c", "exec >/dev/null 2>&1; sleep {orphan} &"], check=True)
'''


@pytest.mark.slow
def test_a_test_that_leaves_a_process_behind_fails_naming_it(tmp_path: Path) -> None:
    # durations no other process on the machine has: they name the leaked processes
    child, orphan = (f"60.{uuid.uuid4().int % 10**9}" for _ in range(2))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_leaky.py").write_text(LEAKY.format(child=child, orphan=orphan))
    done = children.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                         "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(tmp_path)],
                        cwd=REPO, timeout=300, env={**os.environ, "SPKEMB_TEST_LEAK_GRACE": "0.5"})
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    assert "3 passed, 2 errors" in out, out[-3000:]  # the leaks fail at teardown
    assert "ERROR at teardown of test_leaks_a_child" in out and "ERROR at teardown of test_leaks_an_orphan" in out
    assert "the test left processes running (now killed):\n  pid " in out
    assert f"sleep {child}" in out and f"sleep {orphan}" in out
    left = [p for p in children.processes().values() if p.alive and p.command in (f"sleep {child}",
                                                                                   f"sleep {orphan}")]
    assert not left


#: the calls that start a process; in the tests, only ``tests.children`` makes them
_STARTS = {("subprocess", name) for name in ("run", "Popen", "call", "check_call", "check_output")} | {
    ("os", "system"), ("os", "popen"), ("asyncio", "create_subprocess_exec"), ("asyncio", "create_subprocess_shell")}


def test_every_child_of_a_test_starts_through_tests_children() -> None:
    """A child started by hand has no session of its own, no timeout that kills its tree, and
    outlives a killed pytest: ``tests.children`` (run, spawn, started) gives it all three."""
    found = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path == REPO / "tests" / "children.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in _STARTS):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node.func)}")
    assert not found, "start these through tests.children (run, spawn or started):\n" + "\n".join(found)
