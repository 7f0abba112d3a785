"""The tests' oracle of InfluxDB line protocol: any point, as dicts, written the plain way.

Production code writes lines through the precompiled encoders of ``streams.sinks.measurements``;
tests hold those to this plain, uncached encoder, written independently of the production escaping
(InfluxDB's rules: measurement ``,`` and space; tag keys, tag values and field keys ``,``, ``=`` and
space; string fields ``\\`` and ``"``; a newline as the two characters ``\\n`` everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def _escape(text: str, specials: str) -> str:
    text = text.replace("\n", "\\n")
    for char in specials:
        text = text.replace(char, "\\" + char)
    return text


def _value(raw: float | int | str | bool) -> str | None:
    """A field value typed by its Python type, numbers as floats; None for NaN and ±inf."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return '"' + raw.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    number = float(raw)
    return repr(number) if math.isfinite(number) else None


def encode_line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, float | int | str | bool | None],
    ts_ms: int,
) -> str | None:
    """One point as a line (no newline), or None when it has no writable field. Tags with an empty or
    None value are left out; tags are sorted by key; fields keep their order."""
    parts = []
    for key, raw in fields.items():
        value = None if raw is None else _value(raw)
        if value is not None:
            parts.append(f"{_escape(key, ',= ')}={value}")
    if not parts:
        return None
    head = _escape(measurement, ", ")
    tag_text = "".join(f",{_escape(k, ',= ')}={_escape(v, ',= ')}" for k, v in sorted(tags.items()) if v)
    return f"{head}{tag_text} {','.join(parts)} {ts_ms}"
