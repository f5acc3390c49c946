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


def test_a_line_says_the_rate_since_the_line_before_not_since_the_start() -> None:
    """An epoch's first batch waits for its loader workers: the lines said `0.45 batches/s` beside
    `40 chunks/s` (32 chunks a batch), and an ETA far too long, for the rest of the epoch."""
    import io

    from engine.progress import Progress

    now = [100.0]
    log = io.StringIO()
    progress = Progress(file=log, clock=lambda: now[0])
    with progress.phase("epoch 1/1", 36, "batches", said=False) as phase:
        now[0] += 30.0  # the workers start: the first batch after 30 s
        phase.advance(1)
        for _ in range(24):  # then one a second
            now[0] += 1.0
            phase.advance(1)
        assert phase.status(now[0] + 0.01) == "epoch 1/1: 25/36 batches (1 batches/s, ETA 0:11)"
    assert log.getvalue().splitlines() == ["epoch 1/1: 36 batches…",
                                           "epoch 1/1: 1/36 batches (0.033 batches/s, ETA 17:30)",
                                           "epoch 1/1: 11/36 batches (1 batches/s, ETA 0:25)",
                                           "epoch 1/1: 21/36 batches (1 batches/s, ETA 0:15)"]
