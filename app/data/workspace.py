"""Where the TUI looks for its runs database and its database.yml (the defaults of docs/tui.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.data.database_yml import pinned_database
from engine.errors import ProtocolError
from engine.store.db import default_db_path


@dataclass(frozen=True)
class Workspace:
    """The folders and files one TUI session works on."""

    root: Path
    db_path: Path
    database_yml: Path | None

    def show(self, path: str | Path | None) -> str:
        """A path as the user should read it: relative to the workspace when inside it."""
        if not path:
            return ""
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.root))
        except (ValueError, OSError):
            return str(p)


def _database_yml(root: Path, explicit: str | None) -> Path | None:
    """``--database``, else the workspace's own file, else the one the engine would read here (the
    TUI hands it to every command it starts as ``--database``, so it must be that one). None when
    there is none, or when the engine would read several (``$PYANNOTE_DATABASE_CONFIG`` naming more
    than one file) or refuse the variable: the commands then read it themselves and say why."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    for candidate in (root / "data" / "database.yml", root / "database.yml"):
        if candidate.is_file():
            return candidate.resolve()
    try:
        pinned = pinned_database(None)
    except ProtocolError:
        return None
    return None if pinned is None else Path(pinned)


def resolve_workspace(workspace: str | Path | None = None, db: str | None = None,
                      database: str | None = None) -> Workspace:
    """Resolve ``--workspace``, ``--db`` and ``--database`` the way the engine does.

    The database follows the engine's one rule (``default_db_path``): ``--db``, else
    ``$SPKEMB_DB``, else ``WORKSPACE/runs.db`` when it exists, else ``WORKSPACE/experiments/runs.db``.
    """
    root = Path(workspace or ".").expanduser().resolve()
    db_path = default_db_path(db, workspace=root)
    if not db_path.is_absolute():
        db_path = Path.cwd() / db_path
    return Workspace(root=root, db_path=db_path, database_yml=_database_yml(root, database))
