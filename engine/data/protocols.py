"""pyannote.database protocols, read from one database.yml the way the tutorial does.

Which database.yml, and its shape, is ``engine.data.database_yml``'s. The YAML is read by
pyannote.database's own ``Registry`` (a private one per database.yml, so the process-wide registry
and whatever it loaded at import time never leak in). Torch-free: the TUI lists protocols through
this module.
"""

from __future__ import annotations

import os
import shlex
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.data.database_yml import check_shape, database_paths, import_time_files, paths_text
from engine.data.meta_protocols import resolve_meta
from engine.data.uri_lists import check_uri_list
from engine.errors import ProtocolError, yaml_problem

SUBSETS = ("train", "development", "test")

_REGISTRIES: dict[tuple[tuple[str, float], ...], Any] = {}


def get_registry(database: str | os.PathLike | None = None) -> Any:
    """A pyannote.database ``Registry`` holding the protocols of the resolved database.yml.

    Cached per (path, modification time), so that an edited database.yml is read again.
    """
    paths = database_paths(database)
    key = tuple((str(p), p.stat().st_mtime) for p in paths)
    registry = _REGISTRIES.get(key)
    if registry is not None:
        return registry
    for path in paths:
        check_shape(path)
    try:
        Registry = _registry_class()
    except Exception as e:
        for default in import_time_files():
            check_shape(default)
        raise ProtocolError(f"pyannote.database could not load a default database file "
                            f"(./database.yml, ~/.pyannote/database.yml or $PYANNOTE_DATABASE_CONFIG): "
                            f"{yaml_problem(e, with_file=True)} — fix that file") from e
    registry = Registry()
    for path in paths:
        try:
            registry.load_database(path)
        except Exception as e:  # yaml, missing lists, unknown loaders: all are the yml's fault
            raise ProtocolError(f"database file {path} cannot be loaded: {yaml_problem(e)} — fix the file "
                                f"(format: https://github.com/pyannote/pyannote-database)") from e
    _REGISTRIES[key] = registry
    return registry


def _registry_class() -> Any:
    """pyannote.database's ``Registry``, imported without the warnings of its global registry.

    When first imported, pyannote.database loads ./database.yml, ~/.pyannote/database.yml and
    $PYANNOTE_DATABASE_CONFIG into a process-wide registry, and warns ("Replacing existing ...
    protocol") for each protocol two of them define: a workspace's ./database.yml that requires
    the file the variable names is four such warnings. The engine never reads that registry
    (``get_registry`` builds its own), so they say nothing about what it uses; the same warning
    from its own registry (two files of the variable defining one protocol) still shows.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Replacing existing .* protocol by the one defined in")
        from pyannote.database.registry import Registry
    return Registry


def list_protocols(database: str | os.PathLike | None = None) -> list[str]:
    """Names (``Database.Task.Protocol``) of every protocol of the resolved database.yml, sorted."""
    registry = get_registry(database)
    try:
        return sorted(registry)
    except Exception as e:
        raise ProtocolError(f"protocols of {paths_text(database_paths(database))} cannot be listed: {e} "
                            f"— fix the database file") from e


def expected_audio(candidates: list[str]) -> str:
    """Where a file that none of its database's templates finds is expected: under the first template
    whose folder holds the file's folder (VoxCeleb2's beside VoxCeleb1's), so that it is named there,
    with what lies beside it (an ``.m4a`` to convert), and a cached index watches that path."""
    return next((p for p in candidates if os.path.isdir(os.path.dirname(p))), candidates[0])


def _audio_finder(registry: Any, paths: list[Path]) -> Callable[[Any], str]:
    """Preprocessor giving file['audio'] as a path string.

    A file the templates do not find gets the path it was expected at, so that
    ``check_files`` reports it as missing by path rather than failing the whole listing.
    """
    from pyannote.database import FileFinder

    finder = FileFinder(registry=registry)

    def audio(file: Any) -> str:
        database = file["database"]
        templates = registry.sources.get(database)
        if not templates:
            raise ProtocolError(f"database {database} has no entry under 'Databases:' in "
                                f"{paths_text(paths)} — add e.g. `{database}: /path/to/{{uri}}.wav`")
        try:
            try:
                return str(finder(file))
            except FileNotFoundError:
                return expected_audio([t.format(uri=file["uri"], database=database) for t in templates])
        except (KeyError, IndexError, ValueError) as e:  # str.format of a template such as wav/{=uri}.wav
            raise ProtocolError(f"database {database} of {paths_text(paths)}: a path template of {templates} is not "
                                f"usable ({type(e).__name__}: {e}) — write e.g. `{database}: /path/to/{{uri}}.wav` "
                                "(placeholders: {uri}, {database})") from e

    return audio


def load_protocol(name: str, database: str | os.PathLike | None = None,
                  preprocessors: dict[str, Any] | None = None) -> Any:
    """Load a pyannote.database protocol whose files carry a resolved ``file['audio']`` path.

    Parameters
    ----------
    name : str
        ``Database.Task.Protocol``, e.g. ``VoxCeleb.SpeakerVerification.VoxCeleb1``.
    database : str or PathLike, optional
        database.yml (``--database``); see ``database_paths`` for the default.
    preprocessors : dict, optional
        Extra pyannote.database preprocessors (``audio`` is set here unless given).

    Returns
    -------
    pyannote.database.Protocol

    Raises
    ------
    ProtocolError
        When no database.yml is found or the protocol is not in it (the message lists the
        protocols it holds).
    """
    paths = database_paths(database)
    registry = get_registry(database)
    parts = name.split(".")
    if len(parts) != 3 or not all(parts):
        raise ProtocolError(f"protocol name {name!r} is not of the form Database.Task.Protocol "
                            f"(e.g. VoxCeleb.SpeakerVerification.VoxCeleb1)")
    known = list_protocols(database)
    if name not in known:
        listing = ", ".join(known) if known else "none"
        raise ProtocolError(f"protocol {name} is not defined in {paths_text(paths)} (it defines: {listing}) "
                            f"— check the name or add it under 'Protocols:'")
    prep = {"audio": _audio_finder(registry, paths)}
    prep.update(preprocessors or {})
    try:
        protocol = registry.get_protocol(name, preprocessors=prep)
    except Exception as e:
        raise ProtocolError(f"protocol {name} of {paths_text(paths)} cannot be loaded: {e}") from e
    resolve_meta(name, protocol, registry, SUBSETS)  # an X. protocol's parts are found where it was
    return protocol


#: subset entries that name a list of uris or of trials (``uris``: pyannote.database's older spelling)
_LIST_KEYS = ("uri", "uris", "trial")
#: the entries pyannote.database reads line by line as text (the others through pandas, which drops a BOM)
_URI_KEYS = ("uri", "uris")
#: what some editors (Notepad, Excel's "UTF-8 CSV") write at the start of a UTF-8 file
UTF8_BOM = b"\xef\xbb\xbf"


def _listed(value: str, database_yml: str) -> Path | None:
    """The list ``value`` names (relative to ``database_yml``), or None when there is none."""
    from pyannote.database.custom import resolve_path

    try:
        return resolve_path(Path(value), Path(database_yml))
    except OSError:  # FileNotFoundError included: pyannote.database says so itself, naming the path
        return None


def _with_bom(path: Path) -> bool:
    """Whether the list ``path`` starts with a UTF-8 byte-order mark."""
    try:
        with open(path, "rb") as f:
            return f.read(len(UTF8_BOM)) == UTF8_BOM
    except OSError:
        return False


def check_subset_entries(protocol: Any, subset: str) -> None:
    """Refuse an entry of ``subset`` that pyannote.database would fail on with a TypeError when it
    lists the subset: a null or a list where a path belongs, or a file of a suffix it has no reader
    for (``uri`` misspelt); and a uri of its uri list that would lead out of the database's folder
    (``engine.data.uri_lists``). The other subsets are not read, so not checked.

    Raises
    ------
    ProtocolError
        Naming the database.yml, the protocol, the subset and the entry (an escaping uri: the
        list's ``FILE:LINE`` and the uri).
    """
    from pyannote.database.custom import LOADERS

    name = getattr(protocol, "name", type(protocol).__name__)
    checked: set[Path] = set()  # a subset's methods share its entries: each list is read once
    for method in ("iter", "trial"):
        # pyannote.database binds the subset's entries and its database.yml to its methods (functools.partial)
        keywords = getattr(getattr(protocol, f"{subset}_{method}", None), "keywords", None) or {}
        entries, where = keywords.get("entries"), keywords.get("database_yml")
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            # lists are paths; other entries are paths, {uri} templates, or numbers
            path = isinstance(value, str) and value != ""
            if not (path or (key not in _LIST_KEYS and isinstance(value, (int, float)))):
                raise ProtocolError(f"{where}: protocol {name}, {subset}: {key}: {value!r} is not a file path "
                                    f"— write e.g. `{key}: lists/{subset}.{key}.txt`")
            suffix = Path(value).suffix if path else ""
            if path and key not in _LIST_KEYS and "{" not in value and suffix not in LOADERS:
                raise ProtocolError(f"{where}: protocol {name}, {subset}: {key}: {value}: no reader for "
                                    f"{suffix or 'suffix-less'} files (it reads {', '.join(sorted(LOADERS))}) — "
                                    "check the entry's name (uri, trial, annotation, annotated) and its file")
            listed = _listed(value, where) if path and key in _URI_KEYS and where is not None else None
            if listed is None or listed in checked:
                continue
            checked.add(listed)
            if _with_bom(listed):
                fix = rf"sed -i '1s/^\xEF\xBB\xBF//' {shlex.quote(str(listed))}"
                raise ProtocolError(f"{where}: protocol {name}, {subset}: {key}: {listed} starts with a UTF-8 "
                                    "byte-order mark, which pyannote.database reads into its first uri — save it "
                                    f"as UTF-8 without one (e.g. `{fix}`)")
            check_uri_list(listed, f"protocol {name}, {subset}")


def check_protocol(name: str, subset: str, database: str | os.PathLike | None = None) -> None:
    """Refuse a protocol or subset that cannot be listed, without listing it: a command calls this
    before it records its run or makes a folder, so that a misspelt name leaves nothing behind.

    Raises
    ------
    ProtocolError
        No database.yml, a protocol it does not define, a subset that is none, or an entry of the
        subset that pyannote.database would fail on.
    """
    if subset not in SUBSETS:
        raise ProtocolError(f"subset {subset!r} is not one of {', '.join(SUBSETS)}")
    check_subset_entries(load_protocol(name, database), subset)


def subset_files(protocol: Any, subset: str) -> list[Any]:
    """Every file of one subset of a protocol, as a list.

    Raises
    ------
    ProtocolError
        When the protocol has no such subset, or one of its lists cannot be read.
    """
    return list(iter_subset(protocol, subset))


def iter_subset(protocol: Any, subset: str) -> Iterator[Any]:
    """The files of one subset of a protocol, one at a time (``subset_files`` without the list).

    Raises
    ------
    ProtocolError
        When the protocol has no such subset, or one of its lists cannot be read.
    """
    name = getattr(protocol, "name", type(protocol).__name__)
    if subset not in SUBSETS:
        raise ProtocolError(f"subset {subset!r} is not one of {', '.join(SUBSETS)}")
    check_subset_entries(protocol, subset)
    try:
        # a blank line of the uri list (one at its end, say) names no file: pyannote.database yields it
        yield from (file for file in getattr(protocol, subset)() if str(file["uri"]).strip())
    except NotImplementedError as e:
        raise ProtocolError(f"protocol {name} has no {subset} subset — choose another --subset") from e
    except FileNotFoundError as e:
        raise ProtocolError(f"protocol {name}, subset {subset}: {e} — fix the path in database.yml") from e
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        # pandas failing on the subset's RTTM or UEM (a start that is no number, a byte that is not
        # UTF-8): its line is named where it can be found
        from engine.data.reference_lines import check_subset_files

        check_subset_files(protocol, subset)
        raise ProtocolError(f"protocol {name}, subset {subset}: its files cannot be listed "
                            f"({type(e).__name__}: {e}) — fix the files its entries in database.yml name") from e
