"""YAML with line numbers: every key and list item keeps the line it was written on.

The one home for reading a small YAML file the engine trusts no more than its user (config.yml,
params.yml): safe loader, UTF-8 checked, duplicate keys, recursive aliases and alias bombs refused,
each in one ``ConfigError`` naming the file and the line; a pipe never blocks the open, and no more
than ``MAX_YAML_BYTES`` are read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from engine.errors import ConfigError

#: values an alias may repeat in one file, all aliases together: a config repeats a few dozen; ten
#: aliases each repeating the one before ten times ("billion laughs") would be ten billion
MAX_REPEATED_VALUES = 10_000

#: bytes read of a YAML file at most: a config is a few kB; a device (/dev/zero) would never end
MAX_YAML_BYTES = 16 * 2**20


class Source:
    """A parsed YAML document, the line of each dotted key, and where it came from."""

    def __init__(self, data: Any, lines: dict[str, int], name: str) -> None:
        self.data, self.lines, self.name = data, lines, name

    def line(self, key: str) -> int | None:
        """Line of ``key`` (``a.b.c``, ``a[0].b``), else of its nearest written parent."""
        while key:
            if key in self.lines:
                return self.lines[key]
            cut = max(key.rfind("."), key.rfind("["))
            key = key[:cut] if cut > 0 else ""
        return None

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError naming ``key``, its line and this source."""
        return ConfigError(message, source=self.name, key=key, line=self.line(key))



class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as the number YAML 1.2 (and every researcher) means:
    YAML 1.1, which PyYAML follows, wants a dot (``1.0e-3``) and reads ``1e-3`` as text."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))

def read_yaml_file(path: str | os.PathLike[str]) -> Source:
    """Read the YAML file ``path`` as :func:`read_yaml` reads text.

    Raises
    ------
    FileNotFoundError
        There is no such file (the caller knows what its absence means).
    ConfigError
        The file cannot be read, is not UTF-8 text, or is not YAML :func:`read_yaml` accepts.
    """
    path = Path(path)
    try:
        data = _read_bounded(path)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ConfigError(f"cannot be read ({e.strerror or e})", source=str(path)) from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save it as UTF-8",
                          source=str(path), line=line) from None
    return read_yaml(text, str(path))


def _read_bounded(path: Path) -> bytes:
    """The bytes of ``path``, at most ``MAX_YAML_BYTES`` of them.

    The open does not wait: a named pipe that no one writes to reads as empty instead of blocking
    the command. Once open, reads wait again, so that a pipe with a writer (``<(…)`` in a shell) is
    read whole.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"larger than {MAX_YAML_BYTES >> 20} MiB, which no YAML file of spkemb's is (a config: a "
                          "few kB); give the YAML file itself", source=str(path))
    return data


def read_yaml(text: str, name: str) -> Source:
    """Parse ``text`` with the safe loader, recording the line of every key.

    Raises
    ------
    ConfigError
        Invalid YAML (with its line and column), a key that is not a name, a key written twice in
        one mapping (PyYAML would silently keep the last one), an alias inside the value it names
        (a structure holding itself), aliases repeating more than ``MAX_REPEATED_VALUES`` values,
        or values nested too deeply to read.
    """
    loader = None
    try:
        loader = _Loader(text)  # refuses a control character (NUL) at once: ReaderError
        node = loader.get_single_node()
        walk = _Walk(loader, name)
        data = None if node is None else walk.value(node, "")
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "unreadable"
        where = f" (column {mark.column + 1})" if mark is not None else ""
        if e.context and e.context_mark is not None and e.problem_mark is not None:
            where += f", {e.context} on line {e.context_mark.line + 1}"
        raise ConfigError(f"invalid YAML: {problem}{where}; fix the syntax there",
                          source=name, line=None if mark is None else mark.line + 1) from e
    except yaml.YAMLError as e:
        # a ReaderError's second line says "in <unicode string>, position N": the first says what
        raise ConfigError(f"invalid YAML: {(str(e).splitlines() or ['unreadable'])[0]}", source=name) from e
    except ValueError as e:
        # Python refuses to read an integer of more than 4,300 digits (int_max_str_digits)
        raise ConfigError(f"a number too long to read ({e}); write a number of sensible size", source=name) from e
    except RecursionError:
        # PyYAML composes nested lists and mappings by recursion: `[[[[…` hundreds deep ends Python's stack
        raise ConfigError("values nested too deeply to read (hundreds of levels of lists or mappings); "
                          "a config is a few levels deep: fix the file", source=name) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Source(data, walk.lines, name)


class _Walk:
    """One document's nodes to Python values, recording the line of each key and list item."""

    def __init__(self, loader: _Loader, name: str) -> None:
        self.loader, self.name = loader, name
        self.lines: dict[str, int] = {}
        #: the nodes being walked (an alias to one of them is a structure holding itself)
        self.open: set[int] = set()
        #: every node walked once; walking one again is an alias repeating it
        self.seen: set[int] = set()
        self.repeated = 0

    def value(self, node: yaml.Node, path: str) -> Any:
        self._count(node, path)
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return self.loader.construct_object(node, deep=True)
        self.open.add(id(node))
        try:
            return self._mapping(node, path) if isinstance(node, yaml.MappingNode) else self._sequence(node, path)
        finally:
            self.open.discard(id(node))

    def _count(self, node: yaml.Node, path: str) -> None:
        """Refuse an alias inside the value it names, and aliases that repeat too much."""
        if id(node) in self.open:
            raise ConfigError("an alias (*name) inside the value its anchor (&name) names makes a structure "
                              "that holds itself; write the value out", source=self.name, key=path or None,
                              line=self.lines.get(path))
        if id(node) in self.seen:
            self.repeated += 1
            if self.repeated > MAX_REPEATED_VALUES:
                raise ConfigError(f"its aliases (*name) repeat more than {MAX_REPEATED_VALUES:,} values (aliases "
                                  "of aliases multiply); write the values out", source=self.name)
        self.seen.add(id(node))

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict[str, Any]:
        self.loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):  # shown by kind: an alias bomb has no short repr
                kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                raise ConfigError(f"a key that is a {kind} is not a name: keys are words such as `params`",
                                  source=self.name, key=path or None, line=line)
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ConfigError(f"key {key!r} is not a name: keys are words such as `params`",
                                  source=self.name, key=path or None, line=line)
            key_path = f"{path}.{key}" if path else key
            if key in out:
                raise ConfigError(f"written twice (first on line {self.lines[key_path]}); keep one",
                                  source=self.name, key=key_path, line=line)
            self.lines[key_path] = line
            out[key] = self.value(value_node, key_path)
        return out

    def _sequence(self, node: yaml.SequenceNode, path: str) -> list[Any]:
        items = []
        for i, item in enumerate(node.value):
            item_path = f"{path}[{i}]"
            self.lines[item_path] = item.start_mark.line + 1
            items.append(self.value(item, item_path))
        return items
