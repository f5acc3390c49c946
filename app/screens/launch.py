"""Launch: train an experiment on a protocol, optionally with the validation watcher beside it."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Checkbox,
    Header,
    Input,
    Label,
    Select,
    Static,
)

from app.data.experiments import find_experiments
from app.data.forks import ForkPlan
from app.data.gpus import device_options
from app.data.protocols_list import default_train, protocols
from app.dialogs.labels import read_labels
from app.dialogs.validate import SCORE_NORMS
from app.launching import commands
from app.screens.host import SpkembScreen
from app.widgets.keys_footer import KeysFooter
from app.widgets.tick_box import TickBox
from engine.errors import PathError
from engine.layout import CONFIG, TrainingDir, ValidationDir
from engine.requests.validation import MIN_COHORT_SIZE


def _row(label: str, widget) -> Horizontal:
    return Horizontal(Label(label), widget, classes="launch-row")


class LaunchScreen(SpkembScreen):
    DEFAULT_CSS = """
    LaunchScreen .launch-row { height: auto; }
    LaunchScreen .launch-row > Label { width: 30; padding: 1 1 0 1; }
    LaunchScreen .launch-row Input, LaunchScreen .launch-row Select { width: 1fr; }
    LaunchScreen .launch-row > Static { width: 1fr; padding: 1 1 0 1; }
    LaunchScreen #command { height: auto; padding: 1; color: $text-muted; }
    """
    BINDINGS = [("escape", "app.pop_screen", "Back"), ("ctrl+l", "launch", "Launch")]

    def __init__(self, exp_dir: str | None = None, fork: ForkPlan | None = None) -> None:
        super().__init__()
        self.exp_dir = exp_dir
        self.fork = fork
        self.init_from = fork.init_from if fork else None  # a fork: train starts from this checkpoint

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            if self.init_from:
                shown = self.spkemb.workspace.show(self.init_from)
                yield _row("start from (--init-from)", Static(shown, id="init-from"))
                reuse = bool(self.fork and self.fork.init_classifier)
                yield _row("reuse its classifier", TickBox("--init-classifier", reuse, id="init-classifier"))
            yield _row("experiment (EXP_DIR)", Select([], prompt="experiment", id="exp"))
            yield _row("protocol", Select([], prompt="protocol (loading…)", id="protocol"))
            yield _row("subset", Input("train", id="subset"))
            to = self.fork.to if self.fork and self.fork.to else 10
            yield _row("train up to epoch (--to)", Input(str(to), id="to", type="integer"))
            yield _row("device", Select([("cpu", "cpu")], value="cpu", allow_blank=False, id="device"))
            yield _row("data workers (--parallel)", Input("2", id="parallel", type="integer"))
            yield _row("random seed (--seed)", Input("0", id="seed", type="integer"))
            yield _row("group (--group)", Input("", placeholder="e.g. resnet34-lm: runs differing by seed",
                                                id="group"))
            yield _row("tags (--tag, words)", Input("", placeholder="baseline lm", id="tags"))
            yield _row("note (--note)", Input("", id="note"))
            yield _row("validate beside training", TickBox("validate", True, id="validate"))
            yield _row("validation subset", Input("development", id="val-subset"))
            yield _row("validate every N epochs", Input("1", id="every", type="integer"))
            yield _row("validation scores", Select(SCORE_NORMS, value="none", allow_blank=False, id="norm"))
            yield _row("AS-norm cohort speakers", Input("300", id="cohort-size", type="integer"))
            yield _row("AS-norm files per speaker", Input("3", id="cohort-files", type="integer"))
            yield Static("", id="command")
            with Vertical(classes="toolbar"):
                yield Button("Launch", variant="primary", id="launch")
        yield KeysFooter()

    def on_mount(self) -> None:
        self._discover()

    @work(thread=True)
    def _discover(self) -> None:
        ws = self.spkemb.workspace
        exps = find_experiments(ws.root, ws.db_path)
        self.app.call_from_thread(self._fill_exps, exps)
        try:
            names = protocols(ws.database_yml)
            self.app.call_from_thread(self._fill_protocols, names, None)
        except Exception as e:  # noqa: BLE001 - shown as a notification
            self.app.call_from_thread(self._fill_protocols, [], str(e))
        self.app.call_from_thread(self._fill_devices, device_options())

    def _fill_exps(self, exps: list[Path]) -> None:
        if self.exp_dir and Path(self.exp_dir).resolve() not in exps:
            exps = [Path(self.exp_dir).resolve(), *exps]
        select = self.query_one("#exp", Select)
        select.set_options([(self._label(p), str(p)) for p in exps])
        if self.exp_dir:
            select.value = str(Path(self.exp_dir).resolve())
        elif exps:
            select.value = str(exps[0])
        if not exps:
            self.app.notify(f"No experiment folder with a {CONFIG} yet: create one in Configs (n).",
                            severity="warning")

    def _label(self, exp: Path) -> str:
        shown = self.spkemb.workspace.show(exp)
        return f"{exp.name} (the workspace folder)" if shown == "." else shown

    def _fill_protocols(self, names: list[str], error: str | None) -> None:
        select = self.query_one("#protocol", Select)
        if error:
            self.spkemb.error(f"cannot list protocols: {error}")
        select.set_options([(n, n) for n in names])
        default = default_train(names)
        if default:
            select.value = default

    def _fill_devices(self, options: list[tuple[str, str]]) -> None:
        self.query_one("#device", Select).set_options(options)
        self.query_one("#device", Select).value = options[-1][1] if len(options) > 1 else "cpu"

    def _int(self, widget_id: str, name: str, low: int, say: Callable[[str], object]) -> int | None:
        text = self.query_one(widget_id, Input).value.strip()
        try:
            value = int(text)
        except ValueError:
            say(f"{name}: a whole number, got {text!r}")
            return None
        if value < low:  # the engine would refuse it, after the launch
            say(f"{name}: {low} or more, got {value}")
            return None
        return value

    def commands(self, say: Callable[[str], object] | None = None
                 ) -> tuple[list[str], list[str] | None, Path, Path | None] | None:
        """The train (and validate) argument lists and their log files, or None (the problem told to ``say``:
        a notification unless given)."""
        say = say or self.spkemb.error
        exp = self.query_one("#exp", Select).value
        protocol = self.query_one("#protocol", Select).value
        if exp is Select.NULL or protocol is Select.NULL:
            say("Choose an experiment and a protocol first.")
            return None
        to, parallel = self._int("#to", "epochs", 1, say), self._int("#parallel", "workers", 0, say)
        every, seed = self._int("#every", "every", 1, say), self._int("#seed", "seed", 0, say)
        if to is None or parallel is None or every is None or seed is None:
            return None
        try:
            labels = read_labels(*(self.query_one(f"#{name}", Input).value for name in ("group", "tags", "note")))
        except ValueError as e:
            say(str(e))
            return None
        ws = self.spkemb.workspace
        subset = self.query_one("#subset", Input).value.strip() or "train"
        device = str(self.query_one("#device", Select).value)
        val_subset = self.query_one("#val-subset", Input).value.strip() or "development"
        validating = self.query_one("#validate", Checkbox).value
        try:  # typed subsets become folders: none may lead outside the experiment
            trn = commands.trn_dir(str(exp), str(protocol), subset)
            val = commands.val_dir(trn, str(protocol), val_subset) if validating else None
        except PathError as e:
            say(str(e))
            return None
        if held := TrainingDir(trn).epochs():  # train would refuse it, with fixes for a shell (--resume)
            say(f"{ws.show(trn)} holds epochs {held[0]}..{held[-1]} already: open its run in Runs to resume it (r) "
                "or fork it (f), or launch another experiment (Configs: n makes one)")
            return None
        classifier = bool(self.init_from) and self.query_one("#init-classifier", Checkbox).value
        train = commands.train_argv(str(exp), str(protocol), subset=subset, to=to, device=device,
                                     parallel=parallel, db=ws.db_path, database=ws.database_yml,
                                     init_from=self.init_from, init_classifier=classifier, seed=seed,
                                     group=labels.group, tags=labels.tags, note=labels.note)
        if val is None:
            return train, None, TrainingDir(trn).log, None
        norm = None
        if self.query_one("#norm", Select).value == "asnorm":
            size = self._int("#cohort-size", "cohort speakers", MIN_COHORT_SIZE, say)
            files = self._int("#cohort-files", "files per speaker", 1, say)
            if size is None or files is None:
                return None
            norm = commands.ScoreNorm(size, files)
        validate = commands.validate_argv(trn, str(protocol), subset=val_subset, every=every, to=to,
                                           device=device, db=ws.db_path, database=ws.database_yml, score_norm=norm)
        return train, validate, TrainingDir(trn).log, ValidationDir(val).log

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.action_launch()

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _preview(self) -> None:
        """The commands Launch would start, as a shell would read them (or what is wrong), as the form changes."""
        problems: list[str] = []
        cmds = self.commands(say=problems.append)
        if cmds is None:
            text = problems[0] if problems else ""
        else:
            train, validate, *_ = cmds
            text = "\n".join("$ " + shlex.join(["spkemb-engine", *argv[3:]]) for argv in (train, validate) if argv)
        self.query_one("#command", Static).update(Text(text))

    def action_launch(self) -> None:
        cmds = self.commands()
        if cmds is None:
            return
        train, validate, train_log, val_log = cmds
        protocol = str(self.query_one("#protocol", Select).value)
        device = str(self.query_one("#device", Select).value)
        exp = Path(str(self.query_one("#exp", Select).value))
        try:
            pid = self.spkemb.launcher.record_launch(self.spkemb.pending, train, train_log, kind="train", what=exp.name,
                                    protocol=protocol, subset=self.query_one("#subset", Input).value.strip(),
                                    device=device, now=self.spkemb.now())
            if validate is not None and val_log is not None:
                self.spkemb.launcher.record_launch(self.spkemb.pending, validate, val_log, kind="validate",
                                        what=f"{exp.name} validate", protocol=protocol,
                                        subset=self.query_one("#val-subset", Input).value.strip(),
                                        device=device, now=self.spkemb.now(), after=pid)
        except OSError as e:
            self.spkemb.blocking_error("Cannot launch", f"{' '.join(train)}\n\n{e}")
            return
        self.app.notify(f"launched: {shlex.join(train[3:])}\nlog: {self.spkemb.workspace.show(train_log)}")
        self.app.pop_screen()
