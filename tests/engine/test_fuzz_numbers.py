"""Generated values for the CLI's numeric options: each is accepted within its documented range, or
refused with exit 2 and exactly one stderr line naming the option, never a traceback.

The values go through ``engine.cli.parse_command``, the parser and request checks ``main`` runs
before any command's work (one real subprocess below checks that the two say the same).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.arguments import MAX_BATCH, MAX_EPOCH
from engine.cli import main, parse_command
from tests.engine.engine_runner import run_engine


@dataclass(frozen=True)
class Option:
    command: tuple[str, ...]
    flag: str
    field: str
    low: int
    high: int
    positionals: tuple[str, ...]


TRAIN = ("exp", "Demo.SpeakerVerification.Voices")
VALIDATE = ("trn", "Demo.SpeakerVerification.Voices")
OPTIONS = (
    Option(("train",), "--to", "to", 1, MAX_EPOCH, TRAIN),
    Option(("validate",), "--to", "to", 0, MAX_EPOCH, VALIDATE),
    Option(("validate",), "--every", "every", 1, MAX_EPOCH, VALIDATE),
    Option(("validate",), "--from", "from_epoch", 0, MAX_EPOCH, VALIDATE),
    Option(("validate",), "--batch", "batch", 1, MAX_BATCH, VALIDATE),
    Option(("apply",), "--batch", "batch", 1, MAX_BATCH, ("val", "Demo.SpeakerDiarization.Meetings")),
    Option(("validate",), "--cohort-size", "cohort_size", 2, 100_000, VALIDATE),  # AS-norm needs 2
)

#: what a person or a script might type: numbers of every kind, and anything else
VALUES = st.one_of(
    st.integers().map(str),
    st.integers(min_value=-3, max_value=3).map(str),
    st.integers(min_value=10**6, max_value=10**400).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "1e3", "0x10", "1_000", "٣", " 7 ", "+5", "-0", "nan", "-", "--", "5.0", "two"]),
    st.text(max_size=12),
)


def run_parser(argv: list[str]) -> tuple[object, int | None, str]:
    """(the request or None, the exit status or None, stderr) of parsing ``argv`` as main does."""
    err = io.StringIO()
    request, code = None, None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            _, request = parse_command(argv)
        except SystemExit as e:
            code = e.code
    return request, code, err.getvalue()


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(option=st.sampled_from(OPTIONS), value=VALUES, joined=st.booleans())
@example(option=OPTIONS[0], value="--", joined=True)  # argparse 3.11 made `--to=--` an empty list
def test_numeric_options_are_accepted_in_range_or_refused_in_one_line(option: Option, value: str,
                                                                      joined: bool) -> None:
    given_value = [f"{option.flag}={value}"] if joined else [option.flag, value]
    request, code, err = run_parser([*option.command, *given_value, *option.positionals])
    assert "Traceback" not in err
    if request is not None:
        parsed = getattr(request, option.field)
        assert isinstance(parsed, int) and option.low <= parsed <= option.high, (value, parsed)
        assert err == ""
        return
    assert code == 2, (value, code, err)
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith(f"spkemb-engine {' '.join(option.command)}: error: "), err
    assert option.flag in lines[0], err


@pytest.mark.parametrize("value", ["0", "-1", "1e9", "abc", "99999999999999999999999"])
def test_every_epoch_option_refuses_out_of_range(value: str) -> None:
    for option in OPTIONS:
        if option.low <= (int(value) if value.lstrip("-").isdigit() else -10) <= option.high:
            continue
        request, code, err = run_parser([*option.command, option.flag, value, *option.positionals])
        assert request is None and code == 2 and len(err.splitlines()) == 1, (option, err)
        assert f"{value} is not accepted" in err and "from" in err, err  # what is accepted, too


def test_from_after_to_is_refused_before_any_work() -> None:
    request, code, err = run_parser(["validate", "--from", "5", "--to", "3", *VALIDATE])
    assert request is None and code == 2
    assert err == "spkemb-engine validate: error: --from 5 is after --to 3: no epoch to evaluate; " \
                  "pass --from at most 3\n"


def test_the_real_command_line_says_the_same() -> None:
    argv = ["train", "--to", "0", *TRAIN]
    _, code, err = run_parser(argv)
    done = run_engine(*argv)
    assert (done.returncode, done.stderr) == (code, err) == (2, err)
    with contextlib.redirect_stderr(io.StringIO()) as caught, pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and caught.getvalue() == err
