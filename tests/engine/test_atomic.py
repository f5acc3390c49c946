"""Replacing a file atomically (engine.atomic), on a disk that fills up under numpy's own writes."""

from __future__ import annotations

import sys
from pathlib import Path

from tests import children

# numpy writes an array through the file's descriptor (fwrite), not through Python's write: a short
# write raises an OSError without errno ("130560 requested and 17376 written"). A file size limit
# makes the same short write as a full disk, without root for a small tmpfs.
_FILL = """
import resource, signal, sys
import numpy as np
from engine.atomic import atomic_write
from engine.errors import DiskFull
target = sys.argv[1]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    atomic_write(target, lambda f: np.save(f, np.ones((100, 512), np.float32)), mode="wb")
except DiskFull as e:
    print("DiskFull:", e)
"""


def test_a_short_write_of_numpy_is_a_full_disk_with_the_target_kept(tmp_path: Path) -> None:
    target = tmp_path / "ES2004a.npy"
    target.write_bytes(b"the earlier extraction")
    done = children.run([sys.executable, "-c", _FILL, str(target)], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"DiskFull: no space left on the device of {tmp_path} while writing ES2004a.npy; "
                                  "the earlier files are intact"), done.stdout
    assert target.read_bytes() == b"the earlier extraction"
    assert [p.name for p in tmp_path.iterdir()] == ["ES2004a.npy"]  # no temporary file left


_FILL_TOGETHER = """
import resource, signal, sys
from pathlib import Path
import numpy as np
from engine.atomic import atomic_write_together
from engine.errors import DiskFull
folder = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
small = lambda f: f.write("a new index\\n")
try:
    atomic_write_together([(folder / "xvector.scp", small, "w"),
                           (folder / "xvector.ark", lambda f: np.save(f, np.ones((100, 512), np.float32)), "wb"),
                           (folder / "xvector.json", small, "w")])
except DiskFull as e:
    print("DiskFull:", e)
"""


def test_files_written_together_are_all_kept_when_the_disk_fills_during_one(tmp_path: Path) -> None:
    """embed's Kaldi archive, its index and its metadata: the index written whole before the
    archive failed is not put in place of the earlier one."""
    for name in ("xvector.scp", "xvector.ark", "xvector.json"):
        (tmp_path / name).write_text(f"the earlier {name}")
    done = children.run([sys.executable, "-c", _FILL_TOGETHER, str(tmp_path)], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"DiskFull: no space left on the device of {tmp_path} while writing xvector.ark; "
                                  "the earlier files are intact"), done.stdout
    for name in ("xvector.scp", "xvector.ark", "xvector.json"):
        assert (tmp_path / name).read_text() == f"the earlier {name}"
    assert len(list(tmp_path.iterdir())) == 3  # no temporary file left


def test_the_temporary_files_of_dead_writers_are_swept_and_no_others(tmp_path: Path) -> None:
    """A killed validate or apply left `.tmp-PID-0002.txt` / `.tmp-PID-ES2004a.npy` for ever."""
    import os
    import time

    from engine.atomic import STALE_TMP_AFTER, sweep_dead_temps

    dead, alive = children.dead_pid(), os.getpid()
    old = time.time() - STALE_TMP_AFTER - 5
    names = {"dead": f".tmp-{dead}-0002.txt", "fresh": f".tmp-{dead}-0003.txt", "alive": f".tmp-{alive}-0004.txt",
             "nameless": ".tmp-x-0005.txt", "kept": "0002.txt"}
    for key, name in names.items():
        (tmp_path / name).write_text(key)
        if key != "fresh":
            os.utime(tmp_path / name, (old, old))
    assert sorted(p.name for p in sweep_dead_temps(tmp_path)) == sorted([names["dead"], names["nameless"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["fresh"], names["alive"], names["kept"]])
    assert sweep_dead_temps(tmp_path / "missing") == []
