"""Turning what a meter reports into the quantity consumed, reading by reading.

Three kinds of reading (ARCHITECTURE.md):

* ``cumulative``: a register. A reading closes the *segment* since the meter's previous reading;
  its quantity is the register's increase. The first reading only sets the baseline.
* ``interval``: the quantity used in the period ending at ``ts``, taken as it is.
* ``rate``: an instantaneous rate per hour; the segment's quantity is the trapezoid between this
  reading and the previous one.

The rules for registers that do not simply go up, each with its name:

* **roll-over** (``rollover``): the register fell and the meter has a ``register_max``; the wrap
  ``register_max − last + value`` is taken when it is plausible (within the meter's ``max_per_hour``,
  or, without one, less than :data:`ROLLOVER_FRACTION` of the register's span).
* **meter swap** (``meter_swap``): an explicit event carrying the old meter's final register
  (``old_value``) and the new meter's first one (``value``): the segment up to the swap counts
  ``old_value − last`` and the new register becomes the baseline.
* **detected swap** (``meter_swap_detected``): a drop that is not a roll-over, or a jump that the
  next reading confirms, starts a new baseline; no negative and no giant delta is ever counted.
* **implausible rate** (rejected ``implausible_rate``): more than ``max_per_hour`` over the segment.
* **late readings** land between the two readings around them: the segment they fall into is
  replaced by two, so the interval they belong to is corrected and the total is unchanged.
* **duplicates**: a reading seen before gives back exactly the segment it gave the first time
  (``repeat``), so a replay or a redelivery counts nothing twice.

Every refusal raises :class:`CounterRejected` naming its rule. Quantities are in the energy's
canonical uom (rates: per hour); times are epoch ms.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from energy.intervals import HOUR_MS

#: Without ``max_per_hour``, a fall is a roll-over only if the wrap is under this share of the register.
ROLLOVER_FRACTION = 0.1
#: The most readings remembered per meter, whatever the lateness window.
MAX_REMEMBERED = 2000
#: How many appends between two prunings of a meter's series (keeps the hot path O(1)).
_PRUNE_EVERY = 32

# Entry flags: how the segment ending at an entry came about.
NORMAL, BASELINE, ROLLOVER = "", "baseline", "rollover"
SWAP, SWAP_DETECTED = "meter_swap", "meter_swap_detected"
# Entry layout in MeterState.series: [value, qty, prev_ts or None, flag, estimated]
_VALUE, _QTY, _PREV, _FLAG, _EST = range(5)


class CounterRejected(ValueError):
    """A reading the counter rules refuse; ``rule`` names the rule."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True)
class CounterLimits:
    """What a meter can do, in canonical uom: ``register_max`` (roll-over point of a register) and
    ``max_per_hour`` (largest plausible consumption per hour, or largest plausible rate)."""

    register_max: float | None = None
    max_per_hour: float | None = None


NO_LIMITS = CounterLimits()


@dataclass(frozen=True)
class Segment:
    """A quantity ``qty`` used in (``start_ms``, ``end_ms``]; ``start_ms`` None means "the period
    ending at end_ms" (interval readings), attributed wholly to the interval of ``end_ms``."""

    start_ms: int | None
    end_ms: int
    qty: float
    estimated: bool = False


@dataclass
class CounterUpdate:
    """What one reading changes: ``added`` segments to write (new or revised), ``removed`` segments
    they replace, and ``event`` when a counter rule other than the plain delta applied.
    ``repeat`` means the reading was seen before: ``added`` is what it gave then, to write again,
    and nothing is to be counted."""

    added: list[Segment] = field(default_factory=list)
    removed: list[Segment] = field(default_factory=list)
    event: str | None = None
    repeat: bool = False
    baseline: bool = False


@dataclass
class MeterState:
    """What is remembered of one meter: its kind and energy, its readings inside the lateness
    window (``series``: ts → [value, qty, prev_ts, flag, estimated]), the newest reading, and a
    rejected jump that the next reading may confirm as a swap (``suspect``: [ts, value])."""

    kind: str
    energy: str
    series: dict[int, list[Any]] = field(default_factory=dict)
    last_ts_ms: int | None = None
    suspect: list[float] | None = None
    appends: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data for the table store (JSON keys must be strings)."""
        return {
            "kind": self.kind,
            "energy": self.energy,
            "series": {str(ts): v for ts, v in self.series.items()},
            "last_ts_ms": self.last_ts_ms,
            "suspect": self.suspect,
            "appends": self.appends,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MeterState:
        """Inverse of :meth:`to_json`."""
        return cls(
            kind=doc["kind"],
            energy=doc["energy"],
            series={int(ts): v for ts, v in doc["series"].items()},
            last_ts_ms=doc["last_ts_ms"],
            suspect=doc["suspect"],
            appends=doc["appends"],
        )

    def segment_at(self, ts_ms: int) -> Segment | None:
        """The segment ending at the remembered reading ``ts_ms`` (None for a baseline)."""
        entry = self.series[ts_ms]
        if entry[_FLAG] in (BASELINE, SWAP_DETECTED) and entry[_PREV] is None:
            return None
        return Segment(entry[_PREV], ts_ms, entry[_QTY], bool(entry[_EST]))


def counter_update(
    state: MeterState,
    kind: str,
    ts_ms: int,
    value: float,
    *,
    limits: CounterLimits = NO_LIMITS,
    retention_ms: int = 2 * HOUR_MS,
    estimated: bool = False,
    swap_old_value: float | None = None,
    start_ms: int | None = None,
) -> CounterUpdate:
    """Apply one reading (``value`` in canonical uom, per hour for rates) to ``state``.

    ``retention_ms`` is how far behind its newest reading a meter remembers readings (the lateness
    window); ``swap_old_value`` marks an explicit meter swap and carries the old meter's final
    register. Raises :class:`CounterRejected`.
    """
    if kind != state.kind:
        raise CounterRejected("kind_changed", f"meter reported {kind!r} but is {state.kind!r}")
    seen = state.series.get(ts_ms)
    if seen is not None:
        if seen[_VALUE] != value:
            raise CounterRejected(
                "duplicate_conflict", f"a reading at the same time had value {seen[_VALUE]}, this one {value}"
            )
        segment = state.segment_at(ts_ms)
        return CounterUpdate(added=[segment] if segment else [], repeat=True, baseline=segment is None)
    if value < 0:
        raise CounterRejected("negative_quantity", f"{kind} value {value} is negative")
    if swap_old_value is not None and kind != "cumulative":
        raise CounterRejected("bad_swap", "a meter swap applies to cumulative registers only")

    if kind == "interval":
        update = CounterUpdate(added=[Segment(start_ms, ts_ms, value, estimated)])
        _remember(state, ts_ms, [value, value, start_ms, NORMAL, estimated], retention_ms)
        return update
    if state.last_ts_ms is None:
        _remember(state, ts_ms, [value, 0.0, None, BASELINE, estimated], retention_ms)
        return CounterUpdate(baseline=True)
    if ts_ms < state.last_ts_ms:
        return _late(state, kind, ts_ms, value, limits, estimated, swap_old_value)
    return _forward(state, kind, ts_ms, value, limits, retention_ms, estimated, swap_old_value)


def plain_update(
    state: MeterState,
    kind: str,
    ts_ms: int,
    value: float,
    limits: CounterLimits,
    retention_ms: int,
    estimated: bool,
    start_ms: int | None = None,
) -> tuple[int | None, float] | None:
    """:func:`counter_update` for the reading nearly every reading is, without building its result.

    That reading is new (no reading of the meter at ``ts_ms``), of the meter's kind, not a meter
    swap, not negative, and counted by the plain rule: an ``interval`` quantity as it is; a
    ``cumulative`` register risen plausibly since the newest reading; a plausible ``rate`` after the
    newest reading. Then the reading is remembered exactly as counter_update remembers it and
    ``(start_ms, qty)`` is returned: counter_update would have returned the one segment
    ``Segment(start_ms, ts_ms, qty, estimated)``. For any other reading (first of a meter, late,
    repeated, rolled over, swapped, implausible, of another kind …) nothing is changed and None is
    returned: call counter_update, which applies every rule. Rules are decided in counter_update;
    this is a shortcut that tests/unit/test_fast_path.py holds to it.
    """
    if kind != state.kind or ts_ms in state.series or not value >= 0:
        return None
    if kind == "interval":
        _remember(state, ts_ms, [value, value, start_ms, NORMAL, estimated], retention_ms)
        return start_ms, value
    last_ts = state.last_ts_ms
    if last_ts is None or ts_ms < last_ts:
        return None
    last = state.series[last_ts][_VALUE]
    hours = (ts_ms - last_ts) / HOUR_MS
    if kind == "rate":
        if limits.max_per_hour is not None and value > limits.max_per_hour:
            return None
        qty = (last + value) / 2.0 * hours
    else:
        qty = value - last
        if not (qty >= 0 and (limits.max_per_hour is None or _plausible(limits, qty, hours))):
            return None
    # remember it as the newest reading, as _append does (_remember written out: this runs per reading)
    state.suspect = None
    state.series[ts_ms] = [value, qty, last_ts, NORMAL, estimated]
    state.last_ts_ms = ts_ms
    state.appends += 1
    if state.appends % _PRUNE_EVERY == 0 or len(state.series) > MAX_REMEMBERED:
        _prune(state, ts_ms - retention_ms)
    return last_ts, qty


def _forward(
    state: MeterState,
    kind: str,
    ts_ms: int,
    value: float,
    limits: CounterLimits,
    retention_ms: int,
    estimated: bool,
    swap_old_value: float | None,
) -> CounterUpdate:
    assert state.last_ts_ms is not None
    last_ts = state.last_ts_ms
    last = state.series[last_ts][_VALUE]
    hours = (ts_ms - last_ts) / HOUR_MS
    if kind == "rate":
        _check_rate(limits, value)
        qty = (last + value) / 2.0 * hours
        return _append(state, ts_ms, [value, qty, last_ts, NORMAL, estimated], retention_ms)

    if swap_old_value is not None:
        if swap_old_value < last:
            raise CounterRejected(
                "bad_swap", f"old meter's final register {swap_old_value} is below its last reading {last}"
            )
        update = _append(state, ts_ms, [value, swap_old_value - last, last_ts, SWAP, estimated], retention_ms)
        update.event = SWAP
        return update

    delta = value - last
    if delta >= 0:
        if _plausible(limits, delta, hours):
            return _append(state, ts_ms, [value, delta, last_ts, NORMAL, estimated], retention_ms)
        confirmed = _confirmed_swap(state, ts_ms, value, limits, retention_ms)
        if confirmed is not None:
            return confirmed
        state.suspect = [ts_ms, value]
        raise CounterRejected(
            "implausible_rate",
            f"register rose by {delta:g} in {hours * 60:.1f} min, over {limits.max_per_hour:g} per hour; "
            "kept as a candidate new baseline in case the meter was replaced",
        )

    if limits.register_max is not None and value < limits.register_max:
        wrap = limits.register_max - last + value
        near_top = wrap <= ROLLOVER_FRACTION * limits.register_max
        if near_top if limits.max_per_hour is None else _plausible(limits, wrap, hours):
            update = _append(state, ts_ms, [value, wrap, last_ts, ROLLOVER, estimated], retention_ms)
            update.event = ROLLOVER
            return update
    state.suspect = None
    _remember(state, ts_ms, [value, 0.0, None, SWAP_DETECTED, estimated], retention_ms)
    return CounterUpdate(baseline=True, event=SWAP_DETECTED)


def _confirmed_swap(
    state: MeterState, ts_ms: int, value: float, limits: CounterLimits, retention_ms: int
) -> CounterUpdate | None:
    """A jump is a replaced meter when this reading follows plausibly from the rejected one before."""
    if state.suspect is None:
        return None
    s_ts, s_value = int(state.suspect[0]), state.suspect[1]
    if (
        not s_ts < ts_ms
        or value < s_value
        or not _plausible(limits, value - s_value, (ts_ms - s_ts) / HOUR_MS)
    ):
        return None
    state.series[s_ts] = [s_value, 0.0, None, SWAP_DETECTED, False]
    update = _append(state, ts_ms, [value, value - s_value, s_ts, NORMAL, False], retention_ms)
    update.event = SWAP_DETECTED
    return update


def _late(
    state: MeterState,
    kind: str,
    ts_ms: int,
    value: float,
    limits: CounterLimits,
    estimated: bool,
    swap_old_value: float | None,
) -> CounterUpdate:
    """A reading older than the newest: split the segment it falls into."""
    if swap_old_value is not None:
        raise CounterRejected("out_of_order", "a meter swap must be newer than the meter's last reading")
    times = sorted(state.series)
    i = bisect.bisect_left(times, ts_ms)
    if i == 0:
        raise CounterRejected("out_of_order", "reading is older than every reading the meter remembers")
    before, after = times[i - 1], times[i]
    after_entry = state.series[after]
    if after_entry[_PREV] != before or after_entry[_FLAG] != NORMAL:
        raise CounterRejected(
            "out_of_order", "late reading falls across a baseline, roll-over or swap of the register"
        )
    v_before, v_after = state.series[before][_VALUE], after_entry[_VALUE]
    if kind == "cumulative":
        if not v_before <= value <= v_after:
            raise CounterRejected(
                "out_of_order_value",
                f"late register {value} is not between its neighbours {v_before} and {v_after}",
            )
        first, second = value - v_before, v_after - value
    else:
        _check_rate(limits, value)
        first = (v_before + value) / 2.0 * (ts_ms - before) / HOUR_MS
        second = (value + v_after) / 2.0 * (after - ts_ms) / HOUR_MS
    removed = Segment(before, after, after_entry[_QTY], bool(after_entry[_EST]))
    state.series[ts_ms] = [value, first, before, NORMAL, estimated]
    after_entry[_QTY], after_entry[_PREV] = second, ts_ms
    return CounterUpdate(
        added=[
            Segment(before, ts_ms, first, estimated),
            Segment(ts_ms, after, second, bool(after_entry[_EST])),
        ],
        removed=[removed],
    )


def _append(state: MeterState, ts_ms: int, entry: list[Any], retention_ms: int) -> CounterUpdate:
    state.suspect = None
    _remember(state, ts_ms, entry, retention_ms)
    state.last_ts_ms = ts_ms
    return CounterUpdate(added=[Segment(entry[_PREV], ts_ms, entry[_QTY], bool(entry[_EST]))])


def _remember(state: MeterState, ts_ms: int, entry: list[Any], retention_ms: int) -> None:
    state.series[ts_ms] = entry
    last = state.last_ts_ms
    if last is None or ts_ms > last:
        state.last_ts_ms = last = ts_ms
    state.appends += 1
    if state.appends % _PRUNE_EVERY == 0 or len(state.series) > MAX_REMEMBERED:
        _prune(state, last - retention_ms)


def _prune(state: MeterState, cutoff_ms: int) -> None:
    """Forget readings older than ``cutoff_ms``, keeping the newest of them (the neighbour of any
    reading that may still arrive inside the window) and at most :data:`MAX_REMEMBERED`."""
    times = sorted(state.series)
    keep_from = max(bisect.bisect_left(times, cutoff_ms) - 1, len(times) - MAX_REMEMBERED, 0)
    for ts in times[:keep_from]:
        del state.series[ts]


def _plausible(limits: CounterLimits, qty: float, hours: float) -> bool:
    return limits.max_per_hour is None or qty <= limits.max_per_hour * hours * (1 + 1e-9)


def _check_rate(limits: CounterLimits, rate: float) -> None:
    if limits.max_per_hour is not None and rate > limits.max_per_hour:
        raise CounterRejected(
            "implausible_rate", f"rate {rate:g} per hour is above the meter's maximum {limits.max_per_hour:g}"
        )
