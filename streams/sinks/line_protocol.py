"""InfluxDB line protocol for our measurements: escaping done right and stable field types.

Every numeric field is written as a float (``1.0`` stays a float: a field's type must never change
within a shard), strings are quoted, non-finite floats are left out (InfluxDB rejects them), and a
point left with no field is not written at all. Timestamps are epoch milliseconds: write with
``precision=ms``.

These are the pieces of a line; :mod:`streams.sinks.encoders` puts them together into the
precompiled encoder of each measurement (:mod:`streams.sinks.measurements`). The general encoder
that takes any point as dicts is the tests' oracle (``tests/line_protocol_oracle.py``), not
production code.
"""

from __future__ import annotations

import math

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})


def escape_tag(text: str) -> str:
    """A tag key or tag value (also field keys) with commas, equals signs and spaces escaped."""
    return text.translate(_TAG_ESCAPES)


def escape_measurement(text: str) -> str:
    """A measurement name with commas and spaces escaped."""
    return text.translate(_MEASUREMENT_ESCAPES)


def quote_string(text: str) -> str:
    """A string field value: double-quoted, with backslashes, quotes and newlines escaped."""
    if "\\" in text or '"' in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + text + '"'


def field_value(value: float | int | str | bool) -> str | None:
    """A field value typed by its Python type (numbers as floats); None when not writable (NaN, ±inf)."""
    if type(value) is float:  # the usual case, first
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote_string(value)
    number = float(value)
    if not math.isfinite(number):
        return None
    return repr(number)


def series_key(measurement: str, tags: tuple[tuple[str, str | None], ...]) -> str:
    """The measurement and its tags sorted by key and escaped, empty and None values left out."""
    head = escape_measurement(measurement)
    return head + "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags) if v)
