"""``spkemb-engine``: command line -> typed request -> the command's handler; errors -> one line.

The options live in ``engine.arguments``; each command's work lives in the module that owns
it and is imported only when that command runs, so that ``runs`` or ``config check`` never pay
for importing torch; ``train``, ``validate`` and ``apply`` first refuse what they can without it
(``engine.early_checks``). This is the one place where an error becomes a message and an exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from engine import requests
from engine.arguments import build_parser
from engine.console import reader_gone, say, stdout_usable, while_loading
from engine.errors import FileAccessError, SpkembError

__all__ = ["EARLY_CHECKS", "HANDLERS", "REQUESTS", "build_parser", "main", "one_line", "parse_command", "request_of",
           "to_argv"]

#: command name -> "module:function" taking the command's request, returning an exit code
HANDLERS: dict[str, str] = {
    "train": "engine.training.train:cmd_train",
    "validate": "engine.validation.validate:cmd_validate",
    "apply": "engine.extraction.apply:cmd_apply",
    "diarize": "engine.extraction.diarization_check:cmd_diarize",
    "pick": "engine.validation.selection:cmd_pick",
    "average": "engine.validation.average:cmd_average",
    "clean": "engine.validation.clean:cmd_clean",
    "verify": "engine.validation.verify:cmd_verify",
    "embed": "engine.validation.embed:cmd_embed",
    "export": "engine.extraction.export:cmd_export",
    "runs": "engine.store.runs_listing:cmd_runs",
    "tag": "engine.store.runs_listing:cmd_tag",
    "report": "engine.compare.report:cmd_report",
    "import": "engine.store.importing:cmd_import",
    "demo-data": "engine.demo:cmd_demo_data",
    "demo-workspace": "engine.demo:cmd_demo_workspace",
    "config check": "engine.config:cmd_check",
    "config template": "engine.config.templates:cmd_template",
    "config large-margin": "engine.training.init_from:cmd_large_margin",
    "model-summary": "engine.model.summary:cmd_model_summary",
    "sbatch": "engine.training.slurm:cmd_sbatch",
    "sweep": "engine.sweeps.sweep:cmd_sweep",
    "queue": "engine.sweeps.queue:cmd_queue",
}


#: command name -> "module:function" that refuses what it can before the handler's module (and torch)
#: is imported: given the request, it returns nothing or raises SpkembError
EARLY_CHECKS: dict[str, str] = {
    "train": "engine.early_checks:check_train",
    "sbatch": "engine.early_checks:check_train",
    "validate": "engine.early_checks:check_validate",
    "apply": "engine.early_checks:check_apply",
    "average": "engine.early_checks:check_average",
    "export": "engine.early_checks:check_export",
}


#: command name -> the request its handler takes
REQUESTS: dict[str, type[requests.Request]] = {
    "train": requests.TrainRequest,
    "validate": requests.ValidateRequest,
    "apply": requests.ApplyRequest,
    "diarize": requests.DiarizeRequest,
    "pick": requests.PickRequest,
    "average": requests.AverageRequest,
    "clean": requests.CleanRequest,
    "verify": requests.VerifyRequest,
    "embed": requests.EmbedRequest,
    "export": requests.ExportRequest,
    "runs": requests.RunsRequest,
    "tag": requests.TagRequest,
    "report": requests.ReportRequest,
    "import": requests.ImportRequest,
    "demo-data": requests.DemoRequest,
    "demo-workspace": requests.DemoRequest,
    "config check": requests.ConfigCheckRequest,
    "config template": requests.ConfigTemplateRequest,
    "config large-margin": requests.ConfigLargeMarginRequest,
    "model-summary": requests.ModelSummaryRequest,
    "sbatch": requests.SbatchRequest,
    "sweep": requests.SweepRequest,
    "queue": requests.QueueRequest,
}


def request_of(argv: Sequence[str]) -> requests.Request:
    """The typed request an argument list makes; a bad one is one stderr line and exit 2."""
    return parse_command(argv)[1]


def parse_command(argv: Sequence[str] | None) -> tuple[str, requests.Request]:
    """The command's name and its typed request, as ``main`` runs them.

    Bad options (a number out of range, two that contradict each other) raise ``SystemExit(2)``
    after one line on stderr (``spkemb-engine COMMAND: error: ...``), before any work.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    command = _handler_name(args)
    try:
        return command, REQUESTS[command].from_namespace(args)
    except SpkembError as e:
        say(f"spkemb-engine {command}: error: {e}")
        raise SystemExit(e.exit_code) from None


def to_argv(request: requests.Request, command: str | None = None) -> list[str]:
    """The command line (after the program's name) that ``parse_command`` reads back as ``request``.

    Built from the parser itself, so that it cannot drift from the options: each option whose
    value differs from the parser's default, in the parser's order, then the positionals.
    ``command`` is needed only for a request several commands take (``DemoRequest``).
    """
    if command is None:
        names = [name for name, cls in REQUESTS.items() if cls is type(request)]
        if len(names) != 1:
            raise ValueError(f"{type(request).__name__} is the request of {names or 'no command'}: "
                             "name the command")
        command = names[0]
    words = command.split()
    parser = build_parser()
    for word in words:  # argparse keeps its subcommands' parsers in its private actions
        (choices,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = choices.choices[word]
    options: list[str] = []
    positionals: list[str] = []
    greedy = False
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        value = getattr(request, action.dest)
        if not action.option_strings:
            positionals += [str(v) for v in value] if action.nargs in ("+", "*") else [str(value)]
        elif value != action.default:
            flag = max(action.option_strings, key=len)
            if isinstance(action, argparse._StoreTrueAction):
                options.append(flag)
            elif isinstance(action, argparse._AppendAction):  # --tag a --tag b
                for v in value:
                    options += [f"{flag}={v}"] if str(v).startswith("-") else [flag, str(v)]
            elif action.nargs in ("+", "*"):  # --cancel 3 4: takes every word up to the next option
                options += [flag, *(str(v) for v in value)]
                greedy = True
            elif str(value).startswith("-"):  # a value like an option's name: joined to its flag
                options.append(f"{flag}={value}")
            else:
                options += [flag, str(value)]
    # a positional like an option's name (a folder "-x"), or one after an option taking several
    # words, follows "--", after which none is an option
    ends = ["--"] if positionals and (greedy or any(p.startswith("-") for p in positionals)) else []
    return [*words, *options, *ends, *positionals]


def _handler_name(args: argparse.Namespace) -> str:
    if args.command == "config":
        return f"config {args.config_command}"
    return args.command


#: what ends a line for a terminal or for ``str.splitlines``, written out as escapes instead
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(message: str) -> str:
    """``message`` on one line: a name read from a file (a key ``a\\rb``, a path) may hold line breaks."""
    return message.translate(_LINE_BREAKS)


def _without_notebook_display() -> None:
    """Spare the command pyannote.core's Jupyter display, and the 0.3 s it costs at import.

    pyannote.core imports its ``notebook`` module with itself, which imports matplotlib.pyplot to
    draw annotations in Jupyter; it skips the module when the import fails. A command never draws
    one, so its process marks the module absent (``sys.modules[name] = None`` makes its import
    fail) before anything imports pyannote.core. Never done where pyannote.core is already in.
    """
    if "pyannote.core" not in sys.modules:
        sys.modules.setdefault("pyannote.core.notebook", None)  # type: ignore[arg-type]


def _function(where: str) -> Any:
    """The function that ``"module:function"`` names, its module imported now."""
    module_name, func_name = where.split(":")
    return getattr(importlib.import_module(module_name), func_name)


def main(argv: Sequence[str] | None = None) -> int:
    if not stdout_usable():
        say("spkemb-engine: error: standard output is closed (>&-): give it a file, or /dev/null to drop "
            "a command's result")
        return 2
    command, request = parse_command(argv)
    _without_notebook_display()
    try:
        if command in EARLY_CHECKS:
            try:
                _function(EARLY_CHECKS[command])(request)
            except SpkembError as e:
                if os.environ.get("RANK", "0") != "0":  # torchrun's other ranks refuse the same input:
                    return e.exit_code                # rank 0 says it, once
                raise
        # torch's import: seconds, or a minute; torchrun's other ranks share rank 0's terminal
        loading = f"spkemb-engine {command}: loading its libraries…"
        with while_loading(loading) if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext():
            handler = _function(HANDLERS[command])
        return int(handler(request) or 0)
    except SpkembError as e:
        say(f"spkemb-engine {command}: error: {one_line(str(e))}")
        return e.exit_code
    except BrokenPipeError:
        # `spkemb-engine runs | head`: the reader left; say nothing more
        reader_gone()
        return 0
    except KeyboardInterrupt:
        say(f"spkemb-engine {command}: interrupted")
        return 130
    except OSError as e:
        # the system refused a read or a write that no library code turned into a SpkembError
        error = FileAccessError.from_os_error(e)
        say(f"spkemb-engine {command}: error: {one_line(str(error))}")
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
