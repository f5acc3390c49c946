"""``make test``'s start-up module: libraries imported untraced, our own lines all measured."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import coverage
import numpy

from tests import children

SITE = Path(__file__).resolve().parent / "coverage_site"

# numpy is imported half-way through a function: every line around it must be measured
PROBE = """\
import json


def probe():
    import numpy
    inside = json.dumps(numpy.float64(1.5).item())
    return inside


value = probe()
after = value
"""


def test_a_library_is_imported_untraced_and_every_line_around_it_is_measured(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    numpy_dir = Path(numpy.__file__).parent
    data_file = tmp_path / "probe.coverage"
    rc = tmp_path / "probe.coveragerc"
    # numpy is measured too here: none of its lines may be recorded
    rc.write_text(f"[run]\nsource =\n    {tmp_path}\n    {numpy_dir}\ndata_file = {data_file}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}  # this suite's own
    env.update(PYTHONPATH=str(SITE), COVERAGE_PROCESS_START=str(rc))
    done = children.run([sys.executable, str(probe)], env=env, timeout=120)
    assert done.returncode == 0, done.stderr

    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    assert sorted(data.lines(str(probe)) or []) == [1, 4, 5, 6, 7, 10, 11]
    # (numpy's files are listed, each with no line: coverage lists every file under a source)
    assert not [f for f in data.measured_files() if f.startswith(str(numpy_dir)) and data.lines(f)]

