"""Which cell of a row is what, and a row → one reading.

A column is named by its header text (``"表号"``) or by its 1-based number (``3``). ``unit_id``,
``energy``, ``kind`` and ``uom`` come from a column, or from ``defaults`` when there is no column or
its cell is empty.
"""

from __future__ import annotations

from functools import lru_cache
from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collectors.sources.base import Kind, MeterPoint, SourceError, SourceReading
from collectors.sources.files.tables import FileRejected
from collectors.sources.files.timestamps import TsParser
from energy.schema import reading_problem

ColumnRef = str | int
POINT_FIELDS = ("unit_id", "energy", "kind", "uom")


class RowError(ValueError):
    """A row that can't become a reading (the row is skipped)."""


class Columns(BaseModel):
    """Where each field is: a header text or a 1-based column number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: ColumnRef
    meter_id: ColumnRef
    value: ColumnRef
    unit_id: ColumnRef | None = None
    energy: ColumnRef | None = None
    kind: ColumnRef | None = None
    uom: ColumnRef | None = None

    @model_validator(mode="after")
    def _numbers_from_one(self) -> Columns:
        if any(isinstance(ref, int) and ref < 1 for ref in self.model_dump().values()):
            raise ValueError("column numbers start at 1")
        return self


class Defaults(BaseModel):
    """Fixed values for the fields that have no column (or an empty cell)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit_id: str | None = Field(None, min_length=1)
    energy: str | None = Field(None, min_length=1)
    kind: Kind = "cumulative"
    uom: str | None = Field(None, min_length=1)


def check_mapping(columns: Columns, defaults: Defaults, header_row: int) -> None:
    """ValueError when a field has neither a column nor a default, or a named column has no header."""
    missing = [
        f
        for f in ("unit_id", "energy", "uom")
        if getattr(columns, f) is None and getattr(defaults, f) is None
    ]
    if missing:
        raise ValueError(f"{', '.join(missing)}: give a column or a default")
    if header_row == 0 and any(isinstance(ref, str) for ref in columns.model_dump().values()):
        raise ValueError("without a header row (header_row: 0) columns are numbers (1 = the first)")


class RowMapper:
    """Turns the rows of one file into readings; :meth:`use_header` first when columns have names.
    ``now_ms`` is the collector's clock (epoch ms) for the readings message's future check."""

    def __init__(
        self, columns: Columns, defaults: Defaults, parse_ts: TsParser, now_ms: int | None = None
    ) -> None:
        self._refs = {f: ref for f, ref in columns.model_dump().items() if ref is not None}
        self._defaults = defaults
        self._parse_ts = parse_ts
        self._now_ms = now_ms
        self._index = {f: ref - 1 for f, ref in self._refs.items() if isinstance(ref, int)}

    def use_header(self, line: int, cells: list[object]) -> None:
        """Find the named columns in the header row (FileRejected when one is missing)."""
        names = [str(c).strip().lstrip("\ufeff") if c is not None else "" for c in cells]
        for field, ref in self._refs.items():
            if isinstance(ref, str):
                if ref not in names:
                    raise FileRejected(line, f"no column {ref!r} for {field} in the header {names}")
                self._index[field] = names.index(ref)

    def reading(self, cells: list[object]) -> SourceReading:
        """The row's reading (RowError naming the field when a cell is missing or wrong, or the rule
        of the readings message the stream would refuse it by)."""
        texts = {f: self._text(cells, f) for f in ("meter_id", *POINT_FIELDS)}
        try:
            ts_ms = self._parse_ts(self._cell(cells, "ts"))
            value = _number(self._cell(cells, "value"))
            point = _point(texts["unit_id"], texts["meter_id"], texts["energy"], texts["kind"], texts["uom"])
            reading = point.reading(value, ts_ms)
        except (ValueError, SourceError) as exc:
            raise RowError(_message(exc)) from exc
        problem = reading_problem(reading.unit_id, reading.to_message_reading(), self._now_ms)
        if problem is not None:
            raise RowError(problem[0])
        return reading

    def _cell(self, cells: list[object], field: str) -> object:
        index = self._index.get(field)
        if index is None or index >= len(cells) or cells[index] is None or cells[index] == "":
            return None
        return cells[index]

    def _text(self, cells: list[object], field: str) -> str:
        cell = self._cell(cells, field)
        text = str(cell).strip() if cell is not None else ""
        return text or str(getattr(self._defaults, field, None) or "")


def _number(cell: object) -> float:
    if isinstance(cell, bool) or cell is None:
        raise ValueError(f"value {cell!r} is not a number")
    if isinstance(cell, int | float):
        return float(cell)
    try:
        return float(str(cell).strip())
    except ValueError as exc:
        raise ValueError(f"value {cell!r} is not a number") from exc


@lru_cache(maxsize=4096)
def _point(unit_id: str, meter_id: str, energy: str, kind: str, uom: str) -> MeterPoint:
    if kind not in get_args(Kind):
        raise ValueError(f"kind {kind!r} is not one of {', '.join(get_args(Kind))}")
    return MeterPoint(unit_id=unit_id, meter_id=meter_id, energy=energy, kind=kind, uom=uom)


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
    return str(exc)
