"""Files a user hands the engine, mutated at random: the answer is a result (exit 0) or one line
naming what is wrong (exit 2), never a traceback.

Hypothesis mutates valid templates: config.yml (``config check``), database.yml and trial lists
(``validate``, which loads the protocol and reads its trials before any checkpoint), and event
files (``import``). Each example runs the real command in-process through ``engine.cli.main``
(a subprocess each would take seconds), its stderr captured. Warnings of libraries
(pyannote.database's "does not define the 'scope'") are silenced: Python shows each once per
process, so in-process they would come and go between examples.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import itertools
import json
import os
import re
import shutil
import string
import tempfile
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.config import template_text
from engine.store import EventWriter
from tests.engine.test_events import write_training

#: a fixed set of examples in the suite; ``SPKEMB_FUZZ_EXAMPLES=2000`` searches further, at random
_SEARCH = int(os.environ.get("SPKEMB_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_SEARCH or 150, deadline=None, derandomize=not _SEARCH,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
PROTOCOL = "Demo.SpeakerVerification.Voices"
#: ``draw`` of a composite strategy
Draw = Callable[[st.SearchStrategy], Any]
_names = itertools.count()


def run_main(*argv: str) -> tuple[int, list[str]]:
    """``spkemb-engine ARGV`` in this process: (exit status, stderr lines). An exception that escapes
    ``main`` is what a user would see as a traceback: the test fails with it."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
        except BaseException:  # noqa: BLE001 - the traceback is the failure
            pytest.fail(f"spkemb-engine {argv[0]} raised:\n{traceback.format_exc()}\nstderr:\n{err.getvalue()}")
    return code, err.getvalue().splitlines()


def assert_clean(command: str, code: int, lines: list[str]) -> None:
    """Exit 0, or exit 2 with one line ``spkemb-engine COMMAND: error: …`` (``import`` may warn
    before it, one ``warning:`` line per record it skipped; a run refused once recorded says first
    that it made a new runs database)."""
    assert not any("Traceback" in line for line in lines), lines
    if code == 0:
        return
    assert code == 2, (code, lines)
    errors = [line for line in lines if not line.startswith("warning: ")
              and not re.match(rf"{command}: run #\d+ recorded in .*, a new runs database ", line)]
    assert len(errors) == 1 and errors[0].startswith(f"spkemb-engine {command}: error: "), lines


# ---- mutations ----------------------------------------------------------------------------------

#: values of the wrong type, size or sign for any key
WEIRD = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.sampled_from([0, -1, 2**63, -2**63 - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "nan", "inf", "1e400", "-0", "0x10", "~", "ä€𝄞", "{uri}", "../../etc"]),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
#: characters that mean something to YAML, and some that mean nothing to anyone
GARBAGE = st.text(alphabet=":{}[]&*!|>'\"%@`\t\n-#,?= \\" + "ä€𝄞\x00\x85\u2028", min_size=1, max_size=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a YAML/JSON tree, its root excluded."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return []
    return [p for key, value in items for p in [(*prefix, key), *_paths(value, (*prefix, key))]]


def _parent(tree: Any, path: tuple) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


def mutate_tree(draw: Draw, tree: Any) -> Any:
    """A few structural mutations: keys dropped, values replaced by weird ones, unknown keys added."""
    tree = json.loads(json.dumps(tree))  # a copy
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(tree)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, how = _parent(tree, path), draw(st.sampled_from(["drop", "replace", "add"]))
        if how == "drop":
            del parent[path[-1]]
        elif how == "replace":
            parent[path[-1]] = draw(WEIRD)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(WEIRD)
    return tree


def mutate_text(draw: Draw, text: str) -> str:
    """A textual mutation: a line duplicated (duplicate keys) or dropped, garbage inserted, or the text cut."""
    lines = text.splitlines(keepends=True)
    how = draw(st.sampled_from(["duplicate", "drop", "insert", "truncate", "none"]))
    if how in ("duplicate", "drop") and lines:
        i = draw(st.integers(0, len(lines) - 1))
        lines[i:i + 1] = [lines[i]] * (2 if how == "duplicate" else 0)
        return "".join(lines)
    if how == "insert":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(GARBAGE) + text[at:]
    if how == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    return text


@st.composite
def mutated_yaml(draw: Draw, template: str) -> str:
    """``template`` (YAML) with a few keys dropped, replaced or added, then maybe a textual mutation."""
    if draw(st.booleans()):
        template = yaml.safe_dump(mutate_tree(draw, yaml.safe_load(template)), allow_unicode=True, sort_keys=False)
    return mutate_text(draw, template)


# ---- config.yml: config check -------------------------------------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


CONFIGS = st.sampled_from(["demo", "tutorial", "recipe"]).flatmap(lambda name: mutated_yaml(template_text(name)))
DEMO = template_text("demo")


@FUZZ
@given(text=CONFIGS)
# found: a NUL escaped the YAML reader as a traceback; a key holding a carriage return split the error line
@pytest.mark.slow
@example(text="\x00" + DEMO)
@example(text=DEMO.replace("feature_extraction:\n", "feature_extraction:\n   \"a\\rb\": 1\n", 1))
@example(text="feature_extraction:\narchitecture: null\ntask:\n  name: Softmax\n")  # a KeyError
@example(text=DEMO.replace("per_epoch: ", "per_epoch: 1" + "0" * 400 + "  # ", 1))  # an OverflowError
@example(text=DEMO.replace("per_fold: ", "per_fold: 1" + "0" * 5000 + "  # ", 1))  # int repr over 4,300 digits
def test_config_check_of_a_mutated_config(folder: Path, text: str) -> None:
    config = folder / f"config-{next(_names)}.yml"
    config.write_text(text, encoding="utf-8")
    assert_clean("config check", *run_main("config", "check", str(config)))


# ---- database.yml and trial lists: validate ------------------------------------------------------

DATABASE_YML = """\
Databases:
  Demo: wav/{uri}.wav
Protocols:
  Demo:
    SpeakerVerification:
      Voices:
        scope: global
        train:
          uri: lists/train.lst
        test:
          uri: lists/test.lst
          trial: lists/test.trial.txt
"""
TRIALS = "1 a b\n0 a c\n1 b c\n0 b d\n"


@pytest.fixture(scope="module")
def corpus(folder: Path) -> Path:
    """A corpus folder with the lists of DATABASE_YML (no audio: a valid protocol ends in a missing
    audio file, before validate would wait for checkpoints) and a TRN_DIR."""
    root = folder / "corpus"
    (root / "lists").mkdir(parents=True)
    (root / "lists" / "train.lst").write_text("a\nb\n")
    (root / "lists" / "test.lst").write_text("a\nb\nc\nd\n")
    (root / "lists" / "test.trial.txt").write_text(TRIALS)
    (root / "exp" / "train" / f"{PROTOCOL}.train").mkdir(parents=True)
    return root


def validate(corpus: Path, database: Path) -> tuple[int, list[str]]:
    return run_main("validate", "--device", "cpu", "--database", str(database), "--db", str(corpus / "runs.db"),
                    str(corpus / "exp" / "train" / f"{PROTOCOL}.train"), PROTOCOL)


@FUZZ
@given(text=mutated_yaml(DATABASE_YML))
# found: an entry that is no path (a null), or one with no reader (`uri` misspelt), reached
# pyannote.database as a TypeError; a path template that str.format refuses, as a KeyError
@pytest.mark.slow
@example(text=DATABASE_YML.replace("          trial: lists/test.trial.txt\n",
                                   "          trial: lists/test.trial.txt\n          '0': null\n"))
@example(text=DATABASE_YML.replace("          uri: lists/test.lst", "          :uri: lists/test.lst"))
@example(text=DATABASE_YML.replace("{uri}", "{=uri}"))
@example(text=DATABASE_YML.replace("{uri}", "{:uri}"))
def test_validate_with_a_mutated_database_yml(corpus: Path, text: str) -> None:
    # a new file each time: protocols are cached per (file, modification time)
    database = corpus / f"database-{next(_names)}.yml"
    database.write_text(text, encoding="utf-8")
    assert_clean("validate", *validate(corpus, database))


TOKEN = st.one_of(st.sampled_from(["0", "1", "true", "False", "1.0", "nan", "-1", "2", "a", "b", "c", "d", '"', "'",
                                   '"a', "#", "a,b", "\\", "NULL", "ä€𝄞"]),
                  st.text(alphabet=string.printable + "ä€\u00a0\u3000", min_size=1, max_size=6))
TRIAL_LINES = st.lists(st.one_of(st.sampled_from(TRIALS.splitlines()),
                                 st.lists(TOKEN, max_size=5).map(" ".join)), max_size=8)


@FUZZ
@given(lines=TRIAL_LINES, end=st.sampled_from(["\n", "\r\n", ""]))
# found: pandas reads a field that starts with a quote as quoted, and raised ParserError
@pytest.mark.slow
@example(lines=['1 "a b', "0 a c"], end="\n")
def test_validate_with_random_trial_lines(corpus: Path, lines: list[str], end: str) -> None:
    database = corpus / "database.yml"
    if not database.exists():
        database.write_text(DATABASE_YML)
    (corpus / "lists" / "test.trial.txt").write_text(end.join(lines) + (end if lines else ""), encoding="utf-8")
    assert_clean("validate", *validate(corpus, database))


# ---- event files: import ------------------------------------------------------------------------

def _event_template() -> list[str]:
    """The lines of a real event file: two epochs of a training run (its checkpoint files on disk), then
    its end. Written once, at import: a strategy is built before any fixture."""
    root = Path(tempfile.mkdtemp(prefix="spkemb-fuzz-events-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    trn_dir = root / "exp/train/P.train"
    with EventWriter(trn_dir / "events.jsonl") as writer:
        run_id = write_training(writer, trn_dir, range(1, 3))
        writer.set_status(run_id, "completed")
    return (trn_dir / "events.jsonl").read_text().splitlines()


EVENT_LINES = _event_template()
JSON_GARBAGE = st.one_of(st.sampled_from(["", "{", "}", "[]", "null", "1", '"x"', "{}", '{"v": 2}', "NaN",
                                          '{"run": "u", "seq": 1, "t": 0, "op": "create_run", "args": {}}']),
                         st.text(max_size=20))


@st.composite
def mutated_events(draw: Draw) -> str:
    """EVENT_LINES with a few lines garbled, cut, copied, dropped, or with fields dropped, replaced or added."""
    lines = list(EVENT_LINES)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["fields", "garbage", "truncate", "duplicate", "drop"]))
        if how == "fields":
            with contextlib.suppress(ValueError):  # a line an earlier mutation already garbled stays so
                lines[i] = json.dumps(mutate_tree(draw, json.loads(lines[i])))
        elif how == "garbage":
            lines[i] = draw(JSON_GARBAGE)
        elif how == "truncate":
            lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
        elif how == "duplicate":
            lines.insert(i, lines[i])
        elif len(lines) > 1:
            del lines[i]
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


def _edited(line: int, **fields: Any) -> str:
    """EVENT_LINES with ``fields`` of line ``line`` (0-based) set, and that line copied after the last."""
    record = {**json.loads(EVENT_LINES[line]), **fields}
    return "\n".join([*EVENT_LINES, json.dumps(record)]) + "\n"


@FUZZ
@given(text=mutated_events())
# found: a seq beyond SQLite's 64-bit integers (OverflowError); a copied create_run renumbered (TypeError)
@pytest.mark.slow(seconds=20)
@example(text=_edited(3, seq=2**63))
@example(text=_edited(3, t=10**400))  # and a time beyond the doubles (OverflowError)
@example(text=_edited(0, seq=len(EVENT_LINES) + 1))
@example(text=_edited(4))  # a copied line, its seq twice: refused, no longer replayed twice
@example(text="\n".join([*EVENT_LINES, '{"v": 1, "seq": ' + "1" * 5000 + "}"]) + "\n")  # int_max_str_digits
def test_import_of_a_mutated_event_file(folder: Path, text: str) -> None:
    name = next(_names)
    events = folder / "events" / f"events-{name}.jsonl"
    events.parent.mkdir(exist_ok=True)
    events.write_text(text, encoding="utf-8")
    assert_clean("import", *run_main("import", str(events), "--db", str(folder / "events" / f"runs-{name}.db")))
