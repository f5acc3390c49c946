"""YAML with line numbers: every key and list item keeps the line it was written on."""

from __future__ import annotations

from typing import Any

import yaml

from engine.errors import ConfigError


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


def read_yaml(text: str, name: str) -> Source:
    """Parse ``text`` with the safe loader, recording the line of every key.

    Raises
    ------
    ConfigError
        Invalid YAML (with its line and column), a key that is not a name, or a key
        written twice in one mapping (PyYAML would silently keep the last one).
    """
    lines: dict[str, int] = {}
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # refuses a control character (NUL) at once: ReaderError
        node = loader.get_single_node()
        data = None if node is None else _walk(loader, node, "", lines, name)
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
    finally:
        if loader is not None:
            loader.dispose()
    return Source(data, lines, name)


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: str, lines: dict[str, int],
          name: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ConfigError(f"key {key!r} is not a name: keys are words such as `params`",
                                  source=name, key=path or None, line=line)
            key_path = f"{path}.{key}" if path else key
            if key in out:
                raise ConfigError(f"written twice (first on line {lines[key_path]}); keep one",
                                  source=name, key=key_path, line=line)
            lines[key_path] = line
            out[key] = _walk(loader, value_node, key_path, lines, name)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            item_path = f"{path}[{i}]"
            lines[item_path] = item.start_mark.line + 1
            items.append(_walk(loader, item, item_path, lines, name))
        return items
    return loader.construct_object(node, deep=True)
