"""Our line-protocol encoder: escaping and stable field types."""

from streams.sinks.line_protocol import encode_line


def test_escaping_of_measurement_tags_and_string_fields() -> None:
    line = encode_line(
        "unit energy",
        {"unit_id": "A,B=C D", "region": "江苏"},
        {"message": 'say "hi"\\ok', "value": 1.0},
        1_700_000_000_000,
    )
    assert line == (
        r"unit\ energy,region=江苏,unit_id=A\,B\=C\ D "
        r'message="say \"hi\"\\ok",value=1.0 1700000000000'
    )


def test_numbers_are_always_floats_and_non_finite_ones_are_left_out() -> None:
    line = encode_line("energy", {"unit_id": "U1"}, {"qty": 42, "tce": float("nan"), "co2_t": 0.5}, 1)
    assert line == "energy,unit_id=U1 qty=42.0,co2_t=0.5 1"


def test_a_point_without_fields_is_not_written_and_empty_tags_are_omitted() -> None:
    assert encode_line("energy", {"unit_id": "U1"}, {"tce": float("inf"), "qty": None}, 1) is None
    assert encode_line("energy", {"unit_id": "U1", "region": None, "industry": ""}, {"tce": 1.5}, 1) == (
        "energy,unit_id=U1 tce=1.5 1"
    )
