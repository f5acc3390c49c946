"""Trial lists checked line by line before pyannote.database reads them, and read
(``load_trials``: ``validate``'s trial list and its calibration list).

pyannote.database reads a trial file with pandas (``read_table(sep=r"\\s+")``): a line cut
short becomes a row of NaN, whose uri then names a phantom audio file (``…/wav/nan.wav does
not exist``), and a line with a fourth field shifts the columns. Checking the file first
names the file and the line instead. torch-free.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.data.protocols import SUBSETS, check_subset_entries, load_protocol
from engine.data.reference_lines import SEPARATOR
from engine.data.uri_lists import uri_problem, uri_refusal
from engine.errors import ProtocolError

#: how a trial line reads
TRIAL_LINE = "`reference uri1 uri2` (reference 1 for a target trial, 0 for a non-target one)"
#: a reference as pandas may give it (int, bool, float when a NaN is in its column), as text
_REFERENCES = {"0": 0, "1": 1, "false": 0, "true": 1, "0.0": 0, "1.0": 1}


def trial_file(method: Callable[..., Any]) -> Path | None:
    """The file behind a ``{subset}_trial`` method of a database.yml protocol, when it has one.

    pyannote.database binds the subset's entries and the database.yml path to the method
    (a ``functools.partial``); a protocol written in Python has neither, and gets None.
    """
    keywords = getattr(method, "keywords", None) or {}
    entries, database_yml = keywords.get("entries"), keywords.get("database_yml")
    if not isinstance(entries, dict) or "trial" not in entries or database_yml is None:
        return None
    from pyannote.database.custom import resolve_path

    try:
        return resolve_path(Path(entries["trial"]), Path(database_yml))
    except FileNotFoundError:
        folder = Path(database_yml).parent / entries["trial"]  # an absolute entry stays itself
        if folder.is_dir():  # pyannote.database would say "Could not find file" of a folder that is there
            raise ProtocolError(f"{database_yml}: `trial: {entries['trial']}` names a folder ({folder}): name the "
                                "trial list in it (a file of `reference uri1 uri2` lines)") from None
        return None  # pyannote.database says so itself, naming the path


def check_trial_file(path: str | Path) -> list[tuple[int, str, str]]:
    """``(reference, uri1, uri2)`` of each trial of a trial file, the uris as it writes them; a
    malformed line is refused, naming ``FILE:LINE`` and the line.

    Raises
    ------
    ProtocolError
        A non-blank line that is not three fields with a 0/1 reference, or whose uri would lead
        out of the database's folder (``engine.data.uri_lists``).
    """
    written = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                # a UTF-8 byte-order mark: pandas, which reads the list, drops it; fields are what pandas'
                # `\s+` splits on (spaces and tabs): a line of a form feed is a row to it, not a blank line
                text = (line.removeprefix("\ufeff") if number == 1 else line).rstrip("\r\n")
                fields = [f for f in SEPARATOR.split(text) if f]
                # pandas reads a field that starts with a quote as quoted, up to the next quote,
                # lines apart: the rows after it would shift
                if fields and (len(fields) != 3 or fields[0].lower() not in _REFERENCES
                               or any(f.startswith('"') for f in fields)):
                    raise ProtocolError(f"{path}:{number}: malformed trial line {text.strip(' ')!r}: "
                                        f"expected {TRIAL_LINE} — {_fix(fields, path)}")
                for uri in fields[1:]:
                    reason = uri_problem(uri)
                    if reason is not None:
                        raise uri_refusal(f"{path}:{number}", uri, reason)
                if fields:
                    written.append((_REFERENCES[fields[0].lower()], fields[1], fields[2]))
    except OSError as e:
        raise ProtocolError(f"trial file {path} cannot be read: {e}") from e
    return written


def _fix(fields: list[str], path: str | Path) -> str:
    """How to mend a malformed line: Kaldi's and WeSpeaker's lists (``uri1 uri2 target``) are converted
    whole; any other line is fixed or deleted."""
    if len(fields) == 3 and fields[2].lower() in ("target", "nontarget"):
        converted = f"{path}.pyannote"
        # Windows line ends and the uris' .wav (which the audio template adds again) go too
        return (f"this is Kaldi's trial format (uri1 uri2 target|nontarget): convert the list with `awk "
                f"'{{sub(/\\r$/, \"\"); sub(/\\.wav$/, \"\", $1); sub(/\\.wav$/, \"\", $2); "
                f"print ($3 == \"target\"), $1, $2}}' {shlex.quote(str(path))} > {shlex.quote(converted)}` "
                "and name that file under `trial:`")
    return "fix or delete that line"


def check_trial(trial: Any, number: int, source: str) -> tuple[int, str, str]:
    """``(reference, uri1, uri2)`` of one trial a protocol yields, refusing a malformed one.

    The net behind ``check_trial_file``, for protocols whose file ``trial_file`` cannot find.
    """
    reference = _REFERENCES.get(str(trial["reference"]).strip().lower())
    uris = [trial[key]["uri"] for key in ("file1", "file2")]
    # pandas reads a missing field as a float NaN (and a numeric uri as an int, which is fine)
    if reference is None or not all(u is not None and not isinstance(u, float) and str(u) for u in uris):
        raise ProtocolError(f"{source}: trial {number} is malformed (reference {trial['reference']!r}, "
                            f"uris {uris[0]!r} and {uris[1]!r}): expected {TRIAL_LINE} — fix the trial list")
    for uri in uris:
        reason = uri_problem(str(uri))
        if reason is not None:
            raise uri_refusal(f"{source}: trial {number}", str(uri), reason)
    return reference, str(uris[0]), str(uris[1])


def _audio(protocol: Any, file: Any, uri: str) -> str:
    """The audio path of a trial's ``file``, found again for ``uri`` where pandas read it otherwise."""
    if str(file["uri"]) != uri:
        file = protocol.preprocess({"uri": uri, "database": file["database"]})
    return str(file["audio"])


def check_both_kinds(trials: list[tuple[int, str, str]], source: str) -> None:
    """An EER needs target and non-target trials: refuse a list of only one kind."""
    targets = sum(reference for reference, _, _ in trials)
    if targets in (0, len(trials)):
        raise ProtocolError(f"{source}: {targets} of the {len(trials)} trials are target trials: an EER "
                            "needs both target (1) and non-target (0) trials — fix the trial list")


def trial_subsets(protocol: Any) -> list[str]:
    """The subsets of ``protocol`` that have a trial list: a ``trial:`` entry in database.yml, or a
    ``{subset}_trial_iter`` (or pyannote's legacy ``{trn,dev,tst}_try_iter``) of a Python protocol.

    pyannote.database gives every speaker verification protocol all three ``{subset}_trial``
    methods; those without a list fail only when read (``train_trial_iter is not implemented.``).
    """
    from pyannote.database.protocol.speaker_verification import (
        LEGACY_SUBSET_MAPPING,
        SpeakerVerificationProtocol,
    )

    found = []
    for subset in SUBSETS:
        method = getattr(protocol, f"{subset}_trial", None)
        if method is None:
            continue
        inherited = getattr(method, "__func__", None) is getattr(SpeakerVerificationProtocol, f"{subset}_trial")
        own_iter = (getattr(type(protocol), f"{subset}_trial_iter", None)
                    is not getattr(SpeakerVerificationProtocol, f"{subset}_trial_iter"))
        if not inherited or own_iter or hasattr(protocol, f"{LEGACY_SUBSET_MAPPING[subset]}_try_iter"):
            found.append(subset)
    return found


def check_trial_subset(protocol_name: str, subset: str, database: str | None,
                       option: str = "--subset") -> tuple[Any, Any]:
    """The protocol and its ``{subset}_trial`` method, once the subset is known to have a trial list and
    its entries to be readable (``option`` names the subset in the line refusing it).

    Raises
    ------
    ProtocolError
        A subset that is none, a protocol without trials, a subset without a trial list (naming the
        subsets that have one), or an entry pyannote.database would fail on.
    """
    if subset not in SUBSETS:
        raise ProtocolError(f"{option} {subset}: {subset!r} is not a subset: use one of {', '.join(SUBSETS)}")
    protocol = load_protocol(protocol_name, database)
    method = getattr(protocol, f"{subset}_trial", None)
    if method is None:
        raise ProtocolError(f"protocol {protocol_name} has no {subset}_trial(): validate needs a "
                            "speaker verification protocol with trials (e.g. "
                            "VoxCeleb.SpeakerVerification.VoxCeleb1)")
    with_trials = trial_subsets(protocol)
    if subset not in with_trials:
        fix = (f"name one that has one: {' or '.join(with_trials)} (e.g. `{option} {with_trials[-1]}`)"
               if with_trials else "nor has any other: give a subset a `trial:` list in database.yml, or pick "
               "a protocol that has one (validate scores trials)")
        raise ProtocolError(f"protocol {protocol_name}: its {subset} subset has no trial list — {fix}")
    check_subset_entries(protocol, subset)
    return protocol, method


def load_trials(protocol_name: str, subset: str, database: str | None, option: str = "--subset"
                ) -> tuple[list[tuple[int, str, str]], dict[str, str]]:
    """Trials ``(reference, uri1, uri2)`` of ``{subset}_trial()`` and the audio path of each uri.

    ``option``: the command-line option that named ``subset``, for the line refusing it.
    """
    protocol, method = check_trial_subset(protocol_name, subset, database, option)
    path = trial_file(method)
    written = check_trial_file(path) if path is not None else None
    source = str(path) if path is not None else f"the {subset} trials of {protocol_name}"
    trials: list[tuple[int, str, str]] = []
    files: dict[str, str] = {}
    try:
        for number, trial in enumerate(method(), 1):
            # the line as written, checked above: pandas, which reads it for pyannote.database, makes
            # `0001` the number 1 (whose audio would be 1.wav, another file) and `1e5` a float
            checked = written[number - 1] if written and number <= len(written) else check_trial(trial, number, source)
            trials.append(checked)
            for key, uri in zip(("file1", "file2"), checked[1:], strict=True):
                files.setdefault(uri, _audio(protocol, trial[key], uri))
    except (NotImplementedError, AttributeError, FileNotFoundError, ValueError) as e:
        # pyannote.database says "not implemented" for a subset without a `trial:` list; pandas,
        # which reads the list, raises ValueErrors (ParserError, UnicodeDecodeError)
        problem = (str(e).splitlines() or [type(e).__name__])[0]
        raise ProtocolError(f"protocol {protocol_name}: {subset} trials cannot be read ({problem}); "
                            "check the `trial:` entry of database.yml and the list it names") from e
    if not trials:
        raise ProtocolError(f"protocol {protocol_name} lists no {subset} trial")
    if written is not None and len(written) != len(trials):  # a trial would be scored twice, or not at all
        raise ProtocolError(f"{path}: pyannote.database reads {len(trials)} trials where the file has {len(written)} "
                            "trial lines — a line holds characters it reads otherwise: keep each line to "
                            f"{TRIAL_LINE}, fields apart by spaces or tabs")
    check_both_kinds(trials, source)
    return trials, files
