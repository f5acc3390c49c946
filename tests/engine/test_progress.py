"""How progress reads: rates below one a second keep their digits."""

from __future__ import annotations

from engine.progress import per_second


def test_slow_rates_are_not_rounded_to_zero() -> None:
    assert per_second(0.25) == "0.25"
    assert per_second(3.14159) == "3.1"
    assert per_second(0.0) == "0"
    assert per_second(12.6) == "13" and per_second(12345.0) == "12,345"
