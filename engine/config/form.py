"""The TUI's config form: one field per section name and per parameter of the spec table.

:func:`config_fields` and :func:`validate_field` read the same table as the parser
(:mod:`engine.config.specs`), so the form and ``config check`` apply exactly the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.config.specs import SECTION_DEFAULTS, SECTIONS, accepted_names, components, find_component
from engine.config.values import Invalid, unknown_name
from engine.config.yamlsrc import read_yaml
from engine.errors import ConfigError


@dataclass(frozen=True)
class FieldSpec:
    """One field of the config form, keyed as in :func:`engine.config.config_to_dict`.

    ``names`` lists the section names the field applies to (empty for a ``*.name`` field);
    the same key can appear twice when two names give it different defaults.
    """

    key: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


def config_fields() -> list[FieldSpec]:
    """Every field of a config: each section's ``name`` (with its choices) and each parameter."""
    fields: list[FieldSpec] = []
    for section in SECTIONS:
        names = tuple(c.name for c in components(section))
        default = SECTION_DEFAULTS[section] or names[0]
        fields.append(FieldSpec(f"{section}.name", "choice", default,
                                f"which {section.replace('_', ' ')} to use", choices=names))
        merged: dict[tuple[str, Any, str], list[str]] = {}
        for comp in components(section):
            for p in comp.params:
                merged.setdefault((p.name, p.default, p.help), []).append(comp.name)
        for (name, default, help_), users in merged.items():
            p = next(p for c in components(section) for p in c.params if p.name == name)
            fields.append(FieldSpec(f"{section}.params.{name}", p.kind, default, help_,
                                    names=tuple(users)))
    return fields


def validate_field(key: str, text: str, name: str | None = None) -> str | None:
    """The problem with ``text`` typed in field ``key`` (for section name ``name``), or None.

    ``text`` is read as YAML (``0.05``, ``true``, ``[5, 1, 1]``); the type and range rules
    are those of ``spkemb-engine config check``. Rules between fields (snr_min <= snr_max)
    are checked when the whole config is parsed.
    """
    section, _, rest = key.partition(".")
    if section not in SECTIONS:
        return f"unknown section {section!r}; accepted: {', '.join(SECTIONS)}"
    try:
        value = read_yaml(text, key).data
    except ConfigError as e:
        return f"not a YAML value: {e}"
    if rest == "name":
        if find_component(section, value) is None:
            return f"{unknown_name(value)}; accepted: {accepted_names(section)}"
        return None
    param_name = rest.removeprefix("params.")
    comps = [c for c in components(section) if name is None or find_component(section, name) is c]
    params = [p for c in comps if (p := c.param(param_name)) is not None]
    if not params:
        return f"unknown field {key!r}"
    try:
        params[0].value(value)
    except Invalid as e:
        return str(e)
    return None


#: :func:`config_fields`, computed once
FIELD_SPECS: tuple[FieldSpec, ...] = tuple(config_fields())
