"""Which database.yml the engine reads, and whether it is nested as pyannote.database reads it.

``--database FILE``, else ``$PYANNOTE_DATABASE_CONFIG`` (one path, or several separated by ``;``),
else ``./database.yml``, else ``~/.pyannote/database.yml``; and the files pyannote.database itself
loads when first imported, whichever of them the engine uses. Torch-free, and free of
pyannote.database: the shape check runs before pyannote.database reads a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from engine.errors import ProtocolError


def database_paths(database: str | os.PathLike | None = None) -> list[Path]:
    """The database.yml file(s) to use, in pyannote's order of precedence.

    Parameters
    ----------
    database : str or PathLike, optional
        Explicit database.yml (``--database``); it must exist.

    Returns
    -------
    list of Path
        One or more existing database.yml files.

    Raises
    ------
    ProtocolError
        When the explicit or environment file is missing, or when none is found at all.
    """
    if database is not None:
        path = Path(database).expanduser()
        if not path.is_file():
            raise ProtocolError(f"database file {path} {_not_a_file(path)} — check --database")
        return [path.resolve()]
    paths = _environment_files()
    if paths:
        missing = [f"{p}, which {_not_a_file(p)}" for p in paths if not p.is_file()]
        if missing:
            raise ProtocolError(f"PYANNOTE_DATABASE_CONFIG names {'; '.join(missing)} — fix the variable or "
                                "pass --database FILE")
        return [p.resolve() for p in paths]
    for path in _usual_files():
        if path.is_file():
            return [path.resolve()]
    raise ProtocolError("no database.yml found — pass --database FILE, set PYANNOTE_DATABASE_CONFIG, "
                        "or create ./database.yml (`spkemb-engine demo-data DIR` writes one)")


def pinned_database(database: str | os.PathLike | None = None) -> str | None:
    """The ``--database`` to hand a command that runs later or from another folder (a queued sweep
    trial, a SLURM job): the file resolved here, absolute, so that it reads what this folder reads.

    None when ``$PYANNOTE_DATABASE_CONFIG`` names several files (the queue and SLURM jobs inherit the
    variable) or when no database.yml is found here (the job then looks where it runs). A missing
    explicit or environment file is refused, as :func:`database_paths` refuses it.
    """
    try:
        paths = database_paths(database)
    except ProtocolError:
        if database is None and not _environment_files():
            return None  # none here: the job looks where it runs
        raise
    return str(paths[0]) if len(paths) == 1 else None


def _not_a_file(path: Path) -> str:
    """Why ``path`` is no database.yml: missing, a pipe or a device, or a folder (with the file inside
    it, when there is one)."""
    if not path.is_dir():
        return "is not a regular file" if path.exists() else "does not exist"
    inside = path / "database.yml"
    return f"is a folder: pass {inside}" if inside.is_file() else "is a folder, not a database.yml"


def paths_text(paths: list[Path]) -> str:
    """The files, as an error line names them."""
    return ", ".join(str(p) for p in paths)


#: the nesting pyannote.database expects under `Protocols:`, one level each
PROTOCOL_LEVELS = ("each database name to its tasks", "each task name to its protocols",
                   "each protocol name to its subsets")


def check_shape(path: Path) -> None:
    """Refuse a database.yml whose `Databases:` or `Protocols:` is not nested as pyannote.database reads
    it, naming the key: pyannote.database itself fails there on a Python error of its own
    (``pop expected at most 1 argument``). Text that is not YAML is left to its loader, which names the
    line."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError:
        return
    if data is None:
        return
    fix = "— fix the file (format: https://github.com/pyannote/pyannote-database)"
    if not isinstance(data, dict):
        raise ProtocolError(f"database file {path} holds {_kind(data)}, not the `Databases:` and "
                            f"`Protocols:` sections {fix}")
    example = "(e.g. `VoxCeleb: /data/voxceleb/{uri}.wav`)"
    databases = data.get("Databases", {})
    if not isinstance(databases, dict):
        raise ProtocolError(f"database file {path}: `Databases:` must map each database to its audio path template "
                            f"{example}, not {_kind(databases)} {fix}")
    for name, template in databases.items():
        if not (isinstance(template, str) or isinstance(template, list) and all(isinstance(t, str) for t in template)):
            raise ProtocolError(f"database file {path}: `Databases.{name}:` must be an audio path template {example} "
                                f"or a list of them, not {_kind(template)} {fix}")
        for each in [template] if isinstance(template, str) else template:
            if each.startswith("~"):  # pyannote.database takes it for a folder named ~ beside this file
                raise ProtocolError(f"database file {path}: `Databases.{name}: {each}` — pyannote.database does not "
                                    f"expand ~ in audio path templates: write the whole path "
                                    f"({os.path.expanduser(each.split('/')[0])}/…) {fix}")
    _check_level(path, data.get("Protocols", {}), "Protocols", 0, fix)
    _check_meta_name(path, databases, data.get("Protocols"), fix)


#: the database name pyannote.database keeps for meta-protocols, whose subsets list other protocols'
#: subsets (``X.SpeakerDiarization.Both: train: {A.SpeakerDiarization.P: [train]}``)
META_DATABASE = "X"
#: the subsets of a protocol, as pyannote.database reads them
_SUBSETS = ("files", "train", "development", "test", "train_trial", "development_trial", "test_trial")


def _check_meta_name(path: Path, databases: dict, protocols: object, fix: str) -> None:
    """Refuse a database named X: pyannote.database reads a protocol under `Protocols: X:` as a
    meta-protocol, each entry of a subset as the name of another protocol, and fails on `uri:` with a
    Python error of its own (``not enough values to unpack``). A real meta-protocol passes."""
    reserved = f"`{META_DATABASE}` is pyannote.database's reserved name for meta-protocols"
    if META_DATABASE in databases:
        raise ProtocolError(f"database file {path}: `Databases.{META_DATABASE}:` — {reserved}, which combine other "
                            f"protocols' subsets and have no audio of their own: rename that database {fix}")
    for where, entries in _meta_subsets(protocols):
        wrong = ([f"`{key}`" for key in entries if len(str(key).split(".")) != 3] if isinstance(entries, dict)
                 else [_kind(entries)])
        if wrong:
            raise ProtocolError(f"database file {path}: `{where}:` lists {wrong[0]}, not other protocols' subsets "
                                f"(`Database.Task.Protocol: [train]`) — {reserved}: rename that database {fix}")


def _meta_subsets(protocols: object) -> Iterator[tuple[str, object]]:
    """(``Protocols.X.Task.Protocol.subset``, its entries) of each subset under `Protocols: X:`."""
    tasks = protocols.get(META_DATABASE) if isinstance(protocols, dict) else None
    for task, named in (tasks or {}).items():  # nested as _check_level requires, down to the protocols
        for protocol, subsets in named.items():
            for subset, entries in subsets.items() if isinstance(subsets, dict) else ():
                if subset in _SUBSETS:
                    yield f"Protocols.{META_DATABASE}.{task}.{protocol}.{subset}", entries


def _environment_files() -> list[Path]:
    """The files $PYANNOTE_DATABASE_CONFIG names (several separated by ``;``)."""
    env = os.environ.get("PYANNOTE_DATABASE_CONFIG", "")
    return [Path(p).expanduser() for p in env.split(";") if p.strip()]


def _usual_files() -> tuple[Path, Path]:
    """./database.yml and ~/.pyannote/database.yml."""
    return Path.cwd() / "database.yml", Path("~/.pyannote/database.yml").expanduser()


def import_time_files() -> list[Path]:
    """The files pyannote.database loads when first imported, whichever --database names."""
    return [p for p in (*_usual_files(), *_environment_files()) if p.is_file()]


def _kind(value: object) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def _check_level(path: Path, node: object, where: str, level: int, fix: str) -> None:
    if level == len(PROTOCOL_LEVELS):
        return
    if not isinstance(node, dict):
        raise ProtocolError(f"database file {path}: `{where}:` must map {PROTOCOL_LEVELS[level]} (Protocols: → "
                            f"Database: → Task: → Protocol: → train: …), not {_kind(node)} {fix}")
    if not node and level > 0:  # pyannote.database: "This database does not implement any protocol."
        raise ProtocolError(f"database file {path}: `{where}:` must map {PROTOCOL_LEVELS[level]} (Protocols: → "
                            f"Database: → Task: → Protocol: → train: …), not an empty mapping {fix}")
    for key, child in node.items():
        _check_level(path, child, f"{where}.{key}", level + 1, fix)
