"""The peers' job, identical to ours on the benchmark's data: a reading's counter delta (cumulative
registers) or quantity (interval meters), converted by the kernel's :class:`Accountant` into the
energy's canonical uom, tce and tCO₂ on the day of its 15-minute interval, is a *piece* of its
meter's consumption (:class:`PeerAccounting`); a meter's pieces summed per interval are its `energy`
point at the interval's start, with the unit's region and industry tags (:class:`IntervalPoints`) —
what the worker writes (``energy.ledger``, ``energy.meter_intervals``). Intervals are end-inclusive,
(start, start + 15 min] (``energy.intervals.interval_start``). The peers keep the meters' last
registers and open intervals in plain dicts.

Only what the generated fleet sends is handled (epoch-ms times, no meter swaps, roll-overs or late
readings): a peer shows what a framework and its sink idiom cost, not a second accounting kernel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from energy.accounting import Accountant, AccountingOptions
from energy.intervals import interval_start, local_day

if TYPE_CHECKING:
    from energy.registry import UnitInfo


@dataclass(frozen=True, slots=True)
class PeerPoint:
    """Tags, time (epoch ms) and quantities (canonical uom, tce, tCO₂): a piece of a meter's
    consumption at its reading's time, or an `energy` point (the sum of a meter's pieces in an
    interval) at the interval's start."""

    unit_id: str
    meter_id: str
    energy: str
    region: str
    industry: str
    ts_ms: int
    qty: float
    tce: float
    co2_t: float


@dataclass(frozen=True)
class UnitTags:
    """What a peer knows of a unit from the registry: province, grid region, industry."""

    region: str
    grid_region: str
    industry: str

    @classmethod
    def of(cls, info: UnitInfo) -> UnitTags:
        """The tags of a registry record."""
        return cls(region=info.region, grid_region=info.grid_region, industry=info.industry)


class PeerAccounting:
    """Readings messages (decoded JSON) in, pieces out; state: each meter's last register."""

    def __init__(self, units: Mapping[str, UnitTags], options: AccountingOptions | None = None) -> None:
        self.units = dict(units)
        self.accountant = Accountant(options=options or AccountingOptions())
        self._last: dict[tuple[str, str], float] = {}

    def apply(self, doc: Mapping[str, Any]) -> list[PeerPoint]:
        """The pieces of one readings message, one per reading but a cumulative meter's first (none
        for anything that is not a readings message)."""
        readings = doc.get("readings")
        if not readings:
            return []
        unit_id = doc["unit_id"]
        tags = self.units[unit_id]
        accountant = self.accountant
        points = []
        for r in readings:
            energy, ts = r["energy"], r["ts"]
            qty = accountant.quantity(energy, r["value"], r["uom"])
            if r["kind"] == "cumulative":
                key = (unit_id, r["meter_id"])
                previous = self._last.get(key)
                self._last[key] = qty
                if previous is None:  # a meter's first register only sets its baseline
                    continue
                qty -= previous
            tce, co2 = accountant.tce_co2(
                energy, qty, local_day(interval_start(ts)), tags.grid_region, tags.region
            )
            points.append(
                PeerPoint(unit_id, r["meter_id"], energy, tags.region, tags.industry, ts, qty, tce, co2)
            )
        return points


class IntervalSum:
    """The running sum of one meter's pieces in one interval (``start_ms``, epoch ms)."""

    __slots__ = ("co2_t", "piece", "qty", "start_ms", "tce")

    def __init__(self, piece: PeerPoint, start_ms: int) -> None:
        self.piece = piece  # the first piece: the point's tags
        self.start_ms = start_ms
        self.qty = self.tce = self.co2_t = 0.0

    def point(self) -> PeerPoint:
        """The meter's `energy` point of the interval so far."""
        p = self.piece
        return PeerPoint(
            p.unit_id,
            p.meter_id,
            p.energy,
            p.region,
            p.industry,
            self.start_ms,
            self.qty,
            self.tce,
            self.co2_t,
        )


class IntervalPoints:
    """Pieces in, the `energy` points of each meter per 15-minute interval out. A unit's intervals
    are open until its data moves on to a later interval (a message whose newest reading is in a
    later one): they are then *closed by data* (:meth:`closed_by`), given out once and forgotten, as
    the kernel's ledger closes them (the fleet sends no late readings, so a closed interval never
    changes again)."""

    def __init__(self) -> None:
        #: unit → (meter, interval start) → running sum, of the unit's open intervals
        self._open: dict[str, dict[tuple[str, int], IntervalSum]] = {}
        #: unit → the start of its newest interval (the one its newest reading is in)
        self._newest: dict[str, int] = {}

    def add(self, piece: PeerPoint) -> IntervalSum:
        """Add ``piece`` to its meter's interval (``interval_start`` of the piece's time); the
        interval's running sum."""
        start = interval_start(piece.ts_ms)
        sums = self._open.get(piece.unit_id)
        if sums is None:
            sums = self._open[piece.unit_id] = {}
        key = (piece.meter_id, start)
        total = sums.get(key)
        if total is None:
            total = sums[key] = IntervalSum(piece, start)
        total.qty += piece.qty
        total.tce += piece.tce
        total.co2_t += piece.co2_t
        return total

    def closed_by(self, doc: Mapping[str, Any]) -> list[PeerPoint]:
        """After the pieces of readings message ``doc`` were added: the points of the intervals of
        its unit that it closed (those before the interval of the unit's newest reading), oldest
        first; they are forgotten."""
        readings = doc.get("readings")
        if not readings:
            return []
        unit_id = doc["unit_id"]
        newest = interval_start(max(r["ts"] for r in readings))
        if newest <= self._newest.get(unit_id, newest - 1):
            return []
        self._newest[unit_id] = newest
        sums = self._open.get(unit_id)
        if not sums:
            return []
        closed = sorted((key for key in sums if key[1] < newest), key=lambda key: (key[1], key[0]))
        return [sums.pop(key).point() for key in closed]

    def open_points(self) -> list[PeerPoint]:
        """The points of every interval not closed yet (so far)."""
        return [total.point() for sums in self._open.values() for total in sums.values()]


def interval_totals(
    job: PeerAccounting, docs: Iterable[Mapping[str, Any]], start_ms: int
) -> tuple[int, float]:
    """(points, Σtce) of the `energy` points of the interval starting at ``start_ms`` (epoch ms)
    that ``job`` makes of readings messages ``docs`` (in order; they must begin before the
    interval, for the cumulative meters' baselines)."""
    intervals = IntervalPoints()
    for doc in docs:
        for piece in job.apply(doc):
            if interval_start(piece.ts_ms) == start_ms:
                intervals.add(piece)
    points = intervals.open_points()
    return len(points), math.fsum(p.tce for p in points)


_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def line(p: PeerPoint) -> str:
    """The point as a hand-built line of InfluxDB line protocol (ms precision)."""
    tags = (
        f"energy={p.energy.translate(_TAG_ESCAPES)},industry={p.industry.translate(_TAG_ESCAPES)},"
        f"meter_id={p.meter_id.translate(_TAG_ESCAPES)},region={p.region.translate(_TAG_ESCAPES)},"
        f"unit_id={p.unit_id.translate(_TAG_ESCAPES)}"
    )
    return f"energy,{tags} qty={p.qty!r},tce={p.tce!r},co2_t={p.co2_t!r},estimated=false {p.ts_ms}"
