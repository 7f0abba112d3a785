"""A unit's running totals by period: the current interval, day, month, quarter and year, a rolling
24 hours and a rolling 30 days, and enough history for "the same period last year" (同比).

:class:`UnitPeriods` is fed every energy piece of a unit (tce and tCO₂, signed: a late correction
withdraws a piece with the opposite sign) and every output report (quantity per product, output
value in 万元), and answers totals per period. It is plain data: :meth:`UnitPeriods.to_json` gives a
JSON-able dict for the table store.

**Exact under withdrawal.** Totals are kept as integers in millionths (:data:`SCALE`: 1 g of
standard coal, 1 g of CO₂, 0.01 yuan of output value, 10⁻⁶ of a product's uom), so ``add(x)`` then
``add(-x)`` leaves every total exactly as it was, and the order in which pieces arrive never changes
a total. Rounding each piece to 10⁻⁶ t is far below any meter's accuracy.

**Time.** A piece's ``ts_ms`` is the *end* of the period it covers (the reading time, as in
``EnergyPoint.ts_ms``); it belongs to the 15-minute interval it closes (``interval_start(ts_ms)``),
so a piece or an output report at 00:00 counts on the day, month and year that just closed
(the ledger's rule, ``energy.intervals``). The ``at_ts_ms`` of a question is read the same way:
"the data up to and including ``at_ts_ms``"; the periods asked about are those of the interval
ending at ``at_ts_ms`` (at 00:00 on 1 January, the year just closed). A period's totals hold
everything added for it, so pass the newest data time as ``at_ts_ms``.

**Buckets and memory bound.** Pieces go into interval, hour, day, month and year buckets; quarter
and year come from months and years, the rolling 24 h from the 24 hour buckets ending with the
current hour, the rolling 30 days from the 30 day buckets ending with the current day. Buckets older
than a horizon counted back from the newest interval seen are dropped: :data:`KEEP_INTERVALS` (8,
2 h), :data:`KEEP_HOURS` (48), :data:`KEEP_DAYS` (410: a year back plus a 30-day window and a
margin), :data:`KEEP_MONTHS` (27: two full years back) and :data:`KEEP_YEARS` (11: a five-year
plan's base year and the plan before). A unit thus holds at most 504 buckets of two integers per
key (a key is an energy counted, an energy excluded with its kind, a product's output, a product's
energy): memory is O(504 × keys), about 100 bytes of JSON per day bucket for a unit with three
energies and two products, ≈ 50 kB in all; in memory each bucket is an array of 64-bit integers
(≈ 110 kB for a full year of three energies and a product's output, ~2× less than lists of ints).
A piece older than a horizon goes only into the coarser buckets still kept (so a late withdrawal
never leaves a stray negative bucket behind).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, MutableSequence, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Literal

from energy.intervals import CST_OFFSET_MS, HOUR_MS, INTERVAL_MS, interval_start, local_day
from energy.registry import UnitInfo

#: The periods :meth:`UnitPeriods.totals` knows.
Period = Literal["interval", "day", "month", "quarter", "year", "rolling_24h", "rolling_30d"]
PERIODS: tuple[Period, ...] = ("interval", "day", "month", "quarter", "year", "rolling_24h", "rolling_30d")

#: Totals are integers in units of 1/SCALE (10⁻⁶ t, 10⁻⁶ 万元, 10⁻⁶ of a product's uom).
SCALE = 1_000_000
DAY_MS = 24 * HOUR_MS
KEEP_INTERVALS = 8
KEEP_HOURS = 48
KEEP_DAYS = 410
KEEP_MONTHS = 27
KEEP_YEARS = 11
_EPOCH = date(1970, 1, 1)
_FORMAT = 1


# --- local calendar arithmetic (China Standard Time, fixed UTC+08:00; see energy.intervals) ---------


def local_midnight_ms(day: date) -> int:
    """Epoch ms of 00:00 Asia/Shanghai on the local calendar day ``day``."""
    return (day - _EPOCH).days * DAY_MS - CST_OFFSET_MS


def day_index(ts_ms: int) -> int:
    """Local days since 1970-01-01 of the instant ``ts_ms`` (the key of a day bucket)."""
    return (ts_ms + CST_OFFSET_MS) // DAY_MS


def month_index(day: date) -> int:
    """``year × 12 + month − 1`` (the key of a month bucket)."""
    return day.year * 12 + day.month - 1


def next_month(day: date) -> date:
    """The 1st of the month after ``day``'s month."""
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def reference_day(at_ts_ms: int) -> date:
    """The local day of the interval ending at ``at_ts_ms``: the day the data up to ``at_ts_ms`` is in
    (at 00:00 the day that just closed)."""
    return local_day(interval_start(at_ts_ms))


def same_day_last_year(day: date) -> date | None:
    """``day`` one calendar year earlier, or None for 29 February."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return None


def _fixed(x: float) -> int:
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x!r}")
    return round(x * SCALE)


#: A figure (tce, tCO₂, …) in the millionths the totals are kept in (raises ValueError if not finite).
scaled = _fixed


def energy_key(energy: str, excluded: str | None = None) -> str:
    """The totals key of an energy counted (``excluded`` None) or kept apart (feedstock, renewable)."""
    return f"e:{energy}" if excluded is None else f"x:{excluded}:{energy}"


def output_key(product_id: str | None) -> str:
    """The totals key of a product's output quantity and value (None: output value alone)."""
    return f"p:{product_id or ''}"


def product_key(product_id: str) -> str:
    """The totals key of the energy attributed to a product."""
    return f"m:{product_id}"


@dataclass(frozen=True)
class Totals:
    """A unit's totals over one period.

    ``tce`` and ``co2_t`` count against dual control (tce, tCO₂); ``by_energy`` splits ``tce`` by
    energy code. Energy a meter marks ``excluded`` (原料用能 ``feedstock``, 新增可再生能源 ``renewable``)
    is kept apart: ``excluded_tce`` / ``excluded_co2_t`` with ``excluded_by_energy`` and
    ``excluded_by_kind`` (tce), not in ``tce`` nor ``co2_t``. ``output`` is the output quantity per
    product (the product's uom), ``output_value_10k_yuan`` the output value (万元). ``product_tce`` /
    ``product_co2_t`` are the energy attributed to a product by its meters
    (:meth:`UnitPeriods.add_product_energy`).
    """

    tce: float = 0.0
    co2_t: float = 0.0
    by_energy: dict[str, float] = field(default_factory=dict)
    excluded_tce: float = 0.0
    excluded_co2_t: float = 0.0
    excluded_by_energy: dict[str, float] = field(default_factory=dict)
    excluded_by_kind: dict[str, float] = field(default_factory=dict)
    output_value_10k_yuan: float = 0.0
    output: dict[str, float] = field(default_factory=dict)
    product_tce: dict[str, float] = field(default_factory=dict)
    product_co2_t: dict[str, float] = field(default_factory=dict)


def product_ids_for_meter(info: UnitInfo, meter_id: str) -> tuple[str, ...]:
    """The products of ``info`` whose ``meters`` list ``meter_id``: where a piece of that meter goes
    with :meth:`UnitPeriods.add_product_energy` (main or sub meter alike)."""
    return tuple(p.product_id for p in info.products if meter_id in p.meters)


#: A bucket: the totals of each key (2 integers a key), 64-bit while they fit (``_Bucket`` is a list of
#: Python integers for the one that outgrows them: a total above 9.2 × 10¹² t). 8 bytes a total
#: instead of ~36 in a list.
_Bucket = MutableSequence[int]


def _bucket(values: Iterable[int] = ()) -> _Bucket:
    values = list(values)
    try:
        return array("q", values)
    except OverflowError:
        return values


def _add_to(table: dict[int, _Bucket], k: int, bucket: _Bucket, at: int, x: int) -> _Bucket:
    """``bucket[at] += x`` (``bucket`` is ``table[k]``, long enough); the bucket (a list from now on if
    the total outgrew 64 bits)."""
    try:
        bucket[at] += x
    except OverflowError:
        bucket = table[k] = list(bucket)
        bucket[at] += x
    return bucket


@lru_cache(maxsize=4096)
def _calendar(start: int) -> tuple[int, int, int, int]:
    """The keys of the hour, day, month and year buckets of the interval starting at ``start``
    (cached: the pieces of a unit's batch fall into a few intervals)."""
    day = local_day(start)
    return start - start % HOUR_MS, day_index(start), month_index(day), day.year


def _accumulate(into: list[int], bucket: Sequence[int]) -> None:
    if len(into) < len(bucket):
        into.extend([0] * (len(bucket) - len(into)))
    for i, x in enumerate(bucket):
        into[i] += x


class UnitPeriods:
    """A unit's running totals by period, with history for the same period last year (see the
    module docstring for time, exactness and the memory bound)."""

    __slots__ = ("_dy", "_first", "_hr", "_index", "_iv", "_keys", "_lo", "_mo", "_newest", "_yr")

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._iv: dict[int, _Bucket] = {}  # interval start ms →
        self._hr: dict[int, _Bucket] = {}  # hour start ms →
        self._dy: dict[int, _Bucket] = {}  # day_index →
        self._mo: dict[int, _Bucket] = {}  # month_index →
        self._yr: dict[int, _Bucket] = {}  # year →
        self._first: int | None = None  # start of the earliest interval with data
        self._newest: int | None = None  # start of the newest interval with data
        self._lo: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)  # oldest key kept per table

    # --- input -------------------------------------------------------------------------------

    def add(self, ts_ms: int, energy: str, tce: float, co2_t: float, excluded: str | None = None) -> None:
        """Add one energy piece ending at ``ts_ms`` (epoch ms): ``tce`` (tce) and ``co2_t`` (tCO₂) of
        ``energy``; negative to withdraw a piece. ``excluded`` (``feedstock`` / ``renewable``, the
        meter's ``MeterInfo.excluded``) keeps it out of the dual-control totals. Feed main meters only:
        a sub-meter's energy is already in its main meter's."""
        self._add(ts_ms, energy_key(energy, excluded), _fixed(tce), _fixed(co2_t))

    def add_product_energy(self, ts_ms: int, product_id: str, tce: float, co2_t: float) -> None:
        """Attribute an energy piece ending at ``ts_ms`` (tce, tCO₂; negative to withdraw) to a product
        whose ``ProductInfo.meters`` list the piece's meter (see :func:`product_ids_for_meter`). This
        counts in no unit total; it is only the numerator of the product's energy per unit."""
        self._add(ts_ms, product_key(product_id), _fixed(tce), _fixed(co2_t))

    def add_output(
        self, ts_ms: int, product_id: str | None, quantity: float, value_10k_yuan: float = 0.0
    ) -> None:
        """Add an output report for the period ending at ``ts_ms``: ``quantity`` of ``product_id`` in the
        product's uom (t, m², 重量箱) and its output value ``value_10k_yuan`` (万元, comparable prices);
        negative to withdraw. ``product_id`` None: output value alone (``quantity`` then 0)."""
        self._add(ts_ms, output_key(product_id), _fixed(quantity), _fixed(value_10k_yuan))

    def add_scaled(self, ts_ms: int, key: str, a: int, b: int) -> None:
        """Add pieces already in millionths (:func:`scaled`) under ``key`` (:func:`energy_key`,
        :func:`product_key`): what :meth:`add` does after rounding, for callers that sum many pieces of
        one interval first (the sum of the rounded pieces, so totals stay exact under withdrawal)."""
        self._add(ts_ms, key, a, b)

    def _add(self, ts_ms: int, key: str, a: int, b: int) -> None:
        start = interval_start(ts_ms)
        if self._newest is None or start > self._newest:
            self._advance(start)
        if self._first is None or start < self._first:
            self._first = start
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._keys)
            self._keys.append(key)
        hour, day, month, year = _calendar(start)
        lo_iv, lo_hr, lo_dy, lo_mo, lo_yr = self._lo
        for table, k, lo in (
            (self._iv, start, lo_iv),
            (self._hr, hour, lo_hr),
            (self._dy, day, lo_dy),
            (self._mo, month, lo_mo),
            (self._yr, year, lo_yr),
        ):
            if k < lo:
                continue
            bucket = table.get(k)
            if bucket is None:
                bucket = table[k] = _bucket()
            if len(bucket) < 2 * i + 2:
                bucket.extend([0] * (2 * i + 2 - len(bucket)))
            bucket = _add_to(table, k, bucket, 2 * i, a)
            _add_to(table, k, bucket, 2 * i + 1, b)

    def merge(self, other: UnitPeriods) -> None:
        """Add every total of ``other`` into this one, exactly (integers), as if its pieces had been
        added here: a journal of recent pieces folded into a unit's full history. Buckets older than
        this object's horizons after the merge are dropped, as :meth:`add` would."""
        if other._newest is None:
            return
        if self._newest is None or other._newest > self._newest:
            self._advance(other._newest)
        if other._first is not None and (self._first is None or other._first < self._first):
            self._first = other._first
        mapping = []
        for key in other._keys:
            i = self._index.get(key)
            if i is None:
                i = self._index[key] = len(self._keys)
                self._keys.append(key)
            mapping.append(i)
        for mine, theirs, lo in zip(
            (self._iv, self._hr, self._dy, self._mo, self._yr),
            (other._iv, other._hr, other._dy, other._mo, other._yr),
            self._lo,
            strict=True,
        ):
            for k, bucket in theirs.items():
                if k < lo:
                    continue
                target = mine.get(k)
                if target is None:
                    target = mine[k] = _bucket()
                n = len(bucket)
                for j, i in enumerate(mapping):
                    if 2 * j >= n:
                        break
                    if len(target) < 2 * i + 2:
                        target.extend([0] * (2 * i + 2 - len(target)))
                    target = _add_to(mine, k, target, 2 * i, bucket[2 * j])
                    if 2 * j + 1 < n:
                        target = _add_to(mine, k, target, 2 * i + 1, bucket[2 * j + 1])

    def bucket_count(self) -> int:
        """How many buckets are kept (a measure of the stored size: ~100 bytes of JSON each)."""
        return len(self._iv) + len(self._hr) + len(self._dy) + len(self._mo) + len(self._yr)

    def _advance(self, newest: int) -> None:
        self._newest = newest
        day = local_day(newest)
        lo = (
            newest - (KEEP_INTERVALS - 1) * INTERVAL_MS,
            newest - newest % HOUR_MS - (KEEP_HOURS - 1) * HOUR_MS,
            day_index(newest) - (KEEP_DAYS - 1),
            month_index(day) - (KEEP_MONTHS - 1),
            day.year - (KEEP_YEARS - 1),
        )
        for table, old, new in zip(
            (self._iv, self._hr, self._dy, self._mo, self._yr), self._lo, lo, strict=True
        ):
            if new != old:
                for k in [k for k in table if k < new]:
                    del table[k]
        self._lo = lo

    # --- questions ----------------------------------------------------------------------------

    def totals(self, period: Period, at_ts_ms: int) -> Totals:
        """Totals of the ``period`` containing the data up to ``at_ts_ms`` (epoch ms): the interval ending
        at it, its local day, month, quarter or year, the 24 clock hours ending with its hour, or the
        30 days ending with its day. A period older than the buckets kept reads as empty."""
        ref = interval_start(at_ts_ms)
        if period == "interval":
            return self._make(self._iv.get(ref, ()))
        if period == "day":
            return self._make(self._dy.get(day_index(ref), ()))
        if period == "rolling_24h":
            hour = ref - ref % HOUR_MS
            return self._make(self._sum(self._hr.get(hour - k * HOUR_MS) for k in range(24)))
        if period == "rolling_30d":
            today = day_index(ref)
            return self._make(self._sum(self._dy.get(today - k) for k in range(30)))
        day = local_day(ref)
        if period == "month":
            return self._make(self._mo.get(month_index(day), ()))
        if period == "quarter":
            first = month_index(day) - (day.month - 1) % 3
            return self._make(self._sum(self._mo.get(first + k) for k in range(3)))
        if period == "year":
            return self._make(self._yr.get(day.year, ()))
        raise ValueError(f"period {period!r} is not one of {', '.join(PERIODS)}")

    def same_period_last_year(self, period: Period, at_ts_ms: int) -> Totals | None:
        """The same span one year earlier (同期): last year's period from its start to the same date,
        with that last day counted in the share of today elapsed at ``at_ts_ms`` (so the year to date at
        noon on 14 March compares with 1 January – 13 March plus half of 14 March last year). 29 February
        maps to all of 28 February. ``rolling_30d`` is the 30 days ending on the same date last year.
        None when history does not cover the span (data began later, or the buckets are gone), and for
        ``interval`` and ``rolling_24h`` (no sub-day history is kept a year back)."""
        if period in ("interval", "rolling_24h"):
            return None
        if period not in PERIODS:
            raise ValueError(f"period {period!r} is not one of {', '.join(PERIODS)}")
        today = reference_day(at_ts_ms)
        fraction = (at_ts_ms - local_midnight_ms(today)) / DAY_MS
        end = same_day_last_year(today)
        if end is None:  # 29 February: last year's February is over
            end, fraction = date(today.year - 1, 2, 28), 1.0
        if period == "day":
            start = end
        elif period == "month":
            start = end.replace(day=1)
        elif period == "quarter":
            start = date(end.year, end.month - (end.month - 1) % 3, 1)
        elif period == "year":
            start = date(end.year, 1, 1)
        else:  # rolling_30d
            start = end - timedelta(days=29)
        vector = self._span(start, end, fraction)
        return None if vector is None else self._make(vector)

    def year_to(self, at_ts_ms: int) -> Totals | None:
        """Totals from 1 January of the local year of ``at_ts_ms`` up to ``at_ts_ms``, its last day
        counted in the share of the day elapsed (pro rata, as :meth:`same_period_last_year`): the
        year to date cut at a time before the newest data. None when a bucket needed is gone."""
        today = reference_day(at_ts_ms)
        fraction = (at_ts_ms - local_midnight_ms(today)) / DAY_MS
        vector = self._span(date(today.year, 1, 1), today, fraction, partial=True)
        return None if vector is None else self._make(vector)

    def year_totals(self, year: int) -> Totals | None:
        """Totals of a whole calendar ``year``; None unless the data covers it from 1 January and goes on
        into the next year, and its bucket is still kept."""
        if not self._covers_year(year) or year < self._lo[4]:
            return None
        return self._make(self._yr.get(year, ()))

    def monthly_shares(self, year: int) -> list[float] | None:
        """Each month's share (0..1, summing to 1) of ``year``'s counted tce — pass last year for the
        seasonal schedule (``energy.quota.schedule_share``). None unless the data covers the whole year
        and its months are still kept, or when the year's total is not positive or a month is negative."""
        if not self._covers_year(year) or month_index(date(year, 1, 1)) < self._lo[3]:
            return None
        counted = [i for i, k in enumerate(self._keys) if k.startswith("e:")]
        months = []
        for m in range(12):
            bucket = self._mo.get(year * 12 + m, ())
            months.append(sum(bucket[2 * i] for i in counted if 2 * i < len(bucket)))
        total = sum(months)
        if total <= 0 or min(months) < 0:
            return None
        return [m / total for m in months]

    def first_ts_ms(self) -> int | None:
        """Start (epoch ms) of the earliest interval with data, None before any."""
        return self._first

    def newest_ts_ms(self) -> int | None:
        """Start (epoch ms) of the newest interval with data, None before any."""
        return self._newest

    def _covers_year(self, year: int) -> bool:
        return (
            self._first is not None
            and self._newest is not None
            and self._first <= local_midnight_ms(date(year, 1, 1))
            and self._newest >= local_midnight_ms(date(year + 1, 1, 1))
        )

    def _span(self, start: date, end: date, fraction: float, partial: bool = False) -> list[float] | None:
        """Scaled sum of the days ``start`` … ``end`` − 1 plus ``fraction`` of ``end``; whole months
        from month buckets. None when a bucket needed is gone, or, unless ``partial``, when the data
        began after ``start``."""
        if not partial and (self._first is None or self._first > local_midnight_ms(start)):
            return None
        _, _, lo_dy, lo_mo, _ = self._lo
        acc: list[int] = []
        day = start
        while day < end:
            following = next_month(day)
            if day.day == 1 and following <= end:
                if month_index(day) < lo_mo:
                    return None
                _accumulate(acc, self._mo.get(month_index(day), ()))
                day = following
                continue
            index = day_index(local_midnight_ms(day))
            if index < lo_dy:
                return None
            _accumulate(acc, self._dy.get(index, ()))
            day += timedelta(days=1)
        index = day_index(local_midnight_ms(end))
        if index < lo_dy:
            return None
        last = self._dy.get(index, ())
        out = [float(x) for x in acc] + [0.0] * max(0, len(last) - len(acc))
        for i, x in enumerate(last):
            out[i] += fraction * x
        return out

    @staticmethod
    def _sum(buckets: Iterable[Sequence[int] | None]) -> list[int]:
        acc: list[int] = []
        for bucket in buckets:
            if bucket:
                _accumulate(acc, bucket)
        return acc

    def _make(self, vector: Sequence[float]) -> Totals:
        """Totals from a scaled vector (sums are taken on the integers, divided once)."""
        tce = co2 = xtce = xco2 = value = 0.0
        by_energy: dict[str, float] = {}
        x_energy: dict[str, float] = {}
        x_kind: dict[str, float] = {}
        output: dict[str, float] = {}
        p_tce: dict[str, float] = {}
        p_co2: dict[str, float] = {}
        for i, key in enumerate(self._keys):
            if 2 * i >= len(vector):
                break
            a, b = vector[2 * i], vector[2 * i + 1]
            if not a and not b:
                continue
            kind, _, name = key.partition(":")
            if kind == "e":
                by_energy[name] = a / SCALE
                tce += a
                co2 += b
            elif kind == "x":
                excluded, _, energy = name.partition(":")
                x_energy[energy] = x_energy.get(energy, 0.0) + a
                x_kind[excluded] = x_kind.get(excluded, 0.0) + a
                xtce += a
                xco2 += b
            elif kind == "p":
                if name:
                    output[name] = a / SCALE
                value += b
            elif kind == "m":
                p_tce[name] = a / SCALE
                p_co2[name] = b / SCALE
        return Totals(
            tce=tce / SCALE,
            co2_t=co2 / SCALE,
            by_energy=by_energy,
            excluded_tce=xtce / SCALE,
            excluded_co2_t=xco2 / SCALE,
            excluded_by_energy={k: v / SCALE for k, v in x_energy.items()},
            excluded_by_kind={k: v / SCALE for k, v in x_kind.items()},
            output_value_10k_yuan=value / SCALE,
            output=output,
            product_tce=p_tce,
            product_co2_t=p_co2,
        )

    # --- table store --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able data for the table store: the keys once, then each bucket as a list of
        integers (millionths) in key order, trailing zeros dropped, empty buckets left out."""

        def table(buckets: dict[int, _Bucket]) -> dict[str, list[int]]:
            out: dict[str, list[int]] = {}
            for k in sorted(buckets):
                bucket = buckets[k]
                n = len(bucket)
                while n and not bucket[n - 1]:
                    n -= 1
                if n:
                    out[str(k)] = list(bucket[:n])
            return out

        return {
            "v": _FORMAT,
            "keys": list(self._keys),
            "first": self._first,
            "newest": self._newest,
            "i": table(self._iv),
            "h": table(self._hr),
            "d": table(self._dy),
            "m": table(self._mo),
            "y": table(self._yr),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> UnitPeriods:
        """Inverse of :meth:`to_json` (raises ValueError on another format)."""
        if doc.get("v") != _FORMAT:
            raise ValueError(f"unit periods format {doc.get('v')!r} is not {_FORMAT}")
        periods = cls()
        periods._keys = [str(k) for k in doc["keys"]]
        periods._index = {k: i for i, k in enumerate(periods._keys)}
        for name, target in (
            ("i", periods._iv),
            ("h", periods._hr),
            ("d", periods._dy),
            ("m", periods._mo),
            ("y", periods._yr),
        ):
            for k, bucket in doc[name].items():
                target[int(k)] = _bucket(int(x) for x in bucket)
        periods._first = None if doc["first"] is None else int(doc["first"])
        if doc["newest"] is not None:
            periods._advance(int(doc["newest"]))
        return periods
