"""Line-protocol pieces (escaping, typed values, the series) and the tests' oracle, against lines
written out by hand."""

from typing import Any

import pytest

from streams.sinks.line_protocol import escape_measurement, escape_tag, field_value, quote_string, series_key
from tests.line_protocol_oracle import encode_line


def test_tags_measurements_and_strings_are_escaped() -> None:
    assert escape_tag("A,B=C D\nE") == r"A\,B\=C\ D\nE"
    assert escape_measurement("unit energy,x=y") == r"unit\ energy\,x=y"
    assert quote_string('say "hi"\\ok\nnext') == r'"say \"hi\"\\ok\nnext"'
    assert quote_string("用能") == '"用能"'


@pytest.mark.parametrize(
    ("value", "text"),
    [(42, "42.0"), (1.5, "1.5"), (-0.0, "-0.0"), (True, "true"), (False, "false"), ("x", '"x"')],
)
def test_numbers_are_always_floats_and_other_values_typed(value: Any, text: str) -> None:
    assert field_value(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_not_writable(value: float) -> None:
    assert field_value(value) is None


def test_the_series_sorts_tags_and_leaves_empty_ones_out() -> None:
    tags = (("unit_id", "A,B"), ("region", "江 苏"), ("industry", None), ("energy", ""))
    assert series_key("energy", tags) == r"energy,region=江\ 苏,unit_id=A\,B"


def test_the_oracle_writes_lines_as_written_by_hand() -> None:
    line = encode_line(
        "unit energy",
        {"unit_id": "A,B=C D", "region": "江苏", "industry": None},
        {"message": 'say "hi"\\ok', "value": 1, "nan": float("nan"), "none": None, "ok": True},
        1_700_000_000_000,
    )
    assert line == (
        r"unit\ energy,region=江苏,unit_id=A\,B\=C\ D "
        r'message="say \"hi\"\\ok",value=1.0,ok=true 1700000000000'
    )
    assert encode_line("energy", {"unit_id": "U1"}, {"tce": float("inf"), "qty": None}, 1) is None
