"""Is a path on a network filesystem? SQLite's WAL does not work there.

WAL keeps its index in shared memory (``-shm``) that only processes of one host
can share, and network filesystems' POSIX locks are unreliable
(https://www.sqlite.org/wal.html, "WAL does not work over a network filesystem").
"""

from __future__ import annotations

import os
from pathlib import Path

#: filesystem types (third column of /proc/mounts) treated as network filesystems
NETWORK_FS_TYPES = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb", "smb3", "smbfs",
    "ceph", "fuse.glusterfs", "glusterfs", "fuse.sshfs", "9p", "afs",
})


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal (\040 ...)
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def filesystem_type(path: str | os.PathLike[str], mounts: str | None = None) -> str | None:
    """Type of the filesystem holding ``path`` (which need not exist yet).

    Parameters
    ----------
    path
        A file or folder (symlinks resolved).
    mounts
        Text in the format of ``/proc/mounts``; read from there when ``None``.

    Returns
    -------
    str | None
        e.g. ``"ext4"``, ``"nfs4"``; ``None`` where ``/proc/mounts`` is unreadable.
    """
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    # realpath resolves the symlinks of the part that exists and keeps the rest
    target_str = os.path.realpath(os.fspath(path))
    best, best_type = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point, fs_type = _unescape(fields[1]), fields[2]
        inside = (target_str == mount_point or mount_point == "/"
                  or target_str.startswith(mount_point.rstrip("/") + "/"))
        # the longest matching mount point wins; a later equal one shadows an earlier
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type


def is_network_fs(path: str | os.PathLike[str], mounts: str | None = None) -> bool:
    """True when ``path`` lies on NFS, Lustre, GPFS, BeeGFS, CIFS/SMB or a similar filesystem.

    Parameters
    ----------
    path
        The database (or event) file; it need not exist yet.
    mounts
        ``/proc/mounts``-format text, read from ``/proc/mounts`` when ``None``.

    Returns
    -------
    bool
        False where the type is unknown (no ``/proc/mounts``: not Linux).
    """
    fs_type = filesystem_type(path, mounts)
    return fs_type is not None and fs_type.lower() in NETWORK_FS_TYPES
