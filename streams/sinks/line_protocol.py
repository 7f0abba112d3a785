"""InfluxDB line protocol for our measurements: escaping done right and stable field types.

Every numeric field is written as a float (``1.0`` stays a float: a field's type must never change
within a shard), strings are quoted, non-finite floats are left out (InfluxDB rejects them), and a
point left with no field is not written at all. Timestamps are epoch milliseconds: write with
``precision=ms``.
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


def _field_value(value: float | int | str | bool) -> str | None:
    if type(value) is float:  # the usual case, first
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
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
        value = _field_value(raw)
        if value is not None:
            parts.append(f"{_field_key(key)}={value}")
    if not parts:
        return None
    return f"{_series(measurement, tuple(tags.items()))} {','.join(parts)} {ts_ms}"


# A worker writes the same few series (measurement and tags) and field keys over and over: their
# escaped text is cached, as escaping (str.translate) costs more than the rest of a line.


@lru_cache(maxsize=65_536)
def _series(measurement: str, tags: tuple[tuple[str, str | None], ...]) -> str:
    """The measurement and its sorted, escaped tags (the part of a line before the fields)."""
    head = measurement.translate(_MEASUREMENT_ESCAPES)
    return head + "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags) if v)


@lru_cache(maxsize=1024)
def _field_key(key: str) -> str:
    return escape_tag(key)
