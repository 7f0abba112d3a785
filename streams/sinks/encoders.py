"""Precompiled line-protocol encoders: one generated function per declared measurement.

A :class:`Measurement` declares its tags (in the order its encoder takes them) and its fields with
their types. :attr:`Measurement.encode` is generated: a plain function taking the tag values, the
field values and ``ts_ms`` positionally and returning the line (or None when no field is
writable), the same line the tests' plain encoder (``tests/line_protocol_oracle.py``) gives for them.

Why generated: a general encoder spends its time on dicts, loops and type dispatch per field. The
generated function has the escaped text of the measurement, tag keys and field keys baked in, looks
the escaped series (measurement and tag values) up in a dict, checks the field types with one
``is`` each and builds the line with one f-string; anything unusual (None, NaN, an int where a float
is declared, a string needing escapes) falls through to a general path that gives the same result.

Types are stable: a ``FLOAT`` field is always written as a float (``1.0``, never ``1``, also when
given an int), an ``INT`` field always with the ``i`` suffix, a ``BOOL`` as ``true``/``false``, a
``STRING`` quoted. A value of another type raises TypeError instead of writing a field whose type
changes. A measurement with ``dynamic_fields`` takes one more argument: a mapping of further fields,
typed by their values (numbers as floats, :func:`~streams.sinks.line_protocol.field_value`).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from streams.sinks.line_protocol import escape_tag, field_value, quote_string, series_key

#: Escaped series kept per measurement (about 300 bytes each: within the worker's memory per meter).
#: It must exceed the series a worker writes (a unit's meters × its units): every batch visits them in
#: turn, so a smaller cache misses on nearly every point (65,536 halved the worker's rate on a
#: 100,000-meter fleet). When full, the older half goes (dicts keep insertion order).
HEAD_CACHE_SIZE = 1 << 20


def _evict_older_half(cache: dict[Any, str]) -> None:
    """Drop the first-made half of ``cache``'s entries."""
    for key in list(itertools.islice(cache, len(cache) // 2)):
        del cache[key]


class FieldType(enum.Enum):
    """A field's line-protocol type."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"


Encoder = Callable[..., str | None]


@dataclass(frozen=True, eq=False)
class Measurement:
    """A measurement's name, tags (encoder argument order) and typed fields."""

    name: str
    tags: tuple[str, ...]
    fields: Mapping[str, FieldType] = field(default_factory=dict)
    dynamic_fields: bool = False

    @property
    def arguments(self) -> tuple[str, ...]:
        """The encoder's arguments, in order."""
        extra = ("fields",) if self.dynamic_fields else ()
        return (*self.tags, *self.fields, *extra, "ts_ms")

    @cached_property
    def encode(self) -> Encoder:
        """This measurement's encoder, generated on first use (see the module docstring)."""
        return _compile(self)

    def line(self, tags: Mapping[str, str | None], fields: Mapping[str, Any], ts_ms: int) -> str | None:
        """Encode from dicts, through the compiled encoder (slow: for tests and rare callers).

        Fields not declared go into the dynamic fields (an error when there are none)."""
        declared = [fields.get(k) for k in self.fields]
        rest = {k: v for k, v in fields.items() if k not in self.fields}
        if rest and not self.dynamic_fields:
            raise TypeError(f"{self.name}: undeclared fields {sorted(rest)}")
        extra = (rest,) if self.dynamic_fields else ()
        return self.encode(*(tags.get(k) for k in self.tags), *declared, *extra, ts_ms)


# -- the general path ----------------------------------------------------------------------------


def typed_value(name: str, kind: FieldType, value: Any) -> str | None:
    """``value`` as a field of type ``kind``; None when not writable (None, NaN, ±inf).

    TypeError for a value of another type (a field's type must never change)."""
    if value is None:
        return None
    cls = value.__class__
    if kind is FieldType.FLOAT and cls is not bool and cls in (float, int):
        number = float(value)
        return repr(number) if math.isfinite(number) else None
    if kind is FieldType.INT and cls is int:
        return f"{value}i"
    if kind is FieldType.BOOL and cls is bool:
        return "true" if value else "false"
    if kind is FieldType.STRING and cls is str:
        return quote_string(value)
    raise TypeError(f"field {name!r} is declared {kind.value}, got {cls.__name__} {value!r}")


class _DynamicKeys(dict[str, str]):
    """Escaped ``key=`` text of dynamic field keys, made on first use."""

    def __missing__(self, key: str) -> str:
        if len(self) >= HEAD_CACHE_SIZE:
            _evict_older_half(self)
        text = self[key] = escape_tag(key) + "="
        return text


_DYNAMIC_KEYS = _DynamicKeys()


def dynamic_parts(fields: Mapping[str, Any], parts: list[str]) -> list[str]:
    """Append ``key=value`` of each writable field, typed by its value (numbers as floats)."""
    keys = _DYNAMIC_KEYS
    for key, value in fields.items():
        if value.__class__ is float:
            if value - value == 0.0:  # finite
                parts.append(keys[key] + repr(value))
        elif value is not None:
            text = field_value(value)
            if text is not None:
                parts.append(keys[key] + text)
    return parts


def _general(
    measurement: Measurement,
    head: str,
    values: tuple[Any, ...],
    extra: Mapping[str, Any] | None,
    ts_ms: Any,
) -> str | None:
    parts = []
    for (name, kind), value in zip(measurement.fields.items(), values, strict=True):
        text = typed_value(name, kind, value)
        if text is not None:
            parts.append(f"{escape_tag(name)}={text}")
    if extra:
        dynamic_parts(extra, parts)
    if not parts:
        return None
    if ts_ms.__class__ is not int:
        if not (isinstance(ts_ms, float) and ts_ms.is_integer()):
            raise TypeError(f"{measurement.name}: ts_ms must be an integer (epoch ms), got {ts_ms!r}")
        ts_ms = int(ts_ms)
    return f"{head} {','.join(parts)} {ts_ms}"


class _Heads(dict[tuple[Any, ...], str]):
    """The escaped series (measurement and sorted tags) of each tuple of tag values, made on first use."""

    def __init__(self, measurement: Measurement) -> None:
        super().__init__()
        self.measurement = measurement

    def __missing__(self, values: tuple[Any, ...]) -> str:
        if len(self) >= HEAD_CACHE_SIZE:
            _evict_older_half(self)
        for value in values:
            if value is not None and value.__class__ is not str:
                raise TypeError(f"{self.measurement.name}: tag values must be strings, got {value!r}")
        text = self[values] = series_key(
            self.measurement.name, tuple(zip(self.measurement.tags, values, strict=True))
        )
        return text


# -- code generation -----------------------------------------------------------------------------

_CHECK = {
    FieldType.FLOAT: "{v}.__class__ is float",
    FieldType.INT: "{v}.__class__ is int",
    FieldType.BOOL: "{v}.__class__ is bool",
    FieldType.STRING: "{v}.__class__ is str",
}
_TEXT = {
    FieldType.FLOAT: "{{{v}!r}}",
    FieldType.INT: "{{{v}}}i",
    FieldType.BOOL: "{{'true' if {v} else 'false'}}",
    FieldType.STRING: "{{_quote({v})}}",
}


def _literal(text: str) -> str:
    """``text`` as it must stand inside a double-quoted f-string of generated source."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("{", "{{").replace("}", "}}")


def _source(measurement: Measurement) -> str:
    """The Python source of the encoder of ``measurement``."""
    tags = [f"t{i}" for i in range(len(measurement.tags))]
    values = [f"f{i}" for i in range(len(measurement.fields))]
    kinds = list(measurement.fields.values())
    extra = ["extra"] if measurement.dynamic_fields else []
    key = f"({', '.join(tags)},)" if tags else "()"
    checks = [_CHECK[k].format(v=v) for v, k in zip(values, kinds, strict=True)] + ["ts_ms.__class__ is int"]
    floats = [v for v, k in zip(values, kinds, strict=True) if k is FieldType.FLOAT]
    texts = [
        _literal(escape_tag(name)) + "=" + _TEXT[kind].format(v=v)
        for (name, kind), v in zip(measurement.fields.items(), values, strict=True)
    ]
    body = ",".join(texts)
    if measurement.dynamic_fields:
        fast = [
            "parts = _dynamic(extra, [" + ", ".join(f'f"{t}"' for t in texts) + "])",
            "return f\"{head} {','.join(parts)} {ts_ms}\" if parts else None",
        ]
    else:
        fast = [f'return f"{{head}} {body} {{ts_ms}}"']
    if floats:  # one sum tells whether all are finite (an overflow just takes the general path)
        fast = [f"s = {' + '.join(floats)}", "if s - s == 0.0:", *("    " + line for line in fast)]
    lines = [
        f"def encode({', '.join([*tags, *values, *extra, 'ts_ms'])}):",
        f"    head = _heads[{key}]",
        f"    if {' and '.join(checks)}:",
        *("        " + line for line in fast),
        f"    return _general(_measurement, head, ({''.join(v + ', ' for v in values)}), "
        f"{'extra' if extra else 'None'}, ts_ms)",
    ]
    return "\n".join(lines) + "\n"


def _compile(measurement: Measurement) -> Encoder:
    source = _source(measurement)
    namespace: dict[str, Any] = {
        "_heads": _Heads(measurement),
        "_quote": quote_string,
        "_dynamic": dynamic_parts,
        "_general": _general,
        "_measurement": measurement,
    }
    exec(compile(source, f"<encoder {measurement.name}>", "exec"), namespace)
    encoder: Encoder = namespace["encode"]
    encoder.__doc__ = f"{measurement.name} line from ({', '.join(measurement.arguments)})."
    encoder.__qualname__ = encoder.__name__ = f"encode_{measurement.name}"
    return encoder
