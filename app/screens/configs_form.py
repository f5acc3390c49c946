"""The config form of the Configs screen: one field per parameter, each checked as typed, and the
whole config checked the way ``config check`` does, with its YAML beside it."""

from __future__ import annotations

import re
from typing import Any, cast

from rich.syntax import Syntax
from textual import on
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Input, Select, Static

from app.data.experiments import flatten, from_text, to_text, unflatten
from app.screens.host import SpkembScreen
from app.views.plain import plain
from app.widgets.key_label import KeyLabel
from engine.config import FIELD_SPECS, config_from_dict, dump_yaml, validate_field
from engine.config.specs import FBANK_BACKBONES, Component, component, find_component
from engine.errors import ConfigError
from engine.layout import CONFIG

_SECTION_NAME = re.compile(r"^([a-z_]+)(\[\d+\])?\.name$")

#: the spec row of each key (the first row of a key wins)
SPECS = {spec.key: spec for spec in reversed(FIELD_SPECS)}


def _short(section: str, name: Any) -> str:
    spec = SPECS.get(f"{section}.name")
    for choice in spec.choices if spec else ():
        if str(name) == choice or str(name).endswith("." + choice):
            return choice
    return str(name)


def _defaults(comp: Component) -> dict[str, Any]:
    """A component's parameters at their defaults, as a config's ``params`` holds them (SincTDNN's
    ``sincnet.stride`` in a ``sincnet`` mapping)."""
    params: dict[str, Any] = {}
    for p in comp.params:
        if p.default is not None or not p.required:
            *groups, name = p.name.split(".")
            node = params
            for group in groups:
                node = node.setdefault(group, {})
            node[name] = list(p.default) if isinstance(p.default, tuple) else p.default
    return params


class ConfigForm(SpkembScreen):
    """A screen with the form in ``#form``, its check in ``#status`` and its YAML in ``#yaml`` (Configs)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []
        self.names: dict[str, str] = {}
        self.gen = 0
        self.data: dict[str, Any] | None = None
        #: a check is scheduled: the burst of Changed that a form posts as it mounts costs one check
        self._check_due = False

    def _build_form(self, data: dict[str, Any]) -> None:
        form = self.query_one("#form", VerticalScroll)
        form.remove_children()
        flat = flatten(data)
        self.gen += 1
        self.keys = list(flat)
        rows = []
        names: dict[str, str] = {}
        widget: Input | Select[str]
        for i, (key, value) in enumerate(flat.items()):
            section = key.split(".")[0].split("[")[0]
            spec = SPECS.get(key) or SPECS.get(f"{section}.params.{key.rsplit('.', 1)[-1]}")
            if key.endswith(".name") and key.count(".") == 1 and SPECS.get(key):
                choices = SPECS[key].choices
                short = _short(section, value)
                options = [(c, c) for c in choices] + ([] if short in choices else [(short, short)])
                widget = Select(options, value=short, allow_blank=False, id=self.fid(i))
                names[key] = short
            else:
                widget = Input(to_text(value), id=self.fid(i))
            if spec is not None:
                widget.tooltip = spec.help
            rows.append(Vertical(Horizontal(KeyLabel(key), widget, classes="field"),
                                 Static("", id=self.eid(i), classes="field-error"), classes="field"))
        form.mount_all(rows)
        #: each section's name as the form was built with it (a Select says Changed on mount too)
        self.names = names
        self._validate_soon()

    def fid(self, i: int) -> str:
        return f"f{self.gen}-{i}"

    def eid(self, i: int) -> str:
        return f"e{self.gen}-{i}"

    def field(self, key: str):
        """The input widget of a form field."""
        return self.query_one(f"#{self.fid(self.keys.index(key))}")

    def field_error(self, key: str) -> Static:
        return self.query_one(f"#{self.eid(self.keys.index(key))}", Static)

    def _form_data(self) -> dict[str, Any]:
        flat: dict[str, Any] = {}
        for i, key in enumerate(self.keys):
            widget = self.query_one(f"#{self.fid(i)}")
            flat[key] = str(widget.value) if isinstance(widget, Select) else from_text(cast(Input, widget).value)
        return unflatten(flat)

    @on(Input.Changed, "#form Input")
    def _field_changed(self) -> None:
        self._validate_soon()

    def _validate_soon(self) -> None:
        """Check the form after the next refresh, once for every change made until then.

        Each field posts Changed when it mounts: checking the whole config on each of them made
        opening the form take seconds.
        """
        if not self._check_due:
            self._check_due = True
            self.call_after_refresh(self._scheduled_check)

    def _scheduled_check(self) -> None:
        self._check_due = False
        self._validate()

    @on(Select.Changed, "#form Select")
    def _name_changed(self, event: Select.Changed) -> None:
        """Another name for a section: its fields become that name's parameters, at their defaults.

        Another architecture also brings its front end: a filterbank backbone switches
        feature_extraction to Fbank (at its defaults, the sample rate kept), SincTDNN back to
        RawAudio, so that the form never holds a pair ``config check`` refuses just by picking one.
        """
        key = next((k for i, k in enumerate(self.keys) if self.fid(i) == event.select.id), None)
        match = _SECTION_NAME.match(key or "")
        comp = find_component(match.group(1), str(event.value)) if match else None
        try:
            data = self._form_data()
        except NoMatches:
            return
        node = data.get(match.group(1)) if match else None
        if match and match.group(2) and isinstance(node, list):
            node = node[int(match.group(2)[1:-1])]
        changed = False
        if comp is not None and isinstance(node, dict) and set(
                node.get("params") or {}) != {p.name.split(".")[0] for p in comp.params}:
            node["params"] = _defaults(comp)
            changed = True
        if comp is not None and comp.section == "architecture" and self.names.get(key or "") != comp.name:
            changed = self._front_end_for(data, comp.name) or changed
        if key:
            self.names[key] = str(event.value)
        if not changed:
            self._validate_soon()
            return
        # not from inside the handler of a Select the rebuild removes
        self.call_after_refresh(self._build_form, data)

    def _front_end_for(self, data: dict[str, Any], architecture: str) -> bool:
        """Set ``data``'s feature_extraction to the one ``architecture`` reads (True: it changed)."""
        want = "Fbank" if architecture in FBANK_BACKBONES else "RawAudio" if architecture == "SincTDNN" else None
        node = data.get("feature_extraction")
        have = _short("feature_extraction", node.get("name")) if isinstance(node, dict) else "RawAudio"
        if want is None or have == want:
            return False
        params = _defaults(component("feature_extraction", want))
        old = node.get("params") if isinstance(node, dict) else None
        if isinstance(old, dict) and "sample_rate" in old:
            params["sample_rate"] = old["sample_rate"]
        data["feature_extraction"] = {"name": want, "params": params}
        self.app.notify(f"feature_extraction set to {want}: {architecture} reads "
                        f"{'log-mel filterbanks' if want == 'Fbank' else 'the raw waveform'}")
        return True

    def _validate(self) -> bool:
        """Check each field, then the whole config the way ``config check`` does; show the YAML."""
        if not self.keys:
            return False
        try:
            data = self._form_data()
        except NoMatches:  # the form is being rebuilt
            return False
        ok = True
        for i, key in enumerate(self.keys):
            error = ""
            widget = self.query_one(f"#{self.fid(i)}")
            section = key.split(".")[0]
            if key in SPECS and isinstance(widget, Input):
                name = data.get(section, {}).get("name") if isinstance(data.get(section), dict) else None
                error = validate_field(key, widget.value, _short(section, name) if name else None) or ""
            self.query_one(f"#{self.eid(i)}", Static).update(plain(error))
            ok = ok and not error
        status = self.query_one("#status", Static)
        try:
            config_from_dict(data, source=CONFIG)
        except ConfigError as e:
            ok = False
            status.update(plain(e, "red"))
            if e.key in self.keys:
                cell = self.field_error(e.key)
                cell.update(plain(e))
        else:
            if ok:
                status.update("[green]valid[/green] — the same checks as `spkemb-engine config check`")
            else:
                status.update("[red]fix the fields marked in red[/red]")
        self.data = data
        self.query_one("#yaml", Static).update(Syntax(dump_yaml(data), "yaml", theme="ansi_dark"))
        return ok
