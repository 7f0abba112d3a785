"""The precompiled encoders of our measurements: the general encoder's lines, stable types, escaping."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sinks.encoders import FieldType, Measurement
from streams.sinks.measurements import (
    MEASUREMENTS,
    encode_alert,
    encode_energy,
    encode_meter_event,
    encode_unit_status,
)
from tests.line_protocol_oracle import encode_line

text = st.text(alphabet=st.sampled_from(list('ab ,=\n\\"江')), max_size=6)
tag_value = st.one_of(st.none(), text)
numbers = st.one_of(st.none(), st.floats(), st.integers(-(2**53), 2**53))


def value_of(kind: FieldType) -> st.SearchStrategy[Any]:
    return {
        FieldType.FLOAT: numbers,
        FieldType.INT: st.one_of(st.none(), st.integers()),
        FieldType.BOOL: st.one_of(st.none(), st.booleans()),
        FieldType.STRING: st.one_of(st.none(), text),
    }[kind]


@st.composite
def points(draw: st.DrawFn) -> tuple[Measurement, dict[str, Any], dict[str, Any], int]:
    m = draw(st.sampled_from(MEASUREMENTS))
    tags = {t: draw(tag_value) for t in m.tags}
    fields = {k: draw(value_of(kind)) for k, kind in m.fields.items()}
    if m.dynamic_fields:
        fields.update(draw(st.dictionaries(text, st.one_of(numbers, text, st.booleans()), max_size=5)))
    return m, tags, fields, draw(st.integers(0, 2**42))


@settings(max_examples=500, deadline=None)
@given(points())
def test_each_compiled_encoder_gives_the_general_encoders_line(
    point: tuple[Measurement, dict[str, Any], dict[str, Any], int],
) -> None:
    m, tags, fields, ts_ms = point
    assert m.line(tags, fields, ts_ms) == encode_line(m.name, tags, fields, ts_ms)


def test_a_float_field_is_always_written_as_a_float_and_an_int_field_with_its_suffix() -> None:
    counts = Measurement("counts", ("unit_id",), {"pct": FieldType.FLOAT, "n": FieldType.INT})
    assert counts.encode("U1", 1, 42, 5) == "counts,unit_id=U1 pct=1.0,n=42i 5"
    assert counts.encode("U1", 1.0, None, 5) == "counts,unit_id=U1 pct=1.0 5"
    line = encode_energy("U1", None, None, "M1", "electricity", "main", 1.0, 0, 2, False, 7)
    assert line == (
        "energy,energy=electricity,meter_id=M1,role=main,unit_id=U1 "
        "qty=1.0,tce=0.0,co2_t=2.0,estimated=false 7"
    )


@pytest.mark.parametrize(("qty", "estimated"), [("1.5", False), (True, False), (1.0, 1), (1.0, "yes")])
def test_a_value_of_another_type_than_declared_is_refused(qty: Any, estimated: Any) -> None:
    with pytest.raises(TypeError, match="declared"):
        encode_energy("U1", None, None, "M1", "electricity", "main", qty, 1.0, 1.0, estimated, 7)


def test_tags_measurement_and_strings_are_escaped() -> None:
    assert encode_meter_event("A,B=C D", "江 苏", None, "M=1", "swap", 'said "x"\\\nnext', 3) == (
        r"meter_event,event=swap,meter_id=M\=1,region=江\ 苏,unit_id=A\,B\=C\ D "
        r'detail="said \"x\"\\\nnext" 3'
    )
    odd = Measurement("unit energy,x", ("a b",), {"f=1": FieldType.FLOAT})
    assert odd.encode("v", 1.0, 9) == r"unit\ energy\,x,a\ b=v f\=1=1.0 9"
    quoted = Measurement("m", ("t",), {'a"b\\c{d}': FieldType.STRING})
    assert quoted.encode("x", "v", 1) == encode_line("m", {"t": "x"}, {'a"b\\c{d}': "v"}, 1)


def test_non_finite_and_missing_values_are_left_out_and_a_point_without_fields_is_none() -> None:
    nan, inf = float("nan"), float("inf")
    assert encode_energy("U1", "", None, "M1", "steam", "sub", nan, 1.0, inf, None, 7) == (
        "energy,energy=steam,meter_id=M1,role=sub,unit_id=U1 tce=1.0 7"
    )
    assert encode_alert("U1", None, None, "r", "s", None, None, nan, None, 7) is None
    assert encode_unit_status("U1", None, None, {"a": nan, "b": None}, 7) is None
    assert encode_unit_status("U1", None, None, {"a": 2, "level": "red"}, 7) == (
        'unit_status,unit_id=U1 a=2.0,level="red" 7'
    )


def test_a_timestamp_must_be_whole_milliseconds() -> None:
    assert encode_alert("U1", "江苏", "steel", "r", "s", "raised", "m", 1.0, 2.0, 7.0) == (
        'alert,industry=steel,region=江苏,rule=r,severity=s,unit_id=U1 state="raised",message="m",'
        "value=1.0,threshold=2.0 7"
    )
    with pytest.raises(TypeError, match="ts_ms"):
        encode_alert("U1", None, None, "r", "s", "raised", "m", 1.0, 2.0, 7.5)


def test_a_full_series_cache_drops_its_older_half_and_lines_stay_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More series than the cache holds: it keeps at most HEAD_CACHE_SIZE, the newest ones stay, and
    every line is still what the oracle writes."""
    import streams.sinks.encoders as encoders

    monkeypatch.setattr(encoders, "HEAD_CACHE_SIZE", 8)
    m = Measurement("m", ("unit_id",), {"v": FieldType.FLOAT})
    heads = m.encode.__globals__["_heads"]
    for i in range(20):
        assert m.encode(f"U{i}", 1.0, 5) == encode_line("m", {"unit_id": f"U{i}"}, {"v": 1.0}, 5)
        assert len(heads) <= 8
    assert ("U19",) in heads and ("U0",) not in heads
