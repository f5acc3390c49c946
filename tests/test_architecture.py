"""The layering docs/architecture.md describes, enforced on the code itself.

- a package imports only packages of a lower layer (or modules of its own package);
- the torch-free layers (layout, config, store, the TUI) import no torch;
- every file and folder name of the run folders (engine/layout.py's constants) is spelled there alone, and no
  code climbs a run's folders by hand (``.parent.parent``);
- engine/console.py alone writes to the terminal;
- app/ is its packages (the layers below) and app.py, __main__.py, app.tcss;
- app/ spells no engine option: its command lines come from the engine's requests (engine.cli.to_argv);
- app/ keeps no state in a module (an empty list, dict or set at module level): it lives on the app;
- no module of engine/, app/, bench/ is over 350 lines.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import re
import sys
from pathlib import Path

import pytest

from tests import children

ROOT = Path(__file__).resolve().parents[1]

#: lowest first; a package may import from any package of a lower rank
LAYERS = {
    "engine.errors": 0,
    "engine.safe_paths": 1, "engine.regular_files": 1, "engine.console": 1, "engine.atomic": 1,
    "engine.progress": 2, "engine.version": 2,
    "engine.layout": 2, "engine.requests": 3, "engine.records": 3,
    "engine.config": 4, "engine.store": 4,
    "engine.data": 5, "engine.model": 5, "engine.demo": 5,
    "engine.process": 6,
    "engine.training": 7,
    # what validate and apply share (a checkpoint's network, sliding windows): below both
    "engine.inference": 7,
    "engine.validation": 8,
    "engine.extraction": 9,
    # the comparison (pivot, significance, report) reads the store and the DET of validation
    "engine.compare": 9,
    # what train, validate and apply refuse before torch is imported: read by the CLI alone
    "engine.early_checks": 10,
    "engine.arguments": 10, "engine.cli": 11, "engine.__main__": 12, "engine": 12,
    # sweeps and the queue build engine command lines (engine.cli.to_argv): above the CLI
    "engine.sweeps": 12,
    # the TUI's rooms: what it reads and the commands it runs; text; widgets; dialogs; screens; the app
    "app.data": 13, "app.launching": 13, "app.views": 14, "app.widgets": 15, "app.dialogs": 16,
    "app.screens": 17, "app": 18,
}
#: what app/ holds at its root besides its packages: the application, its entry point, its styles
APP_ROOT_FILES = {"__init__.py", "app.py", "__main__.py", "app.tcss"}
TORCH_FREE = ("engine", "engine.layout", "engine.records", "engine.progress",
              "engine.errors", "engine.version", "engine.atomic", "engine.safe_paths", "engine.regular_files",
              "engine.console",
              "engine.requests", "engine.arguments", "engine.cli", "engine.early_checks", "engine.config",
              "engine.store",
              "engine.validation.det", "engine.validation.calibration", "engine.compare.significance",
              "engine.validation.selection", "engine.validation.params", "engine.validation.score_files",
              "engine.validation.verify", "engine.validation.embed", "engine.validation.recordings",
              "engine.validation.kaldi_archive", "engine.validation.cohort_means",
              "engine.validation.metrics", "engine.extraction.precomputed",
              "engine.compare.pivot", "engine.compare.report", "app",
              "app.app", "engine.sweeps.queue", "engine.sweeps.sweep",
              "app.launching.commands", "app.launching.children", "app.screens.run_detail",
              "engine.store.runs_listing", "engine.store.events", "app.screens.runs", "app.screens.configs",
              "app.screens.launch", "app.screens.compare", "app.screens.query", "app.screens.det",
              "app.widgets.det_plots", "engine.data.database_yml", "engine.data.protocols",
              "engine.data.speech_regions", "engine.data.audio", "engine.data.audio_checks",
              "engine.process.cuda_visible", "app.data.gpus", "engine.process.gpus", "engine.sweeps.slots",
              "engine.validation.clean",
              "engine.process.folder_lock")


def _modules() -> list[Path]:
    return sorted(p for top in ("engine", "app") for p in (ROOT / top).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> tuple[str, int] | None:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix, LAYERS[prefix]
    return None


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names if node.module == "engine"]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return found


def test_packages_import_only_lower_layers():
    wrong = []
    for path in _modules():
        here = _layer(_module_name(path))
        assert here is not None, f"{path} belongs to no layer: add its package to LAYERS and docs/architecture.md"
        for imported in _imports(path):
            there = _layer(imported) if imported.split(".")[0] in ("engine", "app") else None
            if there is None or there[0] == here[0] or imported == "engine":
                continue
            if there[1] >= here[1]:
                wrong.append(f"{path.relative_to(ROOT)} imports {imported} ({there[0]} is not below {here[0]})")
    assert not wrong, "\n".join(wrong)


#: imports each module of TORCH_FREE in turn, printing whether torch came with it; stops at the first that
#: brought torch (the modules before it are torch-free, so each answer up to there is that module's own)
_IMPORT_IN_TURN = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    print(json.dumps([name, 'torch' in sys.modules]), flush=True)
    if 'torch' in sys.modules:
        break
"""


@functools.cache
def _torch_after_importing() -> dict[str, bool]:
    """One interpreter for the whole list instead of one per module (each start costs a second)."""
    done = children.run([sys.executable, "-c", _IMPORT_IN_TURN, *TORCH_FREE], cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(line) for line in done.stdout.splitlines())


@pytest.mark.slow
@pytest.mark.parametrize("module", TORCH_FREE)
def test_torch_free_layers_import_no_torch(module):
    answers = _torch_after_importing()
    if module not in answers:  # after a module that brought torch: asked in an interpreter of its own
        code = f"import sys, {module}; print('torch' in sys.modules)"
        done = children.run([sys.executable, "-c", code], cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        answers = {module: done.stdout.strip() == "True"}
    assert answers[module] is False, f"{module} imports torch"


def _docstrings(node: ast.AST) -> set[int]:
    """The docstring of ``node`` (a module, class or function), if it has one."""
    if not isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not node.body:
        return set()
    first = node.body[0]
    return {id(first.value)} if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) else set()


def _layout_names() -> set[str]:
    """Every name engine/layout.py gives a file or folder of the run folders and the workspace: each of
    its module-level string constants (the generic formats' suffixes, .txt .npy .rttm, stay inline there:
    the corpus and the index caches name their own files with them)."""
    tree = ast.parse((ROOT / "engine" / "layout.py").read_text())
    return {node.value.value for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)}


#: calls whose string arguments are paths or parts of one
PATH_CALLS = {"Path", "PurePath", "PurePosixPath", "join", "joinpath", "with_name", "glob", "rglob", "open"}
#: attributes of a path that a string compared with them is a name of
PATH_PARTS = {"name", "stem", "suffix", "parts"}


def _call_name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")


def _in_path(node: ast.Constant, parents: dict[int, ast.AST]) -> bool:
    """Whether ``node`` is a part of a path: an operand of ``/``, an argument of a path call, or a name
    a path's ``.name`` (``.stem``, ...) is compared with."""
    parent = parents.get(id(node))
    if isinstance(parent, (ast.Tuple, ast.List, ast.Set)):
        parent = parents.get(id(parent))
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Div):
        return True
    if isinstance(parent, ast.Call) and node in parent.args and _call_name(parent) in PATH_CALLS:
        return True
    return isinstance(parent, ast.Compare) and any(
        isinstance(side, ast.Attribute) and side.attr in PATH_PARTS for side in [parent.left, *parent.comparators])


def _spells(name: str, node: ast.Constant, parents: dict[int, ast.AST]) -> bool:
    """Whether the string ``node`` spells the layout's ``name``.

    A plain word (``train``, ``apply``, ``scores``) is also an English word and a command's name: it
    counts where it is a part of a path (a component of ``a/train/b``, or a path's part in code). A
    suffix (``.pt``) counts after a file's stem (``0040.pt``, ``*.pt``; ``.pt`` alone is a format).
    Any other name (``config.yml``, ``events.jsonl``, ``validate_equal_error_rate``) counts anywhere.
    """
    text = node.value
    if name not in text:
        return False
    if re.fullmatch(r"[a-z]+", name):
        return _in_path(node, parents) if text == name else "/" in text and name in text.split("/")
    return _pattern(name).search(text) is not None


@functools.cache
def _pattern(name: str) -> re.Pattern[str]:
    if name.startswith("."):
        return re.compile(r"(?<=[\w*}])" + re.escape(name) + r"(?!\w)")
    return re.compile(r"(?<![\w.-])" + re.escape(name) + r"(?![\w-])")


def _walks_up(node: ast.AST) -> bool:
    """``x.parent.parent`` or ``x.parents[1]``, but from this file (``Path(__file__)``), whose folders are the
    repository's, not a run's."""
    up = (isinstance(node, ast.Attribute) and node.attr == "parent" and isinstance(node.value, ast.Attribute)
          and node.value.attr == "parent"
          or isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents")
    return up and "__file__" not in ast.unparse(node)


@pytest.mark.slow
def test_the_run_layout_is_spelled_in_one_module() -> None:
    """Every file and folder name of the run folders and the workspace that engine/layout.py defines is
    spelled there alone, in engine/, app/ and bench/ (docstrings aside), and no code climbs a run's folders
    by hand (``trn_dir.parent.parent``): ``engine.layout``'s types know their parents.

    engine/demo/layout.py is held to the same rule: it spells the demo corpus's own layout (datasets,
    database.yml, subsets named ``train``), which shares no name with the run folders.
    """
    names = _layout_names()
    wrong = []
    for path in sorted(p for top in ("engine", "app", "bench") for p in (ROOT / top).rglob("*.py")):
        if path == ROOT / "engine" / "layout.py":
            continue
        where = path.relative_to(ROOT)
        docstrings: set[int] = set()
        parents: dict[int, ast.AST] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):  # breadth first: parents come first
            parents.update((id(child), node) for child in ast.iter_child_nodes(node))
            docstrings |= _docstrings(node)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                wrong += [f"{where}:{node.lineno}: {name!r} in {node.value[:80]!r}" for name in sorted(names)
                          if _spells(name, node, parents)]
            elif _walks_up(node):
                wrong.append(f"{where}:{node.lineno}: {ast.unparse(node)} climbs a run's folders by hand")
    assert not wrong, "spell these through engine.layout (its constants and its types):\n" + "\n".join(wrong)


#: the streams of the terminal
STREAMS = {"stdout", "stderr", "__stdout__", "__stderr__"}


def _terminal_writes(tree: ast.AST) -> list[tuple[int, str]]:
    """``print(...)``, any use of ``sys.stdout``/``sys.stderr``, a rich ``Console(...)`` made."""
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and (_call_name(node) == "Console" or isinstance(node.func, ast.Name)
                                            and node.func.id == "print")
                or isinstance(node, ast.Attribute) and node.attr in STREAMS and isinstance(node.value, ast.Name)
                and node.value.id == "sys"):
            found.append((node.lineno, ast.unparse(node)[:80]))
    return found


def test_terminal_writes_go_through_the_console_module() -> None:
    """engine/console.py alone writes to the terminal (``say``, ``out``, ``out_text``, its rich consoles):
    every other module of engine/ and app/ goes through it. The app draws through Textual, which owns the
    terminal while it runs (a print would tear its screen). bench/ is out of scope: each script is a program
    whose printed lines are its report."""
    wrong = [f"{path.relative_to(ROOT)}:{line}: {text}"
             for path in _modules() if path != ROOT / "engine" / "console.py"
             for line, text in _terminal_writes(ast.parse(path.read_text(), str(path)))]
    fix = "write through engine.console (say, out, out_text, stdout_console, stderr_console)"
    assert not wrong, fix + ":\n" + "\n".join(wrong)


def test_app_modules_live_in_its_packages() -> None:
    packages = {name.split(".")[1] for name in LAYERS if name.startswith("app.")}
    loose = [p.name for p in sorted((ROOT / "app").iterdir())
             if p.name != "__pycache__" and (p.name not in packages if p.is_dir() else p.name not in APP_ROOT_FILES)]
    assert not loose, f"app/ {loose}: put each in its package (data, launching, views, widgets, dialogs, screens)"


def _engine_options() -> set[str]:
    """Every option string of ``spkemb-engine`` and of each of its commands."""
    from engine.arguments import build_parser

    found: set[str] = set()
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:  # argparse keeps its options and subcommands in its private actions
            found.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
    return found


def _argv_words(tree: ast.AST) -> list[ast.Constant]:
    """The strings placed as words of a command line: items of a list or tuple, arguments of
    ``append``/``extend``/``insert``, the text of an f-string (``f"--to={n}"``)."""
    words = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.JoinedStr)):
            words += node.elts if not isinstance(node, ast.JoinedStr) else node.values
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("append", "extend", "insert")):
            words += node.args
    return [w for w in words if isinstance(w, ast.Constant) and isinstance(w.value, str)]


def test_the_app_spells_no_engine_option() -> None:
    options = _engine_options() - {"-h", "--help"}
    wrong = [f"{path.relative_to(ROOT)}:{word.lineno}: {word.value!r}"
             for path in sorted((ROOT / "app").rglob("*.py"))
             for word in _argv_words(ast.parse(path.read_text(), str(path)))
             if word.value.split("=")[0] in options]
    assert not wrong, "build these command lines from engine.requests (engine.cli.to_argv):\n" + "\n".join(wrong)


def _empty_containers(tree: ast.Module) -> list[tuple[int, str]]:
    """Module-level names bound to an empty list, dict or set: state filled at run time."""
    found = []
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        empty = (isinstance(value, (ast.List, ast.Set)) and not value.elts
                 or isinstance(value, ast.Dict) and not value.keys
                 or isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                 and value.func.id in ("list", "dict", "set") and not value.args)
        if empty:
            found += [(node.lineno, ast.unparse(t)) for t in targets]
    return found


def test_the_app_keeps_its_state_on_the_app() -> None:
    # the children a TUI started, the launches it waits for: each app's own (SpkembApp.launcher, .pending),
    # never a module's, which every app of the process would share
    wrong = [f"{path.relative_to(ROOT)}:{line}: {name}" for path in sorted((ROOT / "app").rglob("*.py"))
             for line, name in _empty_containers(ast.parse(path.read_text(), str(path)))]
    assert not wrong, "keep this state on the app (or an object it owns):\n" + "\n".join(wrong)


#: the most lines a module of the product holds: past it, a module holds more than one job
MAX_MODULE_LINES = 350


def test_no_module_is_over_the_line_limit() -> None:
    sources = [*(ROOT / "engine").rglob("*.py"), *(ROOT / "app").rglob("*.py"), *(ROOT / "bench").rglob("*.py"),
               ROOT / "docs" / "hooks.py"]
    long = [f"{path.relative_to(ROOT)}: {n} lines" for path in sorted(sources)
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"split these by what they hold (at most {MAX_MODULE_LINES} lines):\n" + "\n".join(long)
