"""A config key's label in the Configs form wraps after its dots."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.widgets.key_label import dotted_lines


def test_a_key_breaks_after_the_dot_before_the_name_that_does_not_fit() -> None:
    assert dotted_lines("feature_extraction.params.sample_rate", 31) == ["feature_extraction.params.", "sample_rate"]
    assert dotted_lines("task.params.margin", 31) == ["task.params.margin"]
    assert dotted_lines("data_augmentation[0].params.snr_min", 21) == ["data_augmentation[0].", "params.snr_min"]


def test_a_name_wider_than_the_label_is_cut_where_it_must_be() -> None:
    lines = dotted_lines("task.margin_scheduler_increase_type", 10)
    assert lines == ["task.", "margin_sch", "eduler_inc", "rease_type"]


@given(st.lists(st.text("abc_[]0", min_size=1, max_size=12), min_size=1, max_size=6), st.integers(1, 40))
def test_the_lines_give_back_the_key_and_fit(names: list[str], width: int) -> None:
    key = ".".join(names)
    lines = dotted_lines(key, width)
    assert "".join(lines) == key and all(0 < len(line) <= width for line in lines)
