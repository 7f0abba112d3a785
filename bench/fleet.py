"""The benchmark's generated fleet: units × meters, readings every minute, K readings per message.

Units take their identity (id, province, grid region, industry, size in tce/year) and the energy,
kind and uom of their meters from the simulator's fleet (:class:`collectors.simulator.Fleet`); a
unit of ``meters`` meters cycles through its industry's meter kinds, each copy getting an equal
share of that kind's consumption, so a unit uses what the simulated unit uses whatever the number
of meters. Consumption is flat with ±10 % per-minute texture (cheap to generate: millions of
readings in seconds), registers never go back.

A unit's readings, minute by minute and meter by meter, are cut into messages of ``per_message``
readings (a message may hold part of a scan or several scans). All units are read at the same
minutes, as real collectors scan on the minute.

Alerts: every unit's registry record sets ``hourly_tce_ceiling`` (tce/h): three times its hourly use
for ordinary units (never crossed), 1.5 times for the *alert units*. An alert unit given a spike
(:meth:`BenchFleet.schedule_spikes`) uses ``SPIKE_FACTOR`` times its normal energy in that minute,
which takes its last hour over the ceiling: an ``hourly_ceiling`` alert (and its resolution an hour
later). Which message raises it is worked out with the kernel itself (:class:`AlertForecast`).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from collectors.simulator import CST, Fleet
from energy.accounting import Accountant
from energy.alert import Alert
from energy.intervals import INTERVAL_MS, interval_start, local_day
from energy.ledger import LedgerPolicy, UnitLedger
from energy.registry import MeterInfo, UnitInfo, YearTargets
from energy.schema import parse_message

MINUTE_MS = 60_000
#: Time of minute 0, the first readings: Monday 2026-03-02 00:00 Asia/Shanghai.
START_MS = int(datetime(2026, 3, 2, tzinfo=CST).timestamp() * 1000)
#: Minutes per 15-minute interval.
INTERVAL_MINUTES = INTERVAL_MS // MINUTE_MS
MINUTES_PER_YEAR = 365 * 24 * 60
SOURCE = "bench"
#: Energy of an alert unit in its spike minute, as a multiple of a normal minute.
SPIKE_FACTOR = 100.0
#: hourly_tce_ceiling as a multiple of the unit's hourly use: alert units, the others.
ALERT_CEILING, ORDINARY_CEILING = 1.5, 3.0
#: Yearly energy cap as a multiple of the unit's yearly use (the unit stays green).
CAP_FACTOR = 1.3
_TEXTURE = 0.10  # ± per-minute variation of a meter's consumption
_CUMULATIVE_DECIMALS, _INTERVAL_DECIMALS = 3, 4


@dataclass(frozen=True)
class BenchMeter:
    """One meter: ``per_minute`` is its normal consumption per minute in ``uom``; ``start`` its
    register at minute 0 (cumulative meters)."""

    meter_id: str
    energy: str
    kind: str
    uom: str
    per_minute: float
    start: float


@dataclass(frozen=True)
class BenchUnit:
    """One unit: its registry record, meters, normal use (tce/h) and whether it is an alert unit."""

    info: UnitInfo
    meters: tuple[BenchMeter, ...]
    hourly_tce: float
    alert: bool

    @property
    def unit_id(self) -> str:
        return self.info.unit_id


@dataclass(frozen=True, slots=True)
class Message:
    """One readings message as produced: key and value bytes, its ``readings``, the time (epoch ms)
    of its newest reading ``ts_ms`` and its ``index`` in the fleet's message sequence."""

    index: int
    unit_id: str
    key: bytes
    value: bytes
    readings: int
    ts_ms: int


def minute_ms(minute: int) -> int:
    """Epoch ms of minute ``minute`` of the run (:data:`START_MS` is minute 0)."""
    return START_MS + minute * MINUTE_MS


def interval_aligned(minutes: int) -> int:
    """``minutes`` rounded up to a whole number of 15-minute intervals (at least one)."""
    return max(INTERVAL_MINUTES, -(-minutes // INTERVAL_MINUTES) * INTERVAL_MINUTES)


def alert_unit_count(units: int) -> int:
    """How many units of a fleet are alert units: 5 %, at least 2 (when there are), at most 200."""
    return min(units, max(2, min(200, units // 20)))


def hourly_tce(
    accountant: Accountant, meters: Iterable[BenchMeter], info: UnitInfo, minute_ms_: int = START_MS
) -> float:
    """A unit's normal use in tce per hour, converted by the kernel on the day of ``minute_ms_``."""
    day = local_day(interval_start(minute_ms_))
    total = 0.0
    for m in meters:
        qty = accountant.quantity(m.energy, m.per_minute, m.uom)
        total += accountant.tce_co2(m.energy, qty, day, info.grid_region, info.region)[0]
    return total * 60.0


class BenchFleet:
    """A fleet of ``units`` units with ``meters`` meters each and ``per_message`` readings per
    message; a pure function of its arguments and ``seed``. :meth:`messages` generates the readings
    of consecutive minute ranges, keeping each register where the last range left it."""

    def __init__(self, units: Sequence[BenchUnit], meters: int, per_message: int, seed: int) -> None:
        self.units = tuple(units)
        self.meters = meters
        self.per_message = per_message
        self.seed = seed
        rng = random.Random(f"bench-texture|{seed}")
        raw = [1.0 + rng.uniform(-_TEXTURE, _TEXTURE) for _ in range(97)]
        mean = sum(raw) / len(raw)
        self._texture = tuple(x / mean for x in raw)
        self._registers = [[m.start for m in u.meters] for u in self.units]
        self._pending: list[list[dict[str, object]]] = [[] for _ in self.units]
        self._seq = [0] * len(self.units)
        self._spikes: dict[str, int] = {}
        self._next_minute = 0
        self._next_index = 0

    @classmethod
    def generate(
        cls, units: int, meters: int, per_message: int, seed: int = 2026, accountant: Accountant | None = None
    ) -> BenchFleet:
        """Build the fleet (see the module docstring)."""
        if units < 1 or meters < 1 or per_message < 1:
            raise ValueError("units, meters and readings per message must be at least 1")
        accountant = accountant or Accountant()
        sim = Fleet.generate(units=units, seed=seed)
        n_alert = alert_unit_count(units)
        alert_every = units / n_alert
        alert_positions = {int(k * alert_every) for k in range(n_alert)}
        built: list[BenchUnit] = []
        for i, su in enumerate(sim.units):
            kinds = su.meters
            copies = [len(range(j, meters, len(kinds))) for j in range(len(kinds))]
            rng = random.Random(f"{seed}|{su.unit_id}|bench")
            bench_meters = []
            for k in range(meters):
                spec = kinds[k % len(kinds)]
                per_minute = spec.annual_qty / copies[k % len(kinds)] / MINUTES_PER_YEAR
                start = round(spec.annual_qty * rng.uniform(0.05, 2.0), _CUMULATIVE_DECIMALS)
                bench_meters.append(
                    BenchMeter(
                        meter_id=f"{su.unit_id}.M{k:03d}",
                        energy=spec.energy,
                        kind=spec.kind,
                        uom=spec.uom,
                        per_minute=per_minute,
                        start=start if spec.kind == "cumulative" else 0.0,
                    )
                )
            alert = i in alert_positions
            use = hourly_tce(accountant, bench_meters, su.info)
            ceiling = use * (ALERT_CEILING if alert else ORDINARY_CEILING)
            year = datetime.fromtimestamp(START_MS / 1000, CST).year
            info = su.info.model_copy(
                update={
                    "hourly_tce_ceiling": round(ceiling, 6),
                    "meters": tuple(
                        MeterInfo(meter_id=m.meter_id, energy=m.energy, kind=m.kind, uom=m.uom)
                        for m in bench_meters
                    ),
                    "targets": (YearTargets(year=year, energy_cap_tce=round(use * 8760 * CAP_FACTOR, 1)),),
                }
            )
            built.append(BenchUnit(info=info, meters=tuple(bench_meters), hourly_tce=use, alert=alert))
        return cls(built, meters, per_message, seed)

    @property
    def meter_count(self) -> int:
        """Meters of the whole fleet."""
        return len(self.units) * self.meters

    def registry(self) -> list[UnitInfo]:
        """The registry records, one per unit in fleet order."""
        return [u.info for u in self.units]

    def alert_units(self) -> list[str]:
        """The alert units' ids, in fleet order."""
        return [u.unit_id for u in self.units if u.alert]

    def schedule_spikes(self, unit_ids: Sequence[str], first_minute: int, last_minute: int) -> dict[str, int]:
        """Give each of ``unit_ids`` one spike minute, spread evenly over ``first_minute`` ..
        ``last_minute`` (inclusive, not yet generated); returns unit → minute."""
        if first_minute < self._next_minute or last_minute < first_minute:
            raise ValueError(f"spike minutes {first_minute}..{last_minute} are not ahead of the generator")
        span = last_minute - first_minute + 1
        chosen = {
            unit_id: first_minute + (k * span) // max(1, len(unit_ids)) for k, unit_id in enumerate(unit_ids)
        }
        self._spikes.update(chosen)
        return chosen

    @property
    def next_minute(self) -> int:
        """The first minute :meth:`messages` has not generated yet."""
        return self._next_minute

    def skip_to_interval(self) -> int:
        """Move on to the first minute of the next 15-minute interval (unless the next minute is
        one) without sending anything, as if the collectors were down: registers keep counting, the
        interval meters' quantities of the skipped minutes are lost. Returns the minutes skipped.
        A paced run starting there has every unit enter a new interval at once."""
        start = self._next_minute
        target = start
        while (target - 1) % INTERVAL_MINUTES:
            target += 1
        for minute in range(max(start, 1), target):
            for unit, registers in zip(self.units, self._registers, strict=True):
                for k, m in enumerate(unit.meters):
                    if m.kind == "cumulative":
                        registers[k] += self._qty(m, k, minute, 1.0)
        self._next_minute = target
        return target - start

    def _qty(self, meter: BenchMeter, k: int, minute: int, spike: float) -> float:
        """Consumption of the unit's ``k``-th meter in ``minute`` (its uom)."""
        return meter.per_minute * self._texture[(k * 7 + minute) % len(self._texture)] * spike

    def messages(self, minutes: int) -> list[Message]:
        """The messages of the next ``minutes`` minutes, round by round (every unit's readings of a
        minute before the next minute's). A unit's readings left over at the end (fewer than
        ``per_message``) go out as a shorter message, so a range ends with everything sent."""
        out: list[Message] = []
        qty_of = self._qty
        for minute in range(self._next_minute, self._next_minute + minutes):
            ts = minute_ms(minute)
            last = minute == self._next_minute + minutes - 1
            for u_idx, unit in enumerate(self.units):
                spike = SPIKE_FACTOR if self._spikes.get(unit.unit_id) == minute else 1.0
                registers = self._registers[u_idx]
                pending = self._pending[u_idx]
                for k, m in enumerate(unit.meters):
                    qty = qty_of(m, k, minute, spike)
                    if m.kind == "cumulative":
                        if minute > 0:
                            registers[k] += qty
                        value = round(registers[k], _CUMULATIVE_DECIMALS)
                    else:
                        value = round(qty, _INTERVAL_DECIMALS)
                    pending.append(
                        {"meter_id": m.meter_id, "energy": m.energy, "kind": m.kind, "value": value,
                         "uom": m.uom, "ts": ts}
                    )  # fmt: skip
                    if len(pending) == self.per_message:
                        out.append(self._emit(u_idx, pending, ts))
                        pending = self._pending[u_idx] = []
                if last and pending:
                    out.append(self._emit(u_idx, pending, ts))
                    self._pending[u_idx] = []
        self._next_minute += minutes
        return out

    def _emit(self, u_idx: int, readings: list[dict[str, object]], ts_ms: int) -> Message:
        """The message of ``readings``, whose newest reading is at ``ts_ms``."""
        unit_id = self.units[u_idx].unit_id
        self._seq[u_idx] += 1
        doc = {"v": 1, "unit_id": unit_id, "source": SOURCE, "seq": self._seq[u_idx], "readings": readings}
        msg = Message(
            index=self._next_index,
            unit_id=unit_id,
            key=unit_id.encode(),
            value=orjson.dumps(doc),
            readings=len(readings),
            ts_ms=ts_ms,
        )
        self._next_index += 1
        return msg


AlertId = tuple[str, str, int]
"""An alert as the ``alerts`` topic carries it: (key, state, ts_ms)."""


def alert_id(alert: Alert) -> AlertId:
    """The identity of an alert record."""
    return (alert.key, alert.state, alert.ts_ms)


@dataclass
class AlertForecast:
    """Which message raises (or resolves) which ``hourly_ceiling`` alert: the kernel's own ledger
    (``energy.ledger.UnitLedger``, as the worker applies it) run over the messages of the watched
    units. Feed it every message in production order; ``expected`` maps alert → message index."""

    accountant: Accountant
    policy: LedgerPolicy
    infos: dict[str, UnitInfo]
    ledgers: dict[str, UnitLedger] = field(default_factory=dict)
    expected: dict[AlertId, int] = field(default_factory=dict)

    def feed(self, messages: Iterable[Message]) -> None:
        """Apply the watched units' messages; remember the message of each alert change."""
        for msg in messages:
            info = self.infos.get(msg.unit_id)
            if info is None:
                continue
            ledger = self.ledgers.get(msg.unit_id)
            if ledger is None:
                ledger = self.ledgers[msg.unit_id] = UnitLedger(msg.unit_id)
            result = ledger.apply(parse_message(msg.value), self.accountant, self.policy, info)
            for alert in result.alerts:
                self.expected.setdefault(alert_id(alert), msg.index)


class StatusIndex:
    """Which message a ``unit_status`` point answers: the worker grades a unit when its data enters a
    new 15-minute interval, at the time of the unit's newest reading (``energy.monitor``), so the
    point (unit, T) is caused by the unit's first message whose newest reading is at T or later."""

    def __init__(self) -> None:
        self._ts: dict[str, list[int]] = {}
        self._index: dict[str, list[int]] = {}
        self._graded: dict[str, int] = {}
        #: (unit, T) of the points expected from the messages added, → message index
        self.expected: dict[tuple[str, int], int] = {}

    def add(self, messages: Iterable[Message]) -> None:
        """Index messages (in production order) and expect a point for each that enters a new
        interval of its unit."""
        for msg in messages:
            self._ts.setdefault(msg.unit_id, []).append(msg.ts_ms)
            self._index.setdefault(msg.unit_id, []).append(msg.index)
            interval = interval_start(msg.ts_ms)
            if interval > self._graded.get(msg.unit_id, -1):
                self._graded[msg.unit_id] = interval
                self.expected[(msg.unit_id, msg.ts_ms)] = msg.index

    def cause(self, unit_id: str, ts_ms: int) -> int | None:
        """The index of the message that caused the point (unit, ``ts_ms``); None if none did."""
        times = self._ts.get(unit_id)
        if not times:
            return None
        pos = bisect.bisect_left(times, ts_ms)
        return self._index[unit_id][pos] if pos < len(times) else None
