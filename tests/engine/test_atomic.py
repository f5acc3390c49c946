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
