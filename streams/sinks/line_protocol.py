"""InfluxDB line protocol for our measurements: escaping done right and stable field types.

Every numeric field is written as a float (``1.0`` stays a float: a field's type must never change
within a shard), strings are quoted, non-finite floats are left out (InfluxDB rejects them), and a
point left with no field is not written at all. Timestamps are epoch milliseconds: write with
``precision=ms``.

:func:`encode_line` takes any measurement as dicts; :mod:`streams.sinks.measurements` has the
precompiled encoders of our own measurements (several times faster, same lines).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

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


def encode_line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, float | int | str | bool | None],
    ts_ms: int,
) -> str | None:
    """One point as a line (no newline), or None when it has no writable field.

    Tags with an empty or None value are omitted (InfluxDB does not allow empty tag values);
    tags are sorted by key, as InfluxDB recommends for write performance.
    """
    parts = []
    for key, raw in fields.items():
        if raw is None:
            continue
        value = field_value(raw)
        if value is not None:
            parts.append(f"{field_key(key)}={value}")
    if not parts:
        return None
    return f"{_series(measurement, tuple(tags.items()))} {','.join(parts)} {ts_ms}"


# A worker writes the same few series (measurement and tags) and field keys over and over: their
# escaped text is cached, as escaping (str.translate) costs more than the rest of a line.


@lru_cache(maxsize=65_536)
def _series(measurement: str, tags: tuple[tuple[str, str | None], ...]) -> str:
    """The measurement and its sorted, escaped tags (the part of a line before the fields)."""
    return series_key(measurement, tags)


def series_key(measurement: str, tags: tuple[tuple[str, str | None], ...]) -> str:
    """The measurement and its tags sorted by key and escaped, empty and None values left out."""
    head = escape_measurement(measurement)
    return head + "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags) if v)


@lru_cache(maxsize=1024)
def field_key(key: str) -> str:
    """An escaped field key (cached)."""
    return escape_tag(key)
