"""Configs: start from a template or an experiment, edit one field per parameter, save config.yml."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Header, Input, Label, Select, Static

from app.data import reader
from app.data.experiments import find_experiments, free_inside, next_free
from app.data.forks import ForkPlan
from app.screens.configs_form import ConfigForm
from app.widgets.keys_footer import KeysFooter
from engine.config import (
    TEMPLATES,
    config_from_dict,
    config_to_dict,
    dump_yaml,
    load_config,
    parse_config,
    template_text,
)
from engine.errors import ConfigError, PathError
from engine.layout import CONFIG, ExperimentDir
from engine.safe_paths import contained_path


def experiment_folder(root: Path, text: str) -> Path | str:
    """The experiment folder typed in the form, inside the workspace; else why it is refused."""
    path = Path(text).expanduser()
    if path.is_absolute():
        try:  # a folder of the workspace typed in full is fine
            text = str(path.resolve().relative_to(root))
        except ValueError:
            return (f"experiment folder {text!r} is outside the workspace {root}: give a folder "
                    "inside it, e.g. experiments/exp1")
    relative = str(PurePosixPath(text))  # "./a//b/" is "a/b"; ".." stays and is refused
    if relative == ".":  # the workspace itself holds the experiment
        return root
    try:
        return contained_path(root, relative, what=f"experiment folder {text!r}",
                              fix="give a folder inside the workspace, e.g. experiments/exp1")
    except PathError as e:
        return str(e)


def _from_cwd(path: Path) -> str:
    """``path`` as a shell in the working directory would name it: relative when below it."""
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


class ConfigsScreen(ConfigForm):
    #: under 120 columns the preview goes and the names narrow: at 80, 42-column names left each value 4
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    DEFAULT_CSS = """
    ConfigsScreen.-narrow #preview { display: none; }
    ConfigsScreen.-narrow .field > Label { width: 40%; }
    ConfigsScreen.-narrow .field-error { padding-left: 0; }
    ConfigsScreen #body { height: 1fr; }
    ConfigsScreen #form { width: 3fr; }
    ConfigsScreen #preview { width: 2fr; border: round $primary-darken-2; }
    ConfigsScreen .field { height: auto; }
    ConfigsScreen .field > Label { width: 42; padding: 1 1 0 0; }
    ConfigsScreen .field Input, ConfigsScreen .field Select { width: 1fr; }
    ConfigsScreen .field-error { color: $error; padding-left: 42; height: auto; }
    ConfigsScreen #status { height: auto; padding: 0 1; }
    ConfigsScreen #exp-dir-label { padding: 1 1 0 2; }
    ConfigsScreen #exp-dir-resolved { height: auto; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [("escape", "app.pop_screen", "Back"), ("ctrl+s", "save", "Save"),
                ("ctrl+l", "save_launch", "Save & launch"), ("ctrl+r", "save_sweep", "Save & sweep")]

    def __init__(self, fork: ForkPlan | None = None) -> None:
        """``fork``: the config, folder and checkpoint of a fork to offer (and its launch settings)."""
        super().__init__()
        self.source_exp: Path | None = None
        self.fork = fork
        #: the source the form was built from: the Select's first Changed (its value set in compose)
        #: built the same form a second time, 0.4 s of the screen's opening
        self._loaded: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="toolbar"):
            yield Select(self._base_options(), value="fork:" if self.fork else "template:demo",
                         allow_blank=False, id="source")
            yield Label("EXP_DIR", id="exp-dir-label")
            yield Input(placeholder="experiment folder, relative to the workspace", id="exp-dir")
        yield Static("", id="exp-dir-resolved")
        yield Static("", id="status")
        with Horizontal(id="body"):
            yield VerticalScroll(id="form")
            yield VerticalScroll(Static("", id="yaml"), id="preview")
        with Horizontal(classes="toolbar"):
            yield Button("Save", variant="primary", id="save")
            yield Button("Save & launch", id="save-launch")
        yield KeysFooter()

    def _base_options(self) -> list[tuple[str, str]]:
        fork = []
        if self.fork is not None:
            under = f" under the {self.fork.template} template" if self.fork.template else ""
            fork = [(f"fork: the parent run's config{under}", "fork:")]
        return fork + [(f"template: {t}", f"template:{t}") for t in TEMPLATES]

    def on_mount(self) -> None:
        self.query_one("#preview").border_title = f"{CONFIG} preview"
        self.query_one("#exp-dir", Input).value = "experiments/exp1"
        self._find()
        self._load_source("fork:" if self.fork else "template:demo")

    @work(thread=True)
    def _find(self) -> None:
        exps = find_experiments(self.spkemb.workspace.root, self.spkemb.db_path)
        self.app.call_from_thread(self._add_experiments, exps)

    def _add_experiments(self, exps: list[Path]) -> None:
        select = self.query_one("#source", Select)
        value = select.value
        options = self._base_options()
        options += [(f"experiment: {self.spkemb.workspace.show(p)}", f"exp:{p}") for p in exps]
        with self.prevent(Select.Changed):
            select.set_options(options)
            select.value = value

    @on(Select.Changed, "#source")
    def _source_changed(self, event: Select.Changed) -> None:
        if str(event.value) != self._loaded:
            self._load_source(str(event.value))

    def _load_source(self, source: str) -> None:
        kind, _, name = source.partition(":")
        self._loaded = source
        if kind == "fork" and self.fork is not None:
            self._load_fork(self.fork)
            return
        try:
            if kind == "template":
                cfg = parse_config(template_text(name), f"template {name}")
                self.source_exp = None
                exp = next_free(self.spkemb.workspace.root / "experiments" / f"{name}")
            else:
                # the engine's reader: a config that is not UTF-8, or whose aliases loop, is one line
                cfg = load_config(ExperimentDir(Path(name)).config)
                self.source_exp = Path(name)
                exp = Path(name)
        except (OSError, ConfigError) as e:
            self.spkemb.error(f"cannot load {source}: {e}")
            return
        self.query_one("#exp-dir", Input).value = self.spkemb.workspace.show(exp)
        self._build_form(config_to_dict(cfg))

    def _load_fork(self, fork: ForkPlan) -> None:
        """The fork's config, in a new experiment folder named after the parent and the checkpoint."""
        try:
            data = config_to_dict(config_from_dict(fork.config, source="the parent run's config"))
        except ConfigError as e:
            self.spkemb.error(f"cannot load the parent run's config: {e}")
            return
        self.source_exp = None
        self.query_one("#exp-dir", Input).value = self.spkemb.workspace.show(next_free(fork.folder))
        self.sub_title = f"{fork.what}: {self.spkemb.workspace.show(fork.init_from)}"
        self._build_form(data)

    @on(Input.Changed, "#exp-dir")
    def _exp_dir_changed(self, event: Input.Changed) -> None:
        """Say where config.yml will go: the folder is read relative to the workspace."""
        shown = self.query_one("#exp-dir-resolved", Static)
        text = event.value.strip()
        if not text:
            shown.update("[red]give the experiment folder (EXP_DIR), relative to the workspace[/red]")
            return
        exp = experiment_folder(self.spkemb.workspace.root, text)
        if isinstance(exp, str):
            shown.update(Text(exp, style="red"))
        else:
            shown.update(Text(f"saves {_from_cwd(ExperimentDir(exp).config)}  (the folder is relative to the workspace "
                              f"{_from_cwd(self.spkemb.workspace.root)})"))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "save-launch":
            self.action_save_launch()

    def action_save(self) -> Path | None:
        """Write EXP_DIR/config.yml; a config runs already used is never changed in place."""
        if not self._validate() or self.data is None:
            self.spkemb.error("The config has errors: fix the fields marked in red before saving.")
            return None
        text = self.query_one("#exp-dir", Input).value.strip()
        if not text:
            self.spkemb.error(f"Give the experiment folder (EXP_DIR) to save {CONFIG} in.")
            return None
        exp = experiment_folder(self.spkemb.workspace.root, text)
        if isinstance(exp, str):
            self.spkemb.error(exp)
            return None
        used = reader.used_by_runs(self.spkemb.db_path, exp) if ExperimentDir(exp).config.exists() else []
        if used:
            new = free_inside(self.spkemb.workspace.root, exp)
            self.app.notify(f"{self.spkemb.workspace.show(exp)} was used by run(s) "
                            f"{', '.join('#' + str(u) for u in used)}: saved as the new experiment "
                            f"{self.spkemb.workspace.show(new)} so history stays as it was.")
            exp = new
        try:
            exp.mkdir(parents=True, exist_ok=True)
            ExperimentDir(exp).config.write_text(dump_yaml(self.data), encoding="utf-8")
        except OSError as e:
            self.spkemb.blocking_error("Config not saved", f"cannot write {ExperimentDir(exp).config}: {e}")
            return None
        self.query_one("#exp-dir", Input).value = self.spkemb.workspace.show(exp)
        self.app.notify(f"saved {self.spkemb.workspace.show(ExperimentDir(exp).config)}")
        return exp

    def action_save_launch(self) -> None:
        exp = self.action_save()
        if exp is not None:
            self.app.pop_screen()
            self.spkemb.action_go_launch(str(exp), fork=self.fork)

    def action_save_sweep(self) -> None:
        """Save the config, then sweep over it (``spkemb-engine sweep``, which starts the queue)."""
        from app.data.protocols_list import default_train, protocols
        from app.dialogs.sweep import SweepDialog
        from engine.sweeps.slots import default_slots

        exp = self.action_save()
        if exp is None:
            return
        ws = self.spkemb.workspace
        try:
            protocol = default_train(protocols(ws.database_yml)) or ""
        except Exception:  # noqa: BLE001 - the dialog asks for it
            protocol = ""
        slots = default_slots()

        def launch(request) -> None:
            if request is not None:
                self.spkemb.launch_sweep(request)

        self.app.push_screen(SweepDialog(exp, protocol, slots, ws.db_path, ws.database_yml), launch)
