"""Shared pieces of the kernel's data tables: the error every accounting step raises, and strict
readers for the packaged CSV files in ``energy/data`` (or a replacement file given by path).

The readers only parse text; what a column means is documented in ``energy/data/README.md``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TypedDict

#: Verification marks a data row may carry (domain.md): verified, secondary, unverified.
MARKS: frozenset[str] = frozenset({"V", "S", "U"})


class AccountingError(ValueError):
    """A reading or a lookup that accounting cannot use. ``rule`` is a stable code (e.g.
    ``unknown_energy``, ``no_coefficient``); ``detail`` says what was wrong. ``str(e)`` is
    ``"{rule}: {detail}"``."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail

    def __reduce__(self) -> tuple[type[AccountingError], tuple[str, str]]:
        return (type(self), (self.rule, self.detail))


def table_error(where: str, detail: str) -> AccountingError:
    """The error for a malformed data file: rule ``bad_table``; ``where`` is ``file:line``."""
    return AccountingError("bad_table", f"{where}: {detail}")


class Provenance(TypedDict):
    """The columns every dated table row ends with, as keyword arguments for its dataclass: valid
    from ``valid_from`` to ``valid_to`` inclusive (``None`` = open), where the value comes from
    (``source``), its verification ``mark`` (V, S or U) and a free ``note`` (may be empty)."""

    valid_from: date
    valid_to: date | None
    source: str
    mark: str
    note: str


@dataclass(frozen=True)
class Row:
    """One CSV data row: its cells by column name and ``where`` (``file:line``) for error messages."""

    cells: dict[str, str]
    where: str

    def text(self, column: str) -> str:
        """The stripped cell; an empty cell raises ``bad_table``."""
        value = self.cells.get(column, "").strip()
        if not value:
            raise table_error(self.where, f"column {column!r} is empty")
        return value

    def optional(self, column: str) -> str | None:
        """The stripped cell, or ``None`` when it is empty or the column is absent."""
        value = (self.cells.get(column) or "").strip()
        return value or None

    def number(self, column: str, *, positive: bool = True) -> float:
        """A finite float; with ``positive`` it must be > 0, else >= 0 (unit: whatever the column says)."""
        raw = self.text(column)
        try:
            value = float(raw)
        except ValueError:
            raise table_error(self.where, f"column {column!r} is not a number: {raw!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise table_error(self.where, f"column {column!r} must be a finite number > 0: {raw!r}")
        return value

    def optional_number(self, column: str) -> float | None:
        """Like :meth:`number` (> 0) but an empty cell is ``None``."""
        return None if self.optional(column) is None else self.number(column)

    def day(self, column: str) -> date:
        """An ISO date (``YYYY-MM-DD``)."""
        raw = self.text(column)
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise table_error(self.where, f"column {column!r} is not an ISO date: {raw!r}") from None

    def optional_day(self, column: str) -> date | None:
        """An ISO date, or ``None`` for an empty cell (an open end)."""
        return None if self.optional(column) is None else self.day(column)

    def year(self, column: str) -> int | None:
        """A four-digit year, or ``None`` for an empty cell."""
        raw = self.optional(column)
        if raw is None:
            return None
        if not (raw.isdigit() and len(raw) == 4):
            raise table_error(self.where, f"column {column!r} is not a year: {raw!r}")
        return int(raw)

    def flag(self, column: str) -> bool:
        """``true`` or ``false``."""
        raw = self.text(column).lower()
        if raw not in ("true", "false"):
            raise table_error(self.where, f"column {column!r} must be true or false: {raw!r}")
        return raw == "true"

    def mark(self, column: str = "mark") -> str:
        """A verification mark: V, S or U."""
        raw = self.text(column)
        if raw not in MARKS:
            raise table_error(self.where, f"column {column!r} must be one of V, S, U: {raw!r}")
        return raw

    def validity(self) -> tuple[date, date | None]:
        """``valid_from`` and ``valid_to`` (inclusive; ``None`` = open), checked ``from <= to``."""
        start = self.day("valid_from")
        end = self.optional_day("valid_to")
        if end is not None and end < start:
            raise table_error(self.where, f"valid_to {end} is before valid_from {start}")
        return start, end

    def provenance(self, validity: tuple[date, date | None]) -> Provenance:
        """``validity`` (what :meth:`validity` returned; read it first, so that a bad date is the
        error reported before the row's other columns), then ``source``, ``mark`` and ``note``."""
        valid_from, valid_to = validity
        return Provenance(
            valid_from=valid_from,
            valid_to=valid_to,
            source=self.text("source"),
            mark=self.mark(),
            note=self.optional("note") or "",
        )


def read_table(default_name: str, path: str | Path | None, columns: Sequence[str]) -> list[Row]:
    """The data rows of a UTF-8 CSV with one header row: the packaged ``energy/data/<default_name>``
    when ``path`` is ``None``, else the file at ``path``. Every name in ``columns`` must be in the
    header; blank lines are skipped."""
    if path is None:
        text = resources.files("energy").joinpath("data", default_name).read_text(encoding="utf-8")
        name = default_name
    else:
        text = Path(path).read_text(encoding="utf-8")
        name = str(path)
    return list(_rows(text, name, columns))


def _rows(text: str, name: str, columns: Sequence[str]) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in columns if c not in header]
    if missing:
        raise table_error(f"{name}:1", f"missing columns {missing}")
    reader.fieldnames = header
    for cells in reader:
        if not any((v or "").strip() for v in cells.values() if isinstance(v, str)):
            continue
        if None in cells:
            raise table_error(f"{name}:{reader.line_num}", "more cells than header columns")
        yield Row({k: v or "" for k, v in cells.items()}, f"{name}:{reader.line_num}")


def overlaps(a: tuple[date, date | None], b: tuple[date, date | None]) -> bool:
    """Whether two inclusive validity intervals (``None`` = open end) share a day."""
    a_end = a[1] or date.max
    b_end = b[1] or date.max
    return a[0] <= b_end and b[0] <= a_end


def valid_on(valid_from: date, valid_to: date | None, on: date) -> bool:
    """Whether ``on`` lies in the inclusive interval ``valid_from .. valid_to`` (``None`` = open)."""
    return valid_from <= on and (valid_to is None or on <= valid_to)
