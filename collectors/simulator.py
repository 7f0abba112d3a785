"""A deterministic simulated fleet of key energy-using units, and the loop that publishes it.

Same seed → same fleet and the same readings, byte for byte. Every quantity is a pure function of
``(seed, unit, meter, t)``: a meter's consumption since :data:`EPOCH_MS` is computed in closed form
from its load shape, so a scan at time *t* does not depend on what was generated before, cumulative
registers never go backwards (not even across a simulator restart), and ``interval`` quantities of
consecutive scans add up to the consumption between them.

Load model of one meter (physical units of the meter's uom):

* ``q`` — mean consumption per hour (``annual_qty / 8760``).
* An hour-of-week table (168 factors, mean 1, local time Asia/Shanghai, Monday 00:00 first): the
  industry's daily profile (night low, day shift 08:00–20:00 high; data centres flat) times its
  weekend factor (cement and chemicals clearly lower on Saturday and Sunday), times ±2 % of fixed
  per-meter texture.
* Per unit and day a production-level factor (±3 %, seeded by unit and week, weighted so that each
  week's total is exactly the table's total) and per meter and minute a weight (±8 %, seeded by meter
  and hour, summing to exactly one hour's share). Consumption within a minute is uniform.

Data-centre diesel is a generator test: one hour a week (Tuesday 10:00–11:00).

Heavy units (whatever the seed): ``sim-steel-001`` (220 000 tce/year) and ``sim-cement-001``
(205 000 tce/year) use about 27–31 tce per hour in the weekday day shift (08–20), above the default
``hourly_ceiling`` of 25 tce/h, and about 15–22 tce/h at night (sim-steel-001 also exceeds it in the
weekend day shift, sim-cement-001 does not). Every other unit is at most 120 000 tce/year and stays
below ~17 tce/h at all times. Figures use the kernel's GB/T 2589 当量值 coefficients (:func:`tce_per_uom`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from energy.coefficients import CoefficientTable
from energy.registry import UnitInfo
from energy.schema import TS_MAX_MS
from energy.topics import REGISTRY
from energymon.settings import Settings

from .publisher import Publisher

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_HOURS = 168
#: Hours in the 365-day year the annual sizes refer to.
YEAR_HOURS = 8760
#: Local time of the simulated sites (China has no daylight saving time).
CST = timezone(timedelta(hours=8))
#: Monday 2020-01-06 00:00 Asia/Shanghai: registers count from here; scans before it are refused.
EPOCH_MS = int(datetime(2020, 1, 6, tzinfo=CST).timestamp() * 1000)
#: ``source`` of every simulated message.
SOURCE = "sim"
#: Length of the interval a first scan (no previous scan) reports for ``interval`` meters.
DEFAULT_INTERVAL_MS = MINUTE_MS
#: Days of ``history="year"`` sent between two flushes and progress lines.
HISTORY_LOG_DAYS = 30

#: The registry of the default fleet (units, meters, products, targets), in a source checkout; written by
#: scripts/make_sample_registry.py.
SAMPLE_REGISTRY = Path(__file__).resolve().parents[1] / "deploy" / "registry" / "simulator.yaml"
#: The seed of the fleet :data:`SAMPLE_REGISTRY` describes (its first 20 units).
SAMPLE_SEED = 2026

#: Day whose GB/T 2589 当量值 coefficients (energy/data/coefficients.csv) size the fleet.
SIZING_DAY = date(2026, 1, 1)


def tce_per_uom(energy: str) -> float:
    """Standard coal (tce) per unit of the energy's canonical uom, from the kernel's table."""
    return CoefficientTable.load().coefficient(energy, SIZING_DAY).kgce_per_uom / 1000.0

INDUSTRIES: tuple[str, ...] = ("steel", "cement", "chemicals", "data_centre")
HEAVY_UNIT_IDS: tuple[str, ...] = ("sim-steel-001", "sim-cement-001")
_HEAVY_ANNUAL_TCE: dict[str, float] = {"sim-steel-001": 220_000.0, "sim-cement-001": 205_000.0}

_INDUSTRY_CN = {"steel": "钢铁", "cement": "水泥", "chemicals": "化工", "data_centre": "数据中心"}
#: Annual consumption range of the ordinary (not heavy) units, tce/year.
_ANNUAL_TCE_RANGE: dict[str, tuple[float, float]] = {
    "steel": (60_000.0, 120_000.0),
    "cement": (30_000.0, 100_000.0),
    "chemicals": (40_000.0, 110_000.0),
    "data_centre": (10_000.0, 40_000.0),
}
#: Fresh water drawn per tce of energy, t/tce (order of magnitude only).
_WATER_T_PER_TCE = {"steel": 5.0, "cement": 2.5, "chemicals": 8.0, "data_centre": 12.0}

#: Province → regional grid (MEE/NBS electricity CO₂ factor regions).
GRID_REGION_OF: dict[str, str] = {
    "河北": "华北", "山西": "华北", "山东": "华北", "辽宁": "东北",
    "江苏": "华东", "浙江": "华东", "安徽": "华东", "上海": "华东",
    "河南": "华中", "湖北": "华中", "四川": "西南", "重庆": "西南",
    "广东": "南方", "广西": "南方", "贵州": "南方",
    "陕西": "西北", "宁夏": "西北",
}  # fmt: skip
_PROVINCES: dict[str, tuple[str, ...]] = {
    "steel": ("河北", "江苏", "山东", "辽宁", "山西", "湖北"),
    "cement": ("安徽", "四川", "广东", "河南", "浙江", "广西"),
    "chemicals": ("江苏", "浙江", "山东", "宁夏", "湖北", "陕西"),
    "data_centre": ("贵州", "河北", "广东", "宁夏", "上海", "重庆"),
}


def _profile(night: float, ramp: float, day: float, late: float) -> tuple[float, ...]:
    """24 hourly factors: 00–06 night, 06–08 ramp, 08–20 day shift, 20–22 ramp, 22–24 late."""
    return (night,) * 6 + (ramp,) * 2 + (day,) * 12 + (ramp,) * 2 + (late,) * 2


#: Daily profile (24 factors, local hours) and weekend factor per industry.
_SHAPES: dict[str, tuple[tuple[float, ...], float]] = {
    "steel": (_profile(0.78, 0.90, 1.18, 0.80), 0.97),
    "cement": (_profile(0.84, 0.95, 1.14, 0.84), 0.78),
    "chemicals": (_profile(0.88, 0.95, 1.10, 0.88), 0.86),
    "data_centre": ((0.98,) * 10 + (1.03,) * 8 + (0.98,) * 6, 1.0),
}

Kind = Literal["cumulative", "interval"]
Profile = Literal["unit", "genset_test"]

# code, energy, kind, uom, share of the unit's tce (None: fresh water, sized per tce), profile
_MeterSpec = tuple[str, str, Kind, str, float | None, Profile]
_METERS: dict[str, tuple[_MeterSpec, ...]] = {
    "steel": (
        ("EL01", "electricity", "cumulative", "kWh", 0.13, "unit"),
        ("EL02", "electricity", "cumulative", "kWh", 0.10, "unit"),
        ("NG01", "natural_gas", "cumulative", "m³", 0.09, "unit"),
        ("CO01", "raw_coal", "interval", "t", 0.63, "unit"),
        ("ST01", "steam", "cumulative", "t", 0.04, "unit"),
        ("DS01", "diesel", "interval", "t", 0.01, "unit"),
        ("WA01", "fresh_water", "cumulative", "t", None, "unit"),
    ),
    "cement": (
        ("EL01", "electricity", "cumulative", "kWh", 0.13, "unit"),
        ("EL02", "electricity", "cumulative", "kWh", 0.09, "unit"),
        ("CO01", "raw_coal", "interval", "t", 0.73, "unit"),
        ("NG01", "natural_gas", "cumulative", "m³", 0.02, "unit"),
        ("DS01", "diesel", "interval", "t", 0.03, "unit"),
        ("WA01", "fresh_water", "cumulative", "t", None, "unit"),
    ),
    "chemicals": (
        ("EL01", "electricity", "cumulative", "kWh", 0.12, "unit"),
        ("EL02", "electricity", "cumulative", "kWh", 0.10, "unit"),
        ("NG01", "natural_gas", "cumulative", "m³", 0.34, "unit"),
        ("CO01", "raw_coal", "interval", "t", 0.24, "unit"),
        ("ST01", "steam", "cumulative", "t", 0.18, "unit"),
        ("DS01", "diesel", "interval", "t", 0.02, "unit"),
        ("WA01", "fresh_water", "cumulative", "t", None, "unit"),
    ),
    "data_centre": (
        ("EL01", "electricity", "cumulative", "kWh", 0.25, "unit"),
        ("EL02", "electricity", "cumulative", "kWh", 0.25, "unit"),
        ("EL03", "electricity", "cumulative", "kWh", 0.247, "unit"),
        ("EL04", "electricity", "cumulative", "kWh", 0.247, "unit"),
        ("HT01", "heat", "cumulative", "GJ", 0.005, "unit"),
        ("DS01", "diesel", "interval", "t", 0.001, "genset_test"),
        ("WA01", "fresh_water", "cumulative", "t", None, "unit"),
    ),
}
#: Hour of the week (Monday 00:00 = 0) of the weekly generator test: Tuesday 10:00–11:00.
GENSET_TEST_HOUR = 24 + 10

_TABLE_NOISE = 0.02  # per-meter hour-of-week texture, ±
_DAY_NOISE = 0.03  # per-unit daily production level, ±
_MINUTE_NOISE = 0.08  # per-meter minute weights, ±
_CUMULATIVE_DECIMALS = 3
_INTERVAL_DECIMALS = 4
_CACHE_MAX = 50_000


@dataclass(frozen=True)
class SimMeter:
    """One simulated meter.

    ``annual_qty`` is the mean consumption per 365-day year in ``uom``; ``start`` the register value at
    :data:`EPOCH_MS` (0 for ``interval`` meters); ``tce_per_uom`` the coefficient used to size it.
    """

    meter_id: str
    energy: str
    kind: Kind
    uom: str
    annual_qty: float
    start: float
    tce_per_uom: float
    profile: Profile = "unit"


@dataclass(frozen=True)
class SimUnit:
    """One simulated unit: its registry record, meters, size (tce/year) and whether it is heavy."""

    info: UnitInfo
    meters: tuple[SimMeter, ...]
    annual_tce: float
    heavy: bool = False

    @property
    def unit_id(self) -> str:
        """The unit's id (``sim-<industry>-<nnn>``)."""
        return self.info.unit_id


class _Curve:
    """The closed-form consumption integral of one meter (see the module docstring)."""

    __slots__ = ("_day_totals", "_key", "_prefix", "_q", "_table", "_unit_key")

    def __init__(self, q: float, table: tuple[float, ...], key: bytes, unit_key: bytes) -> None:
        self._q = q
        self._table = table
        prefix = [0.0]
        for f in table:
            prefix.append(prefix[-1] + f)
        self._prefix = tuple(prefix)
        self._day_totals = tuple(prefix[24 * (d + 1)] - prefix[24 * d] for d in range(7))
        self._key = key
        self._unit_key = unit_key

    def integral(self, t_ms: int, cache: dict[Any, Any]) -> float:
        """Consumption from :data:`EPOCH_MS` to ``t_ms`` in the meter's uom."""
        hour, rest_ms = divmod(t_ms - EPOCH_MS, HOUR_MS)
        week, how = divmod(hour, WEEK_HOURS)
        day, _ = divmod(how, 24)
        factors = self._day_factors(week, cache)
        units = week * self._prefix[WEEK_HOURS]
        for d in range(day):
            units += factors[d] * self._day_totals[d]
        in_day = self._prefix[how] - self._prefix[24 * day]
        if rest_ms:
            in_day += self._table[how] * self._minute_fraction(hour, rest_ms, cache)
        return self._q * (units + factors[day] * in_day)

    def _day_factors(self, week: int, cache: dict[Any, Any]) -> tuple[float, ...]:
        ck = (self._key, "days", week)  # per meter: the weighting uses its own day totals
        hit = cache.get(ck)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        eta = [(b / 127.5 - 1.0) * _DAY_NOISE for b in _noise_bytes(self._unit_key + b"|w%d" % week)[:7]]
        total = self._prefix[WEEK_HOURS]
        mean = sum(e * dt for e, dt in zip(eta, self._day_totals, strict=True)) / total if total else 0.0
        factors = tuple(1.0 + e - mean for e in eta)
        _put(cache, ck, factors)
        return factors

    def _minute_fraction(self, hour: int, rest_ms: int, cache: dict[Any, Any]) -> float:
        """Share of hour ``hour``'s consumption used in its first ``rest_ms`` milliseconds."""
        ck = (self._key, hour)
        prefix: tuple[float, ...] | None = cache.get(ck)
        if prefix is None:
            weights = [
                1.0 + (b / 127.5 - 1.0) * _MINUTE_NOISE for b in _noise_bytes(self._key + b"|h%d" % hour)
            ]
            acc = [0.0]
            for w in weights[:60]:
                acc.append(acc[-1] + w)
            prefix = tuple(a / acc[60] for a in acc)
            _put(cache, ck, prefix)
        minute, in_minute_ms = divmod(rest_ms, MINUTE_MS)
        return prefix[minute] + (prefix[minute + 1] - prefix[minute]) * in_minute_ms / MINUTE_MS


def _noise_bytes(material: bytes) -> bytes:
    """64 pseudo-random bytes that depend only on ``material`` (BLAKE2b)."""
    return hashlib.blake2b(material, digest_size=64).digest()


def _put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value


def _hour_of_week_table(industry: str, profile: Profile, rng: random.Random) -> tuple[float, ...]:
    """168 factors with mean 1 (Monday 00:00 local first)."""
    if profile == "genset_test":
        raw = [0.0] * WEEK_HOURS
        raw[GENSET_TEST_HOUR] = 1.0
    else:
        daily, weekend = _SHAPES[industry]
        raw = [
            daily[h % 24]
            * (weekend if h >= 5 * 24 else 1.0)
            * (1.0 + rng.uniform(-_TABLE_NOISE, _TABLE_NOISE))
            for h in range(WEEK_HOURS)
        ]
    scale = WEEK_HOURS / sum(raw)
    return tuple(f * scale for f in raw)


class Fleet:
    """A deterministic fleet of simulated units (build it with :meth:`generate`)."""

    def __init__(self, units: tuple[SimUnit, ...], seed: int, curves: dict[str, _Curve]) -> None:
        self.units = units
        self.seed = seed
        self._curves = curves
        self._cache: dict[Any, Any] = {}

    @classmethod
    def generate(cls, units: int = 20, seed: int = 2026) -> Fleet:
        """``units`` units cycling through :data:`INDUSTRIES` (ids ``sim-<industry>-<nnn>``).

        Each unit's parameters depend only on (seed, unit_id), so a larger fleet contains the smaller one.
        """
        if units < 1:
            raise ValueError("a fleet needs at least one unit")
        sim_units: list[SimUnit] = []
        curves: dict[str, _Curve] = {}
        for i in range(units):
            industry = INDUSTRIES[i % len(INDUSTRIES)]
            unit_id = f"sim-{industry}-{i // len(INDUSTRIES) + 1:03d}"
            rng = random.Random(f"{seed}|{unit_id}")
            province = rng.choice(_PROVINCES[industry])
            heavy = unit_id in _HEAVY_ANNUAL_TCE
            if heavy:
                annual_tce = _HEAVY_ANNUAL_TCE[unit_id]
            else:
                low, high = _ANNUAL_TCE_RANGE[industry]
                annual_tce = float(round(rng.uniform(low, high), -2))
            info = UnitInfo(
                unit_id=unit_id,
                name=f"{province}仿真{_INDUSTRY_CN[industry]}{unit_id[-3:]}",
                region=province,
                grid_region=GRID_REGION_OF[province],
                industry=industry,
            )
            specs = _METERS[industry]
            jitter = [rng.uniform(0.9, 1.1) if share is not None else 0.0 for *_, share, _p in specs]
            norm = sum((share or 0.0) * j for (*_, share, _p), j in zip(specs, jitter, strict=True))
            meters: list[SimMeter] = []
            for (code, energy, kind, uom, share, profile), j in zip(specs, jitter, strict=True):
                meter_id = f"{unit_id}.{code}"
                coef = tce_per_uom(energy)
                if share is None:
                    annual_qty = annual_tce * _WATER_T_PER_TCE[industry]
                else:
                    annual_qty = annual_tce * share * j / norm / coef
                start = round(annual_qty * rng.uniform(0.05, 2.0), _CUMULATIVE_DECIMALS)
                meter = SimMeter(
                    meter_id=meter_id,
                    energy=energy,
                    kind=kind,
                    uom=uom,
                    annual_qty=annual_qty,
                    start=start if kind == "cumulative" else 0.0,
                    tce_per_uom=coef,
                    profile=profile,
                )
                meters.append(meter)
                curves[meter_id] = _Curve(
                    q=annual_qty / YEAR_HOURS,
                    table=_hour_of_week_table(industry, profile, rng),
                    key=f"{seed}|{meter_id}".encode(),
                    unit_key=f"{seed}|{unit_id}".encode(),
                )
            sim_units.append(SimUnit(info=info, meters=tuple(meters), annual_tce=annual_tce, heavy=heavy))
        return cls(tuple(sim_units), seed, curves)

    def unit(self, unit_id: str) -> SimUnit:
        """The unit with this id (KeyError if there is none)."""
        for u in self.units:
            if u.unit_id == unit_id:
                return u
        raise KeyError(unit_id)

    def registry_records(self) -> list[UnitInfo]:
        """One registry record per unit, in fleet order."""
        return [u.info for u in self.units]

    def quantity(self, meter: SimMeter, start_ms: int, end_ms: int) -> float:
        """Exact (unrounded) consumption of ``meter`` in (start_ms, end_ms], in its uom."""
        _check_time(start_ms)
        _check_time(end_ms)
        curve = self._curves[meter.meter_id]
        return curve.integral(end_ms, self._cache) - curve.integral(start_ms, self._cache)

    def scan(self, unit: SimUnit, t_ms: int, seq: int, previous_t_ms: int | None) -> dict[str, Any]:
        """One readings message for ``unit`` at ``t_ms`` (epoch ms), in the schema's JSON format.

        Cumulative registers report their value at ``t_ms``; ``interval`` meters the quantity used in
        (previous_t_ms, t_ms] (the last :data:`DEFAULT_INTERVAL_MS` when ``previous_t_ms`` is None).
        """
        _check_time(t_ms)
        prev = t_ms - DEFAULT_INTERVAL_MS if previous_t_ms is None else previous_t_ms
        if prev >= t_ms:
            raise ValueError(f"previous scan {prev} is not before this scan {t_ms}")
        readings: list[dict[str, Any]] = []
        # An interval reading that covers more than a quarter hour (the day-by-day history) says
        # where its period starts, so the worker spreads it over its intervals instead of counting
        # a day's coal in the quarter hour before midnight.
        period = {"start": prev} if t_ms - prev > 15 * MINUTE_MS else {}
        for m in unit.meters:
            curve = self._curves[m.meter_id]
            now = curve.integral(t_ms, self._cache)
            if m.kind == "cumulative":
                value = round(m.start + now, _CUMULATIVE_DECIMALS)
            else:
                before = curve.integral(max(prev, EPOCH_MS), self._cache)
                value = max(
                    0.0,
                    round(
                        round(now, _INTERVAL_DECIMALS) - round(before, _INTERVAL_DECIMALS), _INTERVAL_DECIMALS
                    ),
                )
            readings.append(
                {
                    "meter_id": m.meter_id,
                    "energy": m.energy,
                    "kind": m.kind,
                    "value": value,
                    "uom": m.uom,
                    "ts": t_ms,
                    **(period if m.kind == "interval" else {}),
                }
            )
        return {"v": 1, "unit_id": unit.unit_id, "source": SOURCE, "seq": seq, "readings": readings}


def _check_time(t_ms: int) -> None:
    if not EPOCH_MS <= t_ms < TS_MAX_MS:
        raise ValueError(f"simulated time {t_ms} ms is outside {EPOCH_MS}..{TS_MAX_MS} (2020-01-06..2100)")


def registry_for(fleet: Fleet, path: Path | None = None) -> list[UnitInfo]:
    """The registry records the simulator publishes, one per unit in fleet order.

    Each unit's record comes from the registry file or directory ``path`` (default:
    :data:`SAMPLE_REGISTRY` when it exists and the fleet has the seed it was made for,
    :data:`SAMPLE_SEED`) when the file describes it, else it is the fleet's bare
    record (:meth:`Fleet.registry_records`). A unit the file leaves without an ``hourly_tce_ceiling``
    keeps the fleet's. Raises ``energymon.registry_files.RegistryError`` for an invalid file, and
    for an explicitly named one that does not exist.
    """
    bare = fleet.registry_records()
    if path is None:
        if fleet.seed != SAMPLE_SEED or not SAMPLE_REGISTRY.is_file():
            return bare
        path = SAMPLE_REGISTRY
    from energymon.registry_files import load_registry  # needs PyYAML; only when there is a file

    described = {info.unit_id: info for info in load_registry(path)}
    records: list[UnitInfo] = []
    for own in bare:
        info = described.get(own.unit_id)
        if info is None:
            records.append(own)
            continue
        if info.hourly_tce_ceiling is None and own.hourly_tce_ceiling is not None:
            info = info.model_copy(update={"hourly_tce_ceiling": own.hourly_tce_ceiling})
        records.append(info)
    found = sum(1 for own in bare if own.unit_id in described)
    log.info("simulator: registry of %d of %d units from %s", found, len(bare), path)
    return records


def run_simulator(
    settings: Settings,
    stop: threading.Event,
    publisher: Publisher | None = None,
    on_sent: Callable[[int, int], None] | None = None,
) -> None:
    """Publish the simulated fleet until ``stop`` is set.

    1. Registry records to `registry` (key unit_id): :func:`registry_for` with
       ``settings.simulator.registry_file`` (the sample registry of the default fleet when unset).
    2. With ``settings.simulator.history == "year"``: this year's history, one scan per unit per day at
       00:00 China time (:func:`history_times`: from 1 January up to the last midnight before the
       minute backfill starts), oldest first, as fast as the broker acknowledges them. The first
       day's ``interval`` quantities cover the minute before it, every later scan's the whole day
       since the previous one.
    3. ``settings.simulator.backfill_s`` seconds of history: one scan per unit per minute, timestamps on
       whole minutes, oldest first, as fast as the broker acknowledges them. Its first scan's
       ``interval`` quantities cover the time since the last daily scan (the last minute without
       one), so the phases neither skip nor count twice anything from 1 January on.
    4. Every ``scan_interval_s`` real seconds one scan of every unit at the current time.

    ``seq`` is the scan time in epoch ms: it increases per unit, and a re-sent scan (a restart's
    history or backfill overlapping history already sent) carries the same seq as the original.
    ``on_sent(messages, readings)`` is called after each round (daily, minute or live). A publisher
    passed in is flushed but not closed; one created here (from ``settings.kafka``) is closed.
    """
    fleet = Fleet.generate(units=settings.simulator.units, seed=settings.simulator.seed)
    registry = registry_for(fleet, settings.simulator.registry_file)  # a bad file fails before sending
    if publisher is None:
        with Publisher(settings.kafka, client_id="energymon-simulator") as own:
            _run(fleet, registry, settings, own, stop, on_sent)  # leaving the block flushes and closes
    else:
        _run(fleet, registry, settings, publisher, stop, on_sent)


def _run(
    fleet: Fleet,
    registry: list[UnitInfo],
    settings: Settings,
    pub: Publisher,
    stop: threading.Event,
    on_sent: Callable[[int, int], None] | None,
) -> None:
    """Registry, backfill, live rounds (see :func:`run_simulator`); flushes before returning."""
    sim = settings.simulator
    for info in registry:
        pub.send(REGISTRY, info.unit_id, info.to_json())
        if settings.kafka.tansu:
            pub.flush()  # one record per batch: tansu's ListOffsets is wrong for multi-record batches
    pub.flush()
    log.info("simulator: %d registry records sent", len(registry))

    last_t: int | None = None
    now = _now_ms()
    end_min = now // MINUTE_MS * MINUTE_MS
    minutes = sim.backfill_s // 60
    first_minute = end_min - (minutes - 1) * MINUTE_MS if minutes else now
    if sim.history == "year":
        last_t = _send_history(fleet, pub, history_times(now, first_minute), stop, on_sent)

    for k in range(minutes - 1, -1, -1):
        if stop.is_set():
            break
        t = end_min - k * MINUTE_MS
        _round(fleet, pub, t, last_t, stop, on_sent)
        last_t = t
        if k % 60 == 0:
            pub.flush()
    else:
        if minutes:
            log.info("simulator: backfilled %d minutes of %d units", minutes, len(fleet.units))

    next_tick = time.monotonic()
    while not stop.is_set():
        t = _now_ms()
        if last_t is not None and t <= last_t:
            t = last_t + 1  # the wall clock went back: registers must not
        _round(fleet, pub, t, last_t, stop, on_sent)
        last_t = t
        pub.flush()
        next_tick += sim.scan_interval_s
        delay = next_tick - time.monotonic()
        if delay < 0:  # behind schedule: do not try to catch up with a burst
            next_tick = time.monotonic()
            delay = 0.0
        stop.wait(delay)
    pub.flush()


def history_times(now_ms: int, first_scan_ms: int) -> list[int]:
    """The daily scan times of ``history="year"``: every 00:00 China time from 1 January of the year
    (China time) of ``now_ms`` up to the last one before ``first_scan_ms`` (the first scan that
    follows), oldest first. None before :data:`EPOCH_MS`; empty when that range is."""
    year = datetime.fromtimestamp(now_ms / 1000, CST).year
    jan1 = max(int(datetime(year, 1, 1, tzinfo=CST).timestamp() * 1000), EPOCH_MS)
    last = first_scan_ms - 1 - (first_scan_ms - 1 - EPOCH_MS) % DAY_MS  # EPOCH_MS is a midnight
    return list(range(jan1, last + 1, DAY_MS))


def _send_history(
    fleet: Fleet,
    pub: Publisher,
    times: list[int],
    stop: threading.Event,
    on_sent: Callable[[int, int], None] | None,
) -> int | None:
    """Send one round per daily scan time in ``times`` (flushing every :data:`HISTORY_LOG_DAYS`
    days); returns the time of the last round sent (None if none was)."""
    last_t: int | None = None
    started = time.monotonic()
    for i, t in enumerate(times, 1):
        if stop.is_set():
            return last_t
        _round(fleet, pub, t, last_t, stop, on_sent)
        last_t = t
        if i % HISTORY_LOG_DAYS == 0 or i == len(times):
            pub.flush()
            day = datetime.fromtimestamp(t / 1000, CST).date()
            log.info("simulator: history: %s … %d/%d days", day.isoformat(), i, len(times))
    if times and not stop.is_set():
        log.info(
            "simulator: history of %d days of %d units sent in %.1f s",
            len(times),
            len(fleet.units),
            time.monotonic() - started,
        )
    return last_t


def _round(
    fleet: Fleet,
    pub: Publisher,
    t_ms: int,
    previous_t_ms: int | None,
    stop: threading.Event,
    on_sent: Callable[[int, int], None] | None,
) -> None:
    """Scan and send every unit once at ``t_ms``."""
    messages = readings = 0
    for i, unit in enumerate(fleet.units):
        if i % 256 == 255 and stop.is_set():
            break
        msg = fleet.scan(unit, t_ms, seq=t_ms, previous_t_ms=previous_t_ms)
        pub.send_readings(msg)
        messages += 1
        readings += len(msg["readings"])
    if on_sent is not None:
        on_sent(messages, readings)


def _now_ms() -> int:
    return math.floor(time.time() * 1000)
