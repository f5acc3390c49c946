"""The ``spkemb-engine`` command line: one small function per command adds its options.

Option names are the fields of the command's request (``engine.requests``); ``engine.cli``
turns the parsed arguments into that request. The commands' options live beside this module,
grouped by what the commands work on; the order here is the order of ``--help``.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import NoReturn

from engine.arguments.extraction import add_apply, add_diarize, add_export
from engine.arguments.runs import add_import, add_report, add_runs, add_tag
from engine.arguments.sweeps import add_queue, add_sweep
from engine.arguments.training import add_sbatch, add_train
from engine.arguments.validation import add_average, add_clean, add_embed, add_pick, add_validate, add_verify
from engine.arguments.values import MAX_BATCH, MAX_EPOCH
from engine.arguments.workspace import add_config, add_demo_data, add_demo_workspace, add_model_summary
from engine.version import VERSION

__all__ = ["MAX_BATCH", "MAX_EPOCH", "OneLineParser", "build_parser"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose bad input is one stderr line, ``PROG: error: ...``, and exit 2.

    argparse's own error prints the whole usage first; the engine's errors are one line
    (the TUI and logs show the last line), and ``--help`` still shows the usage.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: None = None) -> argparse.Namespace:
        """As argparse's, but an unknown option is refused by the command it was given to, naming that
        command's ``--help`` and its nearest option (argparse names the top-level parser)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._command_parser(parsed)
            # an unknown option's value was taken for the command's next argument (`validate --parallel 0
            # TRN P` left `P` over): the words left over would mislead, the option alone is the mistake
            options = [e for e in extras if e.startswith("-") and not _number(e)]
            near = _nearest((options or extras)[0],
                            [o for a in command._actions for o in a.option_strings if o.startswith("--")])
            hint = f"; did you mean {near}?" if near else ""
            what = (f"unrecognized option{'s' if len(options) > 1 else ''} {' '.join(options)}" if options
                    else f"unrecognized arguments: {' '.join(extras)}")
            command.error(f"{what}{hint}")
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The parser of the (sub)command ``parsed`` went through (``config check``'s, say)."""
        parser: argparse.ArgumentParser = self
        while True:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            name = getattr(parsed, subs[0].dest, None) if subs else None
            if name is None:
                return parser
            parser = subs[0].choices[name]

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        # Python 3.11's argparse drops a value `--` (`--to=--`) and hands the option an empty
        # list instead of refusing it: an int option would reach the command as []
        if action.nargs is None and action.option_strings and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return super()._get_values(action, arg_strings)


def _number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _nearest(given: str, known: list[str]) -> str | None:
    """The option ``given`` most likely meant: one holding it or held by it (``--tag``: ``--add-tag``), or
    one a letter or two away (``--epcoh``); None rather than a guess (``--parallel`` is no ``--poll``)."""
    if not given.startswith("--"):
        return None
    word = given.split("=")[0][2:]
    holding = [o for o in known if word and (word in o[2:] or o[2:] in word)]
    if holding:
        return min(holding, key=lambda o: abs(len(o) - len(word) - 2))
    close = difflib.get_close_matches(word, [o[2:] for o in known], n=1, cutoff=0.8)
    return f"--{close[0]}" if close else None


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="spkemb-engine",
        description="Train, validate and apply speaker-embedding networks (SincTDNN, ResNet34, "
                    "ECAPA-TDNN, CAM++) on raw audio; every run is "
                    "recorded in a SQLite database.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    add_train(sub)
    add_validate(sub)
    add_apply(sub)
    add_export(sub)
    add_diarize(sub)
    add_pick(sub)
    add_verify(sub)
    add_embed(sub)
    add_average(sub)
    add_clean(sub)
    add_runs(sub)
    add_tag(sub)
    add_report(sub)
    add_import(sub)
    add_demo_data(sub)
    add_demo_workspace(sub)
    add_config(sub)
    add_model_summary(sub)
    add_sbatch(sub)
    add_sweep(sub)
    add_queue(sub)
    return parser
