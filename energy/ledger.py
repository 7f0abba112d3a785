"""A unit's ledger: everything the stream app remembers of one unit, and how a readings message
changes it.

``UnitLedger.apply`` is the heart of the accounting: it turns the readings of one message into
``energy`` points (one per reading, at the reading's own time), per-interval unit totals
(``unit_energy``), rejections with the rule that refused them, and alert changes. Applying the same
message twice yields the same points and no second count, so at-least-once delivery upstream
gives exactly-once totals downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from energy.accounting import Accountant, AccountingError
from energy.alert import Alert
from energy.counters import CounterLimits, CounterRejected, MeterState, Segment, counter_update
from energy.intervals import INTERVAL_MS, interval_start, local_day
from energy.registry import UnitInfo
from energy.rules import HOURLY_CEILING, hourly_ceiling, last_hour_tce
from energy.schema import ParsedMessage, Reading, Rejection, reading_to_json


@dataclass(frozen=True)
class LedgerPolicy:
    """Rules that are settings: ``lateness_ms`` is how far (ms) behind the unit's newest reading a
    reading may arrive; ``hourly_tce_ceiling`` (tce/h) applies when the unit has no ceiling of its own.
    """

    lateness_ms: int = 2 * 60 * 60 * 1000
    hourly_tce_ceiling: float = 25.0


@dataclass(frozen=True)
class EnergyPoint:
    """Consumption of one meter in the period ending at ``ts_ms``: ``qty`` in the energy's
    canonical uom, ``tce`` and ``co2_t`` in tonnes. ``estimated`` marks a share of a segment that was
    split over several intervals, or a reading the collector marked estimated."""

    unit_id: str
    meter_id: str
    energy: str
    ts_ms: int
    qty: float
    tce: float
    co2_t: float
    estimated: bool = False


@dataclass(frozen=True)
class UnitIntervalPoint:
    """A unit's total over the 15-minute interval starting at ``start_ms``: tce and tCO₂."""

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
    """What applying one message produced. ``accepted`` counts readings used (first time or repeat)."""

    energy: list[EnergyPoint] = field(default_factory=list)
    intervals: list[UnitIntervalPoint] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    events: list[MeterEvent] = field(default_factory=list)
    accepted: int = 0
    repeats: int = 0


def split_segment(segment: Segment) -> list[tuple[int, float]]:
    """The segment's quantity as ``(end_ms, qty)`` pieces, one per 15-minute interval it spans, in
    proportion to time; a segment inside one interval (or without a start) is one piece."""
    end = segment.end_ms
    if segment.start_ms is None:
        return [(end, segment.qty)]
    first = interval_start(segment.start_ms + 1)
    last = interval_start(end)
    if first == last:
        return [(end, segment.qty)]
    span = end - segment.start_ms
    pieces = []
    done = 0.0
    start = segment.start_ms
    for boundary in range(first + INTERVAL_MS, last + 1, INTERVAL_MS):
        qty = segment.qty * (boundary - start) / span
        pieces.append((boundary, qty))
        done += qty
        start = boundary
    pieces.append((end, segment.qty - done))
    return pieces


@dataclass
class UnitLedger:
    """State of one unit: its meters, recent interval totals ``start_ms → [tce, tCO2]``, the newest
    reading time (epoch ms) and open alerts ``rule → severity``."""

    unit_id: str
    meters: dict[str, MeterState] = field(default_factory=dict)
    intervals: dict[int, list[float]] = field(default_factory=dict)
    newest_ts_ms: int | None = None
    open_alerts: dict[str, str] = field(default_factory=dict)

    def apply(
        self,
        msg: ParsedMessage,
        accountant: Accountant,
        policy: LedgerPolicy,
        info: UnitInfo | None = None,
    ) -> LedgerResult:
        """Apply one parsed readings message of this unit; return its points, rejections and alerts."""
        result = LedgerResult(rejections=list(msg.rejections))
        touched: set[int] = set()
        unit_accountant = accountant.for_unit(info)
        for reading in msg.readings:
            try:
                self._account(reading, unit_accountant, policy, info, result, touched)
            except (AccountingError, CounterRejected) as exc:
                result.rejections.append(
                    Rejection(exc.rule, exc.detail, self.unit_id, reading_to_json(reading))
                )
                continue
            result.accepted += 1
        self._forget_old_intervals(policy)
        for start in sorted(touched):
            if start in self.intervals:
                tce, co2 = self.intervals[start]
                result.intervals.append(UnitIntervalPoint(self.unit_id, start, tce, co2))
        if touched and self.newest_ts_ms is not None:
            self._evaluate_rules(policy, info, result)
        return result

    def _account(
        self,
        r: Reading,
        accountant: Accountant,
        policy: LedgerPolicy,
        info: UnitInfo | None,
        result: LedgerResult,
        touched: set[int],
    ) -> None:
        if self.newest_ts_ms is not None and r.ts_ms < self.newest_ts_ms - policy.lateness_ms:
            raise CounterRejected(
                "too_late",
                f"reading is {(self.newest_ts_ms - r.ts_ms) / 1000:.0f} s behind the unit's newest; "
                f"the lateness window is {policy.lateness_ms / 1000:.0f} s",
            )
        convert = accountant.rate_per_hour if r.kind == "rate" else accountant.quantity
        value = convert(r.energy, r.value, r.uom)
        old_value = accountant.quantity(r.energy, r.old_value, r.uom) if r.old_value is not None else None
        meter = self.meters.get(r.meter_id)
        if meter is None:
            meter = MeterState(kind=r.kind, energy=r.energy)
        elif meter.energy != r.energy:
            raise CounterRejected(
                "energy_changed", f"meter {r.meter_id} measures {meter.energy}, reading says {r.energy}"
            )
        update = counter_update(
            meter,
            r.kind,
            r.ts_ms,
            value,
            limits=_limits(info, r, accountant),
            retention_ms=policy.lateness_ms,
            estimated=r.quality == "estimated",
            swap_old_value=old_value,
        )
        self.meters[r.meter_id] = meter
        if self.newest_ts_ms is None or r.ts_ms > self.newest_ts_ms:
            self.newest_ts_ms = r.ts_ms
        if update.repeat:
            result.repeats += 1
        if update.event:
            result.events.append(
                MeterEvent(self.unit_id, r.meter_id, r.ts_ms, update.event, f"register {r.value:g} {r.uom}")
            )
        region = info.grid_region if info else None
        province = info.region if info else None
        oldest_kept = self._oldest_kept(policy)
        for sign, segments in ((-1.0, update.removed), (1.0, update.added)):
            for segment in segments:
                pieces = split_segment(segment)
                estimated = segment.estimated or len(pieces) > 1
                for end, qty in pieces:
                    # The piece belongs to the interval it closes: at 00:00 that is the day before.
                    day = local_day(interval_start(end))
                    tce, co2 = accountant.tce_co2(r.energy, qty, day, region, province)
                    if sign > 0:
                        result.energy.append(
                            EnergyPoint(self.unit_id, r.meter_id, r.energy, end, qty, tce, co2, estimated)
                        )
                    start = interval_start(end)
                    if update.repeat or start < oldest_kept:
                        continue
                    totals = self.intervals.setdefault(start, [0.0, 0.0])
                    totals[0] += sign * tce
                    totals[1] += sign * co2
                    touched.add(start)
                if update.repeat:
                    touched.update(interval_start(end) for end, _ in pieces)

    def _oldest_kept(self, policy: LedgerPolicy) -> int:
        """Start of the oldest interval the ledger keeps totals for."""
        if self.newest_ts_ms is None:
            return 0
        return interval_start(self.newest_ts_ms - policy.lateness_ms) - INTERVAL_MS

    def _forget_old_intervals(self, policy: LedgerPolicy) -> None:
        oldest_kept = self._oldest_kept(policy)
        for start in [s for s in self.intervals if s < oldest_kept]:
            del self.intervals[start]

    def _evaluate_rules(self, policy: LedgerPolicy, info: UnitInfo | None, result: LedgerResult) -> None:
        assert self.newest_ts_ms is not None
        newest_start = interval_start(self.newest_ts_ms)
        ceiling = policy.hourly_tce_ceiling
        if info is not None and info.hourly_tce_ceiling is not None:
            ceiling = info.hourly_tce_ceiling
        alert = hourly_ceiling(
            self.unit_id,
            last_hour_tce(self.intervals, newest_start),
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
            intervals={int(k): v for k, v in doc["intervals"].items()},
            newest_ts_ms=doc["newest_ts_ms"],
            open_alerts=dict(doc["open_alerts"]),
        )


def _limits(info: UnitInfo | None, r: Reading, accountant: Accountant) -> CounterLimits:
    """The registry's limits for the reading's meter, in canonical uom."""
    meter = info.meter(r.meter_id) if info else None
    if meter is None:
        return CounterLimits()
    uom = meter.uom or r.uom
    per_hour = accountant.rate_per_hour if r.kind == "rate" else accountant.quantity
    return CounterLimits(
        register_max=accountant.quantity(r.energy, meter.register_max, uom) if meter.register_max else None,
        max_per_hour=per_hour(r.energy, meter.max_per_hour, uom) if meter.max_per_hour else None,
    )
