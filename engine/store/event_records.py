"""One line of an event file, checked field by field before anything of it reaches the database.

The arguments an operation may carry are those of the ``Store`` writer method of
that name, with their annotated types (a typed record's fields for a record argument):
one schema, read from the signatures and the records, so that the event format cannot
drift from the writers it replays. A line that does
not fit is a ``BadRecord`` naming the field and what was wrong with it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import os
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any

from engine.records import ASNORM_COLUMNS, from_args, record_class
from engine.records.labels import check_label, check_tags
from engine.store.runs import RUN_KINDS, RUN_STATUSES, Store

FORMAT_VERSION = 1

#: writer methods an event file may replay (create_run aside)
RUN_OPS = frozenset({"set_status", "heartbeat", "add_steps", "add_epoch", "add_checkpoint", "remove_checkpoint",
                     "add_validation", "set_best", "add_extraction", "add_problem", "add_diarization"})

#: arguments that take one of a few words
#: an event file's runs are written by their own process: never ``queued`` (only the database's queue is)
_CHOICES: dict[str, tuple[str, ...]] = {"kind": RUN_KINDS, "status": tuple(s for s in RUN_STATUSES if s != "queued")}

#: the statuses a run is created with (it ends through ``set_status``)
_STARTING = ("running", "indexing")

#: one file of ``add_diarization`` (``Store.add_diarization``): name -> (type, required)
_DIARIZED_FILE: dict[str, tuple[Any, bool]] = {
    "uri": (str, True), "der": (float, True), "missed": (float, True), "false_alarm": (float, True),
    "confusion": (float, True), "total": (float, True), "speakers": (int | None, False),
    "speakers_found": (int | None, False), "rttm_path": (str | None, False)}

#: one row of ``add_steps`` (``Store.add_steps``): name -> (type, required)
_STEP_ROW: dict[str, tuple[Any, bool]] = {
    "step": (int, True), "epoch": (int | None, False), "loss": (float | None, False),
    "lr": (float | None, False), "margin": (float | None, False), "chunks_per_s": (float | None, False),
    "time": (float, False)}

#: ``create_run``'s ``_origin``: where the run really ran (it becomes columns of ``runs``)
_ORIGIN: dict[str, tuple[Any, bool]] = {
    "host": (str | None, False), "pid": (int | None, False), "pid_start": (float | None, False),
    "slurm_job_id": (str | None, False), "started_at": (float, False),
    "software": (dict[str, str] | None, False)}


#: the fields that hold a Unix time (a record's ``t`` too): 1e300 was imported, and every `runs` after it
#: failed to show the date ("timestamp out of range for platform time_t")
_TIMES = frozenset({"time", "started_at", "pid_start"})
#: the last Unix time a record may carry: the year 2286, far beyond any run, within every time_t
MAX_TIME = 1e10


def _time_text(value: Any) -> str | None:
    """Why ``value`` is no Unix time (None when it is one)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not 0 <= value <= MAX_TIME:
        return f"must be a Unix time (seconds since 1970, at most {MAX_TIME:.0e}), not {json.dumps(value)[:40]}"
    return None


#: the figures that must be finite (a step's or an epoch's loss, an EER, raw or after AS-norm, and the
#: best one): JSON's ``Infinity``, ``NaN`` or ``1e999`` were imported, and one inf loss drawn in the
#: TUI's plots ended it; training refuses such losses, so only damage or a hand edit writes them
_FINITE = frozenset({"loss", "eer"})


#: how deep a line may nest: the engine writes a few levels (a config inside a run's arguments); a
#: line nested hundreds deep is damage that the database's JSON writer, and every reader of the
#: run after it, would meet as a RecursionError
MAX_DEPTH = 32


def _deeper_than(value: Any, depth: int) -> bool:
    """Whether JSON ``value`` nests lists and objects more than ``depth`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if level > depth:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


class BadRecord(ValueError):
    """A line that is not a usable event record; ``str()`` says what is wrong with it."""


@dataclass(frozen=True)
class EventRecord:
    """One line of an event file: ``op`` on the run ``run`` with the keyword arguments ``args``."""

    line: int
    run: str
    seq: int
    t: float
    op: str
    args: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The record as it is written in the file."""
        return {"run": self.run, "seq": self.seq, "t": self.t, "op": self.op, "args": self.args}


@functools.cache
def _params(op: str) -> list[tuple[str, Any, bool]]:
    """(name, annotated type, required) of the arguments of ``Store.<op>`` after ``run_id`` (cached:
    an import replays every record of a file through ``store_call``)."""
    method = getattr(Store, op)
    hints = typing.get_type_hints(method)
    return [(name, hints[name], param.default is inspect.Parameter.empty)
            for name, param in inspect.signature(method).parameters.items() if name not in ("self", "run_id", "_at")]


def _record_schema(cls: type) -> dict[str, tuple[Any, bool]]:
    """name -> (annotated type, required) of the fields of a record class."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls)}


def _schema(op: str) -> dict[str, tuple[Any, bool]]:
    """name -> (annotated type, required) of the keyword arguments of ``Store.<op>`` in an event
    line: a typed record (``engine.records``) travels as its fields, beside the other arguments."""
    fields = {}
    for name, hint, required in _params(op):
        record = record_class(hint)
        fields.update(_record_schema(record) if record is not None else {name: (hint, required)})
    return fields


def store_call(op: str, args: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The positional records and keyword arguments of ``Store.<op>`` for checked event ``args``."""
    args, records = dict(args), list[Any]()
    for _, hint, _ in _params(op):
        record = record_class(hint)
        if record is not None:
            names = {f.name for f in dataclasses.fields(record)}
            records.append(from_args(record, {k: args.pop(k) for k in list(args) if k in names}))
    return records, args


_SCHEMAS = {op: _schema(op) for op in RUN_OPS | {"create_run"}}


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    origin = typing.get_origin(hint)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", dict: "an object", os.PathLike: "a path"}
    return names.get(origin or hint, "a value")


#: the integers SQLite stores
_INT64 = (-2**63, 2**63 - 1)
#: the largest integer a double holds (roughly)
_MAX_FLOAT = int(sys.float_info.max)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits an annotation of the writers (bool is no number here)."""
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_fits(value, h) for h in args)
    if hint is float:  # an integer beyond the doubles (10**400) is no number the database can hold
        return (isinstance(value, float)
                or (isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_FLOAT))
    if hint is int:  # SQLite's INTEGER holds 64 bits; a larger one would fail the write itself
        return isinstance(value, int) and not isinstance(value, bool) and _INT64[0] <= value <= _INT64[1]
    if hint in (str, bool):
        return isinstance(value, hint)
    if origin is os.PathLike:
        return isinstance(value, str) and value != ""
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and _fits(v, args[1])
                                               for k, v in value.items())
    if record_class(hint) is hint:  # a nested record: an object, its fields checked by _check_fields
        return isinstance(value, dict)
    raise TypeError(f"event records cannot check values of type {hint!r}")  # a new writer argument


def _check_fields(values: Any, schema: dict[str, tuple[Any, bool]], where: str) -> None:
    if not isinstance(values, dict):
        raise BadRecord(f"{where} must be an object, not {json.dumps(values)[:40]}")
    unknown = sorted(values.keys() - schema.keys())
    if unknown:
        raise BadRecord(f"{where}: unknown argument {unknown[0]!r} (known: {', '.join(schema)})")
    missing = [name for name, (_, required) in schema.items() if required and name not in values]
    if missing:
        raise BadRecord(f"{where}: missing argument {missing[0]!r}")
    for name, value in values.items():
        hint = schema[name][0]
        if not _fits(value, hint):
            raise BadRecord(f"{where}: {name} must be {_type_name(hint)}, not {json.dumps(value)[:40]}")
        if name in _TIMES and (why := _time_text(value)) is not None:
            raise BadRecord(f"{where}: {name} {why}")
        if name in _FINITE and isinstance(value, float) and not math.isfinite(value):
            raise BadRecord(f"{where}: {name} must be a finite number, not {json.dumps(value)}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise BadRecord(f"{where}: {name} must be one of {', '.join(_CHOICES[name])}, not {value!r}")
        nested = record_class(hint)
        if nested is not None and isinstance(value, dict):
            _check_fields(value, _record_schema(nested), f"{where}: {name}")


def _upgrade(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Arguments as this version writes them: files written before the typed records named the
    AS-norm figures of ``add_validation`` by their database columns (``eer_asnorm``)."""
    norm = args.get("asnorm")
    if op == "add_validation" and isinstance(norm, dict) and "eer_asnorm" in norm:
        args = {**args, "asnorm": {field: norm[column] for field, column in ASNORM_COLUMNS.items() if column in norm}}
    return args


def _check_args(op: str, args: dict[str, Any]) -> None:
    where = f"{op} args"
    _check_fields(args, _SCHEMAS[op], where)
    if op == "add_steps":
        for i, row in enumerate(args["rows"]):
            _check_fields(row, _STEP_ROW, f"{where}: rows[{i}]")
    if op == "add_diarization":
        for i, row in enumerate(args["files"]):
            _check_fields(row, _DIARIZED_FILE, f"{where}: files[{i}]")
    if op == "create_run":
        _check_run_labels(args, where)
        _check_run_paths(args, where)
    if op == "create_run" and args.get("_origin") is not None:
        _check_fields(args["_origin"], _ORIGIN, f"{where}: _origin")


def _check_run_paths(args: dict[str, Any], where: str) -> None:
    """A new run's folders as the engine writes them: absolute, without ``..`` (``../../../etc`` was
    imported as /etc, which the TUI's actions would then read), and its log inside its folder."""
    for key in ("exp_dir", "out_dir", "log_path"):
        value = args.get(key)
        if isinstance(value, str) and (not os.path.isabs(value) or os.path.normpath(value) != value):
            raise BadRecord(f"{where}: {key} {value!r} is not an absolute path without `..` (the engine writes "
                            "each folder so)")
    log, folder = args.get("log_path"), args.get("out_dir")
    if isinstance(log, str) and isinstance(folder, str) and os.path.commonpath([log, folder]) != folder:
        raise BadRecord(f"{where}: log_path {log!r} is outside the run's folder {folder!r}")


def _check_run_labels(args: dict[str, Any], where: str) -> None:
    """A new run's status, group and tags as ``create_run`` takes them."""
    if args.get("status", "running") not in _STARTING:
        raise BadRecord(f"{where}: status of a new run must be one of {', '.join(_STARTING)}, "
                        f"not {args['status']!r}")
    try:
        if args.get("run_group") is not None:
            check_label(args["run_group"], "group")
        check_tags(args.get("tags") or ())
    except ValueError as e:
        raise BadRecord(f"{where}: {e}") from None


def parse_record(text: str, line: int) -> EventRecord:
    """The record on one line of an event file.

    Raises
    ------
    BadRecord
        Not JSON, not an object, or a field missing or of the wrong type.
    """
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        raise BadRecord("not JSON") from None
    except ValueError:  # an integer of more than 4,300 digits (Python's int_max_str_digits)
        raise BadRecord("a number too long to read") from None
    except RecursionError:  # Python's JSON reader recurses once per level: `[[[[…` deeper than its stack
        raise BadRecord(f"nested more than {MAX_DEPTH} levels deep") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(record, MAX_DEPTH):
        raise BadRecord(f"nested more than {MAX_DEPTH} levels deep")
    if not isinstance(record, dict):
        raise BadRecord("not a JSON object")
    if record.get("v", FORMAT_VERSION) != FORMAT_VERSION:
        raise BadRecord(f"format version {record['v']!r} is not {FORMAT_VERSION}: import it with the "
                        "spkemb version that wrote it")
    for key, hint in (("run", str), ("seq", int), ("t", float), ("op", str), ("args", dict[str, Any])):
        if key not in record:
            raise BadRecord(f"no {key!r} field")
        if not _fits(record[key], hint):
            raise BadRecord(f"{key} must be {_type_name(hint)}, not {json.dumps(record[key])[:40]}")
    if (why := _time_text(record["t"])) is not None:
        raise BadRecord(f"t {why}")
    op = record["op"]
    if op not in _SCHEMAS:
        raise BadRecord(f"unknown op {op!r} (known: create_run, {', '.join(sorted(RUN_OPS))})")
    if record["seq"] < 1 or not record["run"]:
        raise BadRecord("seq must be 1 or more and run a non-empty id")
    if op == "create_run" and record["seq"] != 1:
        raise BadRecord(f"create_run with seq {record['seq']}: only a run's first record (seq 1) creates it")
    args = _upgrade(op, record["args"])
    _check_args(op, args)
    return EventRecord(line, record["run"], record["seq"], float(record["t"]), op, args)
