"""A meter's consumption per 15-minute interval: what one `energy` point holds.

The national online monitoring system's real-time indicators are 15-minute values
(``shared/reference/domain.md`` §3.3), so the worker writes one `energy` point per meter and interval,
at the interval's start, not one per reading: a meter read every minute gives 15 times fewer points,
and InfluxDB's ingest is what paces the worker (issue 8). The ledger adds each piece of consumption
it counts to the interval the piece closes, and takes back what a late reading withdraws, so the point
is always the interval's whole consumption and writing it again overwrites it.

A meter keeps the intervals it may still change (:meth:`IntervalSums.forget_before`, called by the
ledger with the start of the oldest interval a late reading of the meter can reach).
"""

from __future__ import annotations

import sys
from array import array

_ROW = 5  # start (epoch ms; exact in a double), qty, tce, co2_t, estimated pieces in it (a count)


class IntervalSums:
    """A meter's ``(qty, tce, co2_t, estimated)`` per interval start (epoch ms), oldest first, as one
    flat array of doubles (40 bytes an interval). ``qty`` is in the energy's canonical uom, ``tce``
    and ``co2_t`` in tonnes; ``estimated`` while an estimated piece is in it (a late reading that
    takes an estimated share back and puts exact ones in its place makes the interval exact again)."""

    __slots__ = ("_rows",)

    def __init__(self, rows: array[float] | None = None) -> None:
        self._rows: array[float] = rows if rows is not None else array("d")

    def __len__(self) -> int:
        """The intervals kept."""
        return len(self._rows) // _ROW

    def add(self, start: int, qty: float, tce: float, co2_t: float, estimated: int) -> bool:
        """Add a piece to the interval starting at ``start`` (``estimated`` 1 for an estimated piece,
        else 0), or take one back (negative figures, ``estimated`` −1 or 0); True when the interval
        was not kept before (a new row)."""
        rows = self._rows
        i = len(rows) - _ROW
        if i < 0 or rows[i] != start:  # (nearly every piece goes to the newest interval)
            while i >= 0 and rows[i] > start:
                i -= _ROW
            if i < 0 or rows[i] != start:
                at = i + _ROW
                rows[at:at] = array("d", (float(start), qty, tce, co2_t, float(estimated)))
                return True
        rows[i + 1] += qty
        rows[i + 2] += tce
        rows[i + 3] += co2_t
        if estimated:
            rows[i + 4] += estimated
        return False

    def get(self, start: int) -> tuple[float, float, float, bool] | None:
        """``(qty, tce, co2_t, estimated)`` of the interval starting at ``start``, or None."""
        rows = self._rows
        i = len(rows) - _ROW
        while i >= 0 and rows[i] > start:
            i -= _ROW
        if i >= 0 and rows[i] == start:
            return rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4] > 0.0
        return None

    def starts_from(self, start: int) -> list[int]:
        """The starts of the intervals kept at or after ``start``, oldest first."""
        rows = self._rows
        i = len(rows) - _ROW
        found = []
        while i >= 0 and rows[i] >= start:
            found.append(int(rows[i]))
            i -= _ROW
        found.reverse()
        return found

    def forget_before(self, start: int) -> None:
        """Drop the intervals that start before ``start``."""
        rows = self._rows
        if not rows or rows[0] >= start:
            return
        i = 0
        while i < len(rows) and rows[i] < start:
            i += _ROW
        del rows[:i]

    def to_bytes(self) -> bytes:
        """The rows as little-endian doubles (the table store's form; no pickle)."""
        if sys.byteorder == "little":
            return self._rows.tobytes()
        swapped = array("d", self._rows)
        swapped.byteswap()
        return swapped.tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> IntervalSums:
        """Inverse of :meth:`to_bytes` (raises ValueError on bytes that are not whole rows)."""
        if len(raw) % (8 * _ROW):
            raise ValueError(f"interval sums of {len(raw)} bytes: not whole rows of {_ROW} doubles")
        rows = array("d")
        rows.frombytes(raw)
        if sys.byteorder != "little":
            rows.byteswap()
        return cls(rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntervalSums) and self._rows == other._rows

    def __repr__(self) -> str:
        rows = self._rows
        return "IntervalSums(" + ", ".join(
            f"{int(rows[i])}: {tuple(rows[i + 1 : i + _ROW])}" for i in range(0, len(rows), _ROW)
        ) + ")"
