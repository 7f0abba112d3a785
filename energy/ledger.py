"""A unit's ledger: everything the stream app remembers of one unit, and how a readings message
changes it.

``UnitLedger.apply`` is the heart of the accounting: it turns the readings of one message into
the consumption of each meter per 15-minute interval (``energy`` points, one per meter and interval,
at the interval's start: ``energy.meter_intervals``), per-interval unit totals (``unit_energy``),
rejections with the rule that refused them, and alert changes. Applying the same message twice
yields no second count, so at-least-once delivery upstream gives exactly-once totals downstream.

**When a meter's interval point is written.** An interval is *open* while the unit's newest reading
is in it, and *closed* once the unit's data has moved on to a later interval. A message returns
(``LedgerResult.energy``) the points of the intervals it closed, for every meter of the unit, and of
the closed intervals its readings changed (late readings). The open interval's points are not
returned, as they change with every reading: :meth:`UnitLedger.open_points` gives them, for the
worker to write when it has caught up with its input (``streams.processor``).
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from energy.accounting import Accountant, AccountingError
from energy.alert import Alert
from energy.counters import (
    NO_LIMITS,
    CounterLimits,
    CounterRejected,
    MeterState,
    Segment,
    counter_update,
    plain_update,
)
from energy.intervals import DAY_MS, INTERVAL_MS, day_start, interval_start, local_day
from energy.meter_intervals import IntervalSums
from energy.registry import MeterInfo, UnitInfo
from energy.rules import HOURLY_CEILING, hourly_ceiling, last_hour_tce
from energy.schema import ParsedMessage, Reading, Rejection, reading_to_json


@dataclass(frozen=True)
class LedgerPolicy:
    """Rules that are settings: ``lateness_ms`` is how far (ms) behind the unit's newest reading a
    reading may arrive; ``hourly_tce_ceiling`` (tce/h) applies when the unit has no ceiling of its own.
    """

    lateness_ms: int = 2 * 60 * 60 * 1000
    hourly_tce_ceiling: float = 25.0


@dataclass(slots=True)
class EnergyPoint:
    """A piece of one meter's consumption, in the period ending at ``ts_ms``: ``qty`` in the energy's
    canonical uom, ``tce`` and ``co2_t`` in tonnes. ``estimated`` marks a share of a segment that was
    split over several intervals, or a reading the collector marked estimated. What the period totals
    count (``LedgerResult.counted``); the `energy` points are their sums per interval
    (:class:`MeterInterval`).

    One is made per reading, so it is a plain slotted dataclass: a frozen one costs about three
    times as much to build (its __init__ sets each field through object.__setattr__). Treat it as
    read-only all the same."""

    unit_id: str
    meter_id: str
    energy: str
    ts_ms: int
    qty: float
    tce: float
    co2_t: float
    estimated: bool = False


@dataclass(slots=True)
class MeterInterval:
    """An `energy` point: the consumption of one meter in the 15-minute interval starting at
    ``start_ms`` (the interval (start, start + 15 min], ``energy.intervals``): ``qty`` in the energy's
    canonical uom, ``tce`` and ``co2_t`` in tonnes; ``estimated`` when any piece of it was."""

    unit_id: str
    meter_id: str
    energy: str
    start_ms: int
    qty: float
    tce: float
    co2_t: float
    estimated: bool


@dataclass(slots=True)
class UnitIntervalPoint:
    """A unit's total over the 15-minute interval starting at ``start_ms``: tce and tCO₂.
    A plain slotted dataclass like :class:`EnergyPoint`, for the same reason."""

    unit_id: str
    start_ms: int
    tce: float
    co2_t: float


@dataclass(frozen=True)
class MeterEvent:
    """A counter rule other than the plain delta applied to a meter at ``ts_ms`` (roll-over, swap)."""

    unit_id: str
    meter_id: str
    ts_ms: int
    event: str
    detail: str


@dataclass
class LedgerResult:
    """What applying one message produced. ``accepted`` counts readings used (first time or repeat).

    ``energy`` holds the meters' interval points to write: of the intervals the message closed and of
    the closed intervals it changed (the module docstring); ``counted`` the pieces counted for the first
    time and ``withdrawn`` those a late reading took back (positive figures, to subtract): what period
    totals must add (``energy.monitor``)."""

    energy: list[MeterInterval] = field(default_factory=list)
    counted: list[EnergyPoint] = field(default_factory=list)
    withdrawn: list[EnergyPoint] = field(default_factory=list)
    intervals: list[UnitIntervalPoint] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    events: list[MeterEvent] = field(default_factory=list)
    accepted: int = 0
    repeats: int = 0


#: How far back (ms) a segment is split per 15-minute interval and a unit keeps interval totals for a
#: meter that has not read since: two days. Older parts of a longer segment are split per China day.
FINE_SPAN_MS = 2 * 24 * 60 * 60 * 1000


def split_segment(segment: Segment) -> list[tuple[int, float]]:
    """The segment's quantity as ``(end_ms, qty)`` pieces, one per 15-minute interval it spans, in
    proportion to time; a segment inside one interval (or without a start) is one piece."""
    return _split(segment.start_ms, segment.end_ms, segment.qty)


def _split(start_ms: int | None, end: int, qty: float) -> list[tuple[int, float]]:
    """:func:`split_segment` of the segment ``qty`` in (``start_ms``, ``end``].

    A segment longer than :data:`FINE_SPAN_MS` (a meter silent for days) is split per 15-minute
    interval over its last ``FINE_SPAN_MS`` only, and per China day before that, so that a long gap
    gives hundreds of pieces, not hundreds of thousands (a meter silent for a year: ~560)."""
    if start_ms is None:
        return [(end, qty)]
    first = interval_start(start_ms + 1)
    last = interval_start(end)
    if first == last:
        return [(end, qty)]
    fine_from = max(first, interval_start(end - FINE_SPAN_MS))
    fine = range(fine_from + INTERVAL_MS, last + 1, INTERVAL_MS)
    boundaries = [*_day_boundaries(start_ms, fine_from), *fine]
    span = end - start_ms
    pieces = []
    done = 0.0
    start = start_ms
    for boundary in boundaries:
        piece = qty * (boundary - start) / span
        pieces.append((boundary, piece))
        done += piece
        start = boundary
    pieces.append((end, qty - done))
    return pieces


def _day_boundaries(start_ms: int, fine_from: int) -> list[int]:
    """China midnights after ``start_ms`` and before ``fine_from``, then ``fine_from`` itself (when it
    is after ``start_ms``): where the coarse, per-day part of a long segment is cut."""
    if fine_from <= start_ms:
        return []
    cuts = []
    midnight = day_start(start_ms) + DAY_MS
    while midnight < fine_from:
        cuts.append(midnight)
        midnight += DAY_MS
    cuts.append(fine_from)
    return cuts


#: An interval start before every real one: the interval "open" before a unit's first reading.
_NOTHING = -(2**62)


def _fields(segment: Segment) -> tuple[int | None, int, float, bool]:
    """``(start_ms, end_ms, qty, estimated)`` of a segment."""
    return segment.start_ms, segment.end_ms, segment.qty, segment.estimated


@dataclass
class UnitLedger:
    """State of one unit: its meters, each meter's consumption per recent interval (``sums``), recent
    unit interval totals ``start_ms → [tce, tCO2]``, the newest reading time (epoch ms) and open
    alerts ``rule → severity``."""

    unit_id: str
    meters: dict[str, MeterState] = field(default_factory=dict)
    sums: dict[str, IntervalSums] = field(default_factory=dict)
    intervals: dict[int, list[float]] = field(default_factory=dict)
    newest_ts_ms: int | None = None
    open_alerts: dict[str, str] = field(default_factory=dict)
    #: A lower bound of the meters' newest reading times (None: not known): what spares
    #: :meth:`_oldest_kept` a pass over every meter. A meter's newest reading time never goes back
    #: (its series forgets only older readings), so the bound stays one until a meter is added.
    _last_floor: int | None = field(default=None, init=False, repr=False, compare=False)

    def apply(
        self,
        msg: ParsedMessage,
        accountant: Accountant,
        policy: LedgerPolicy,
        info: UnitInfo | None = None,
    ) -> LedgerResult:
        """Apply one parsed readings message of this unit; return its points, rejections and alerts."""
        result = LedgerResult(rejections=list(msg.rejections))
        ctx = _MessageContext(accountant.for_unit(info), info, policy, result)
        ctx.oldest_kept = self._oldest_kept(policy)
        newest = self.newest_ts_ms
        was_open = ctx.open_start = _NOTHING if newest is None else interval_start(newest)
        accepted = 0
        account = self._account
        for reading in msg.readings:
            try:
                account(reading, ctx)
            except (AccountingError, CounterRejected) as exc:
                result.rejections.append(
                    Rejection(exc.rule, exc.detail, self.unit_id, reading_to_json(reading))
                )
                continue
            accepted += 1
        result.accepted = accepted
        self._closed_points(ctx, was_open, result)
        touched = ctx.touched
        self._forget_intervals_before(ctx.oldest_kept)
        for start in sorted(touched):
            if start in self.intervals:
                tce, co2 = self.intervals[start]
                result.intervals.append(UnitIntervalPoint(self.unit_id, start, tce, co2))
        if touched and self.newest_ts_ms is not None:
            self._evaluate_rules(policy, info, result)
        return result

    def _account(self, r: Reading, ctx: _MessageContext) -> None:
        """Apply one reading: the counter rules turn it into segments (counters.py), each segment is
        booked (:meth:`_book`)."""
        # This runs once per reading. A pydantic model's attributes are slow to read (BaseModel
        # defines __getattr__, which keeps CPython from specialising the lookup), so the fields are
        # taken from the instance dict, where pydantic keeps them, once.
        fields = r.__dict__
        ts_ms: int = fields["ts_ms"]
        energy: str = fields["energy"]
        meter_id: str = fields["meter_id"]
        kind: str = fields["kind"]
        uom: str = fields["uom"]
        old_value: float | None = fields["old_value"]
        interval_from: int | None = fields["start_ms"]
        lateness_ms = ctx.lateness_ms
        newest = self.newest_ts_ms
        if newest is not None and ts_ms < newest - lateness_ms:
            raise CounterRejected(
                "too_late",
                f"reading is {(newest - ts_ms) / 1000:.0f} s behind the unit's newest; "
                f"the lateness window is {lateness_ms / 1000:.0f} s",
            )
        accountant = ctx.accountant
        entry = ctx.registry.get(meter_id) if ctx.registry else None
        raw_value: float = fields["value"]
        if entry is None:
            multiplier, counts = 1.0, True
        else:
            multiplier, counts = entry.multiplier, entry.counts
        if multiplier != 1.0:  # CT/PT ratio: into the meter's uom
            raw_value *= multiplier
            if old_value is not None:
                old_value *= multiplier
        if kind == "rate":
            value = accountant.rate_per_hour(energy, raw_value, uom)
        else:
            value = accountant.quantity(energy, raw_value, uom)
        if old_value is not None:
            old_value = accountant.quantity(energy, old_value, uom)
        meter = known = self.meters.get(meter_id)
        if meter is None:
            meter = MeterState(kind=kind, energy=energy)
        elif meter.energy != energy:
            raise CounterRejected(
                "energy_changed", f"meter {meter_id} measures {meter.energy}, reading says {energy}"
            )
        if entry is None:
            limits = NO_LIMITS
        else:  # the limits of the meter's last reading, if this one is of the same energy, kind, uom
            last = entry.last_limits
            if (
                last is not None
                and last[0] is accountant
                and last[1] == energy
                and last[2] == kind
                and last[3] == uom
            ):
                limits = last[4]
            else:
                limits = ctx.limits(entry.meter, energy, kind, uom)
                intern = sys.intern  # (the meters share these strings, not each its first reading's)
                entry.last_limits = (accountant, intern(energy), intern(kind), intern(uom), limits)
        estimated = fields["quality"] == "estimated"
        # Nearly every reading simply continues its meter's series: plain_update counts it without
        # building a CounterUpdate, or returns None, and counter_update applies the full rules.
        plain = None
        if old_value is None:
            plain = plain_update(meter, kind, ts_ms, value, limits, lateness_ms, estimated, interval_from)
        if plain is None:
            update = counter_update(
                meter,
                kind,
                ts_ms,
                value,
                limits=limits,
                retention_ms=lateness_ms,
                estimated=estimated,
                swap_old_value=old_value,
                start_ms=interval_from,
            )
        if known is None:
            self.meters[meter_id] = meter
            self._last_floor = None  # its reading may be older than the bound
        if newest is None or ts_ms > newest:
            self.newest_ts_ms = ts_ms
            ctx.oldest_kept = self._oldest_kept(ctx.policy)
        if plain is not None:
            start_ms, qty = plain
            if start_ms is None or start_ms // INTERVAL_MS == (ts_ms - 1) // INTERVAL_MS:
                # One segment inside one interval, booked here as _book books it (a call less on
                # the path of nearly every reading; tests/unit/test_fast_path.py holds the two equal).
                if ts_ms != ctx.last_end:  # a scan's readings share their time: ctx keeps the last
                    ctx.interval_of(ts_ms)
                start, day = ctx.last_interval
                tce, co2 = accountant.tce_co2(energy, qty, day, ctx.region, ctx.province)
                piece = EnergyPoint(self.unit_id, meter_id, energy, ts_ms, qty, tce, co2, estimated)
                ctx.counted.append(piece)
                sums = self.sums.get(meter_id)
                if sums is None:
                    sums = self.sums[meter_id] = IntervalSums()
                if sums.add(start, qty, tce, co2, 1 if estimated else 0):
                    ctx.grown.add(meter_id)
                if start < ctx.open_start:
                    ctx.changed.add((meter_id, start))
                if counts and start >= ctx.oldest_kept:
                    totals = self.intervals.get(start)
                    if totals is None:
                        totals = self.intervals[start] = [0.0, 0.0]
                    totals[0] += tce
                    totals[1] += co2
                    ctx.touched.add(start)
            else:
                self._book(ctx, meter_id, energy, start_ms, ts_ms, qty, estimated, 1.0, False, counts)
            return
        if update.repeat:
            ctx.result.repeats += 1
        if update.event:
            ctx.result.events.append(
                MeterEvent(self.unit_id, meter_id, ts_ms, update.event, f"register {r.value:g} {r.uom}")
            )
        for segment in update.removed:  # the segment a late reading split: take it back
            self._book(ctx, meter_id, energy, *_fields(segment), -1.0, update.repeat, counts)
        for segment in update.added:
            self._book(ctx, meter_id, energy, *_fields(segment), 1.0, update.repeat, counts)

    def _book(
        self,
        ctx: _MessageContext,
        meter_id: str,
        energy: str,
        start_ms: int | None,
        end_ms: int,
        qty: float,
        estimated: bool,
        sign: float,
        repeat: bool,
        counts: bool = True,
    ) -> None:
        """Count the segment ``qty`` in (``start_ms``, ``end_ms``] of a meter (``sign`` 1), or take
        it back (``sign`` −1): split over the intervals it spans (:func:`split_segment`), each piece
        converted to tce and tCO₂ on its day, added to the meter's interval (``sums``) and to the
        unit's interval total (unless the meter does not ``counts`` in unit totals: a sub-meter). A
        ``repeat`` (a reading seen before) counts nothing; the closed intervals it falls in are
        written again."""
        pieces = _split(start_ms, end_ms, qty)
        estimated = estimated or len(pieces) > 1
        sums = self.sums.get(meter_id)
        if sums is None:
            sums = self.sums[meter_id] = IntervalSums()
        for end, piece in pieces:
            start, day = ctx.interval_of(end)
            if start < ctx.open_start:
                ctx.changed.add((meter_id, start))
            if repeat:
                continue
            tce, co2 = ctx.accountant.tce_co2(energy, piece, day, ctx.region, ctx.province)
            point = EnergyPoint(self.unit_id, meter_id, energy, end, piece, tce, co2, estimated)
            (ctx.counted if sign > 0 else ctx.result.withdrawn).append(point)
            if sums.add(start, sign * piece, sign * tce, sign * co2, int(sign) if estimated else 0):
                ctx.grown.add(meter_id)
            if not counts or start < ctx.oldest_kept:
                continue
            totals = self.intervals.get(start)
            if totals is None:
                totals = self.intervals[start] = [0.0, 0.0]
            totals[0] += sign * tce
            totals[1] += sign * co2
            ctx.touched.add(start)
        if repeat:
            ctx.touched.update(interval_start(end) for end, _ in pieces)

    def _closed_points(self, ctx: _MessageContext, was_open: int, result: LedgerResult) -> None:
        """Put into ``result.energy`` the points of the intervals this message closed (from
        ``was_open``, the interval that was open before it, up to the one open now), of every meter,
        and of the closed intervals it changed; then let the meters that began an interval forget
        the intervals no reading can change any more."""
        newest = self.newest_ts_ms
        if newest is None:
            return
        now_open = interval_start(newest)
        keys = {key for key in ctx.changed if key[1] < now_open}
        if now_open > was_open:
            for meter_id, sums in self.sums.items():
                keys.update((meter_id, start) for start in sums.starts_from(was_open) if start < now_open)
        for meter_id, start in sorted(keys, key=lambda key: (key[1], key[0])):
            point = self._point(meter_id, start)
            if point is not None:
                result.energy.append(point)
        for meter_id in ctx.grown:
            meter = self.meters.get(meter_id)
            oldest = meter.series.oldest_ts() if meter is not None else None
            floor = ctx.oldest_kept if oldest is None else min(ctx.oldest_kept, interval_start(oldest + 1))
            self.sums[meter_id].forget_before(floor)

    def _point(self, meter_id: str, start: int) -> MeterInterval | None:
        """The meter's point of the interval starting at ``start`` (None when it keeps none)."""
        sums = self.sums.get(meter_id)
        row = sums.get(start) if sums is not None else None
        if row is None:
            return None
        qty, tce, co2, estimated = row
        energy = self.meters[meter_id].energy
        return MeterInterval(self.unit_id, meter_id, energy, start, qty, tce, co2, estimated)

    def open_points(self) -> list[MeterInterval]:
        """The points of the open interval (the one the unit's newest reading is in), of every meter
        that has consumption in it so far: not final, written when the worker has caught up."""
        if self.newest_ts_ms is None:
            return []
        start = interval_start(self.newest_ts_ms)
        points = (self._point(meter_id, start) for meter_id in self.sums)
        return [p for p in points if p is not None]

    def _oldest_kept(self, policy: LedgerPolicy) -> int:
        """Start of the oldest interval the ledger keeps totals for: back over the lateness window,
        and further back to the newest reading of every meter (its next segment starts there, and
        the ``unit_energy`` totals of the intervals it spans must still hold the other meters'
        share), but never more than :data:`FINE_SPAN_MS` (a meter silent longer than that adds its
        older pieces to ``energy`` and the periods, not to ``unit_energy``)."""
        newest = self.newest_ts_ms
        if newest is None:
            return 0
        oldest = newest - policy.lateness_ms
        floor = self._last_floor
        if floor is None or floor < oldest:
            # Some meter may have read before `oldest`: find the oldest newest reading. Usually the
            # floor is within the lateness window, and no meter is (the meters' times only go up).
            floor = None
            for meter in self.meters.values():
                last = meter.last_ts_ms
                if last is not None and (floor is None or last < floor):
                    floor = last
            self._last_floor = floor
            if floor is not None and floor < oldest:
                oldest = floor
        return interval_start(max(oldest, newest - max(FINE_SPAN_MS, policy.lateness_ms))) - INTERVAL_MS

    def _forget_intervals_before(self, oldest_kept: int) -> None:
        """Drop the totals of intervals older than ``oldest_kept`` (:meth:`_oldest_kept`)."""
        if not self.intervals or min(self.intervals) >= oldest_kept:  # nothing to forget (usual)
            return
        for start in [s for s in self.intervals if s < oldest_kept]:
            del self.intervals[start]

    def _evaluate_rules(self, policy: LedgerPolicy, info: UnitInfo | None, result: LedgerResult) -> None:
        assert self.newest_ts_ms is not None
        newest_start = interval_start(self.newest_ts_ms)
        ceiling = policy.hourly_tce_ceiling
        if info is not None and info.hourly_tce_ceiling is not None:
            ceiling = info.hourly_tce_ceiling
        # The hour up to the interval being filled, or the last complete hour if that used more: a
        # new interval starts nearly empty, and grading only the running hour would resolve the alert
        # at each interval start and raise it again as the interval fills (a flapping alert).
        used = max(
            last_hour_tce(self.intervals, newest_start),
            last_hour_tce(self.intervals, newest_start - INTERVAL_MS),
        )
        alert = hourly_ceiling(
            self.unit_id,
            used,
            ceiling,
            self.open_alerts.get(HOURLY_CEILING),
            newest_start + INTERVAL_MS,
        )
        if alert is None:
            return
        if alert.state == "resolved":
            self.open_alerts.pop(HOURLY_CEILING, None)
        else:
            self.open_alerts[HOURLY_CEILING] = alert.severity
        result.alerts.append(alert)

    def level(self) -> str:
        """The unit's warning level now: the most severe open alert, or green."""
        for severity in ("red", "orange", "yellow"):
            if severity in self.open_alerts.values():
                return severity
        return "green"

    def to_json(self) -> dict[str, Any]:
        """Plain data for the table store."""
        return {
            "unit_id": self.unit_id,
            "meters": {m: s.to_json() for m, s in self.meters.items()},
            "sums": {m: base64.b64encode(s.to_bytes()).decode("ascii") for m, s in self.sums.items()},
            "intervals": {str(k): v for k, v in self.intervals.items()},
            "newest_ts_ms": self.newest_ts_ms,
            "open_alerts": self.open_alerts,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> UnitLedger:
        """Inverse of :meth:`to_json`."""
        return cls(
            unit_id=doc["unit_id"],
            meters={m: MeterState.from_json(s) for m, s in doc["meters"].items()},
            sums={
                m: IntervalSums.from_bytes(base64.b64decode(s, validate=True))
                for m, s in doc.get("sums", {}).items()
            },
            intervals={int(k): v for k, v in doc["intervals"].items()},
            newest_ts_ms=doc["newest_ts_ms"],
            open_alerts=dict(doc["open_alerts"]),
        )


class _MessageContext:
    """Applying one message: what its readings share (the unit's accountant, its grid region and
    province for CO₂, its meters' registry entries by meter id), worked out once per message, and
    what they produce (``result``; ``touched``: the interval starts whose totals changed;
    ``changed``: the (meter, interval start) pieces went to of intervals closed before the message,
    ``open_start`` the start of the interval open before it; ``grown``: the meters that began an
    interval)."""

    __slots__ = (
        "accountant",
        "changed",
        "counted",
        "grown",
        "last_end",
        "last_interval",
        "lateness_ms",
        "oldest_kept",
        "open_start",
        "policy",
        "province",
        "region",
        "registry",
        "result",
        "touched",
    )

    def __init__(
        self, accountant: Accountant, info: UnitInfo | None, policy: LedgerPolicy, result: LedgerResult
    ) -> None:
        self.accountant = accountant
        self.policy = policy
        self.lateness_ms = policy.lateness_ms
        self.result = result
        self.counted = result.counted
        self.touched: set[int] = set()
        self.changed: set[tuple[str, int]] = set()
        self.grown: set[str] = set()
        self.open_start = _NOTHING
        #: UnitLedger._oldest_kept, kept up to date as the unit's newest reading moves on
        self.oldest_kept = 0
        self.region = info.grid_region if info else None
        self.province = info.region if info else None
        #: meter_id → its registry entry as the accounting reads it; the first entry wins
        self.registry = registry_table(info) if info and info.meters else {}
        #: the last interval_of: its ``end_ms`` and answer
        self.last_end, self.last_interval = -1, (0, date.min)

    def interval_of(self, end_ms: int) -> tuple[int, date]:
        """The start of the interval a piece ending at ``end_ms`` closes, and the local day it counts
        on: the day of the interval's start (a piece closing at 00:00 counts on the day before).
        The readings of a scan share their time, so the last answer is kept."""
        if end_ms != self.last_end:
            start = interval_start(end_ms)
            self.last_end, self.last_interval = end_ms, (start, local_day(start))
        return self.last_interval

    def limits(self, meter: MeterInfo, energy: str, kind: str, uom: str) -> CounterLimits:
        """The limits of the registry entry ``meter`` for a reading of ``energy`` and ``kind`` in
        ``uom``, in the energy's canonical uom."""
        return _limits(self.accountant, energy, kind, uom, meter.uom, meter.register_max, meter.max_per_hour)


@dataclass(slots=True, eq=False)
class MeterEntry:
    """What the accounting reads of a meter's registry entry, read once per registry record:
    ``multiplier`` (CT/PT ratio), ``role``, ``counts`` (in the unit's totals: a ``main`` meter; a
    sub-meter's energy is inside its main meter's, a ``monthly`` one is a statistic), ``excluded``
    (feedstock / renewable, kept apart) and ``products`` (the ids of the products whose energy it
    measures, ``energy.periods.product_ids_for_meter``). Read-only but for ``last_limits``: the
    meter's limits for the accountant, energy, kind and uom of its last reading (:func:`_limits`),
    which nearly every reading of the meter shares."""

    meter: MeterInfo
    multiplier: float
    role: str
    counts: bool
    excluded: str | None
    products: tuple[str, ...]
    last_limits: tuple[Accountant, str, str, str, CounterLimits] | None = field(default=None, repr=False)


RegistryTable = dict[str, MeterEntry]
_TABLES: dict[int, tuple[UnitInfo, RegistryTable]] = {}


def registry_table(info: UnitInfo) -> RegistryTable:
    """``meter_id →`` :class:`MeterEntry` of a unit's registry record, the first entry of a meter
    winning (like ``UnitInfo.meter``). Kept per record object (the worker parses a record once per
    version), so a message pays a dictionary lookup, not a pass over the meters and pydantic
    attribute reads."""
    cached = _TABLES.get(id(info))
    if cached is not None and cached[0] is info:
        return cached[1]
    table = {
        m.meter_id: MeterEntry(
            m,
            m.multiplier,
            m.role,
            m.role == "main",
            m.excluded,
            tuple(p.product_id for p in info.products if m.meter_id in p.meters),
        )
        for m in reversed(info.meters)
    }
    if len(_TABLES) >= 4096:
        _TABLES.clear()
    _TABLES[id(info)] = (info, table)
    return table


# Cached: the same few meters come back with every message, and the worker reads each message's
# registry record afresh, so there is no object to keep the limits on. A pure function of its
# arguments (the accountant's unit tables never change).
@lru_cache(maxsize=4096)
def _limits(
    accountant: Accountant,
    energy: str,
    kind: str,
    uom: str,
    meter_uom: str | None,
    register_max: float | None,
    max_per_hour: float | None,
) -> CounterLimits:
    """A registry meter's ``register_max`` and ``max_per_hour`` (in ``meter_uom``, or else the
    reading's ``uom``) in the canonical uom of ``energy``, for a reading of ``kind``."""
    uom = meter_uom or uom
    per_hour = accountant.rate_per_hour if kind == "rate" else accountant.quantity
    return CounterLimits(
        register_max=accountant.quantity(energy, register_max, uom) if register_max else None,
        max_per_hour=per_hour(energy, max_per_hour, uom) if max_per_hour else None,
    )
