"""How progress reads: rates below one a second keep their digits."""

from __future__ import annotations

from engine.progress import per_second


def test_slow_rates_are_not_rounded_to_zero() -> None:
    assert per_second(0.25) == "0.25"
    assert per_second(3.14159) == "3.1"
    assert per_second(0.0) == "0"
    assert per_second(12.6) == "13" and per_second(12345.0) == "12,345"


def test_a_phase_without_its_opening_line_says_nothing_while_it_is_quick() -> None:
    import io

    from engine.progress import Progress

    for opening, said in ((True, "validate: checking the trials' files: 3 files…\n"), (False, "")):
        log = io.StringIO()  # a log file, as under the TUI: lines, no bar
        with Progress(file=log).phase("validate: checking the trials' files", 3, said=False,
                                      opening=opening) as phase:
            for _ in range(3):
                phase.advance(1)
        assert log.getvalue() == said
