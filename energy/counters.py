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

import base64
import struct
import sys
from array import array
from bisect import bisect_left
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
#: A remembered reading: (value, qty, prev_ts or None, flag, estimated).
Entry = tuple[float, float, int | None, str, bool]


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


# An entry's flag byte in Series: the flag's code (bits 0-2, the index in _FLAGS) and these bits.
_FLAGS = (NORMAL, BASELINE, ROLLOVER, SWAP, SWAP_DETECTED)
_CODE = {flag: code for code, flag in enumerate(_FLAGS)}
_CODE_MASK = 7
_EST = 8  # the reading was estimated
_NO_PREV = 16  # its segment has no start (a baseline, or an interval reading without a start)
_EXTRA = 32  # qty and prev_ts are kept in Series._extra: they do not follow from the entry before
_ANCHOR = 64  # a forgotten reading, kept only as the entry before the oldest remembered one
_NO_TS = -(2**63)  # prev_ts None in the serialised _extra
_INT32 = 2**31
_FORMAT = 1
_HEADER = struct.Struct("<BBIqI")  # format, bytes per time, entries, base (ms), extra entries
_EXTRA_ROW = struct.Struct("<qdq")  # ts, qty, prev_ts


def _little(column: array[Any]) -> bytes:
    """The column's bytes, little-endian whatever the machine."""
    if sys.byteorder == "little":
        return column.tobytes()
    swapped = array(column.typecode, column)
    swapped.byteswap()
    return swapped.tobytes()


def _column(typecode: str, raw: bytes) -> array[Any]:
    column = array(typecode)
    column.frombytes(raw)
    if sys.byteorder != "little":
        column.byteswap()
    return column


class Series:
    """The readings a meter remembers, oldest first, as three columns: time (ms after ``_base``,
    32-bit while the span allows), value, and a flag byte (:data:`_FLAGS` code, estimated, …).

    A reading's segment — its quantity and its start — is not stored when it follows from the entry
    before by the meter's own rule (register: value − value before; rate: the trapezoid, as
    :func:`_forward` computes it; interval: the value, starting at the entry before; a baseline: 0
    with no start), which is what nearly every reading is; any other segment is kept in ``_extra``
    (ts → (qty, prev_ts)), exactly. When old readings are forgotten (:meth:`prune`), the newest
    forgotten one stays as an invisible *anchor* so that the oldest remembered one keeps its segment.
    About 13 bytes a reading (a dict of lists took ~200), and the columns are the serialised form
    (:meth:`to_bytes`: little-endian, no pickle)."""

    __slots__ = ("_base", "_extra", "_flag", "_kind", "_ts", "_value")

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._base = 0
        self._ts: array[int] = array("i")
        self._value: array[float] = array("d")
        self._flag: array[int] = array("B")
        self._extra: dict[int, tuple[float, int | None]] | None = None

    # --- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        """The readings remembered (the anchor is not one)."""
        n = len(self._flag)
        return n - 1 if n and self._flag[0] & _ANCHOR else n

    def __contains__(self, ts_ms: object) -> bool:
        return isinstance(ts_ms, int) and self._index(ts_ms) is not None

    def last_ts(self) -> int | None:
        """Time (epoch ms) of the newest reading remembered."""
        return self._ts[-1] + self._base if self._flag else None

    def oldest_ts(self) -> int | None:
        """Time (epoch ms) of the oldest reading remembered (not the anchor): no segment that a late
        reading can still split starts before it."""
        flags = self._flag
        first = 1 if flags and flags[0] & _ANCHOR else 0
        return self._ts[first] + self._base if len(flags) > first else None

    def last_value(self) -> float:
        """Value of the newest reading remembered (the series must not be empty)."""
        return self._value[-1]

    def get(self, ts_ms: int) -> Entry | None:
        """The reading remembered at ``ts_ms``, or None."""
        i = self._index(ts_ms)
        return None if i is None else self._entry(i)

    def around(self, ts_ms: int) -> tuple[int, Entry, int, Entry] | None:
        """The remembered readings just before and just after ``ts_ms`` (which must not be one, and
        must be older than the newest): ``(before_ts, before, after_ts, after)``; None when no
        remembered reading is older."""
        i = bisect_left(self._ts, ts_ms - self._base)
        first = 1 if self._flag and self._flag[0] & _ANCHOR else 0
        if i <= first:
            return None
        base = self._base
        return self._ts[i - 1] + base, self._entry(i - 1), self._ts[i] + base, self._entry(i)

    def entries(self) -> list[tuple[int, Entry]]:
        """Every remembered reading, oldest first, with its time."""
        first = 1 if self._flag and self._flag[0] & _ANCHOR else 0
        return [(self._ts[i] + self._base, self._entry(i)) for i in range(first, len(self._flag))]

    def _index(self, ts_ms: int) -> int | None:
        offset = ts_ms - self._base
        ts = self._ts
        i = bisect_left(ts, offset)
        if i < len(ts) and ts[i] == offset and not self._flag[i] & _ANCHOR:
            return i
        return None

    def _entry(self, i: int) -> Entry:
        flag = self._flag[i]
        value = self._value[i]
        code = flag & _CODE_MASK
        qty: float
        prev: int | None
        if flag & _EXTRA:
            assert self._extra is not None
            qty, prev = self._extra[self._ts[i] + self._base]
        elif flag & _NO_PREV:
            qty, prev = (0.0 if code else value), None
        else:
            qty, prev = self._derived(i, value)
        return value, qty, prev, _FLAGS[code], bool(flag & _EST)

    def _derived(self, i: int, value: float) -> tuple[float, int]:
        """The segment of a reading of ``value`` at index ``i`` that starts at the entry before."""
        prev = self._ts[i - 1] + self._base
        kind = self._kind
        if kind == "cumulative":
            return value - self._value[i - 1], prev
        if kind == "rate":
            return (self._value[i - 1] + value) / 2.0 * ((self._ts[i] + self._base - prev) / HOUR_MS), prev
        return value, prev

    # --- changing --------------------------------------------------------------------------------

    def put(self, ts_ms: int, value: float, qty: float, prev: int | None, flag: str, estimated: bool) -> None:
        """Remember the reading at ``ts_ms`` (replacing one remembered there)."""
        ts = self._ts
        if not ts:
            self._base = ts_ms
        offset = ts_ms - self._base
        n = len(ts)
        code = _CODE[flag] | (_EST if estimated else 0)
        if not n or offset > ts[-1]:  # the newest reading (nearly always)
            self._insert(n, offset, value)
            self._set(n, ts_ms, value, qty, prev, code)
            return
        i = bisect_left(ts, offset)
        if i == 0 and n and offset < ts[0] and self._flag[0] & _ANCHOR:
            self._drop_anchor()
            n -= 1
        replace = i < n and ts[i] == offset
        following = i + 1 if replace else i
        kept: Entry | None = None
        if following < n and not self._flag[following] & (_EXTRA | _NO_PREV):
            kept = self._entry(following)  # it follows from the entry changed here: keep it as it is
        if replace:
            if self._flag[i] & _EXTRA:
                self._forget_extra(ts_ms)
            self._value[i] = value
        else:
            self._insert(i, offset, value)
        self._set(i, ts_ms, value, qty, prev, code)
        if kept is not None:
            v, q, p, f, e = kept
            self._set(i + 1, self._ts[i + 1] + self._base, v, q, p, _CODE[f] | (_EST if e else 0))

    def append_following(self, ts_ms: int, value: float, estimated: bool) -> None:
        """Remember a reading newer than every one remembered whose segment starts at the newest one
        and is the one its rule gives (:meth:`_derived`): the hot path of a register or a rate."""
        try:
            self._ts.append(ts_ms - self._base)
        except OverflowError:
            self._widen()
            self._ts.append(ts_ms - self._base)
        self._value.append(value)
        self._flag.append(_EST if estimated else 0)

    def prune(self, cutoff_ms: int, keep_at_most: int) -> None:
        """Forget readings older than ``cutoff_ms``, keeping the newest of them (the neighbour of any
        reading that may still arrive inside the window) and at most ``keep_at_most``."""
        flags = self._flag
        first = 1 if flags and flags[0] & _ANCHOR else 0
        remembered = len(flags) - first
        older = bisect_left(self._ts, cutoff_ms - self._base, first) - first
        keep_from = max(older - 1, remembered - keep_at_most, 0)
        if keep_from == 0:
            return
        anchor = first + keep_from - 1  # the newest forgotten reading
        if self._extra:
            base = self._base
            for i in range(anchor + 1):
                if flags[i] & _EXTRA:
                    self._forget_extra(self._ts[i] + base)
        del self._ts[:anchor], self._value[:anchor], self._flag[:anchor]
        flags[0] = _ANCHOR
        if self._ts.typecode == "q" or self._ts[0] >= _INT32 // 2:
            self._rebase()

    def _set(self, i: int, ts_ms: int, value: float, qty: float, prev: int | None, code: int) -> None:
        """Set the flag of entry ``i`` (its value in place) and keep its segment where it must be kept."""
        if prev is None:
            derived = qty == (0.0 if code & _CODE_MASK else value) and (
                code & _CODE_MASK or self._kind == "interval"
            )
            bits = _NO_PREV
        else:
            derived = i > 0 and (qty, prev) == self._derived(i, value)
            bits = 0
        if not derived:
            bits |= _EXTRA
            if self._extra is None:
                self._extra = {}
            self._extra[ts_ms] = (qty, prev)
        self._flag[i] = code | bits

    def _forget_extra(self, ts_ms: int) -> None:
        assert self._extra is not None
        del self._extra[ts_ms]
        if not self._extra:
            self._extra = None

    def _insert(self, i: int, offset: int, value: float) -> None:
        try:
            self._ts.insert(i, offset)
        except OverflowError:
            self._widen()
            self._ts.insert(i, offset)
        self._value.insert(i, value)
        self._flag.insert(i, 0)

    def _drop_anchor(self) -> None:
        """Forget the anchor (a reading goes before it): the entry after it keeps its segment."""
        flags = self._flag
        if len(flags) > 1 and not flags[1] & (_EXTRA | _NO_PREV):
            _value, qty, prev, _flag, _est = self._entry(1)
            if self._extra is None:
                self._extra = {}
            self._extra[self._ts[1] + self._base] = (qty, prev)
            flags[1] |= _EXTRA
        del self._ts[0], self._value[0], flags[0]

    def _widen(self) -> None:
        """Keep times as 64-bit offsets (a span of more than 24 days, or a time before the base)."""
        self._ts = array("q", self._ts)

    def _rebase(self) -> None:
        """Count times from the oldest entry again (32-bit offsets when the span allows)."""
        shift = self._ts[0]
        span = self._ts[-1] - shift
        self._ts = array("i" if span < _INT32 else "q", [t - shift for t in self._ts])
        self._base += shift

    # --- storing ---------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The series as bytes: a header, the three columns as they are, and the kept segments."""
        extra = self._extra or {}
        rows = b"".join(
            _EXTRA_ROW.pack(ts, qty, _NO_TS if prev is None else prev) for ts, (qty, prev) in extra.items()
        )
        header = _HEADER.pack(_FORMAT, self._ts.itemsize, len(self._ts), self._base, len(extra))
        return b"".join((header, _little(self._ts), _little(self._value), self._flag.tobytes(), rows))

    @classmethod
    def from_bytes(cls, kind: str, raw: bytes) -> Series:
        """Inverse of :meth:`to_bytes` (raises ValueError on bytes it did not make)."""
        try:
            version, width, n, base, n_extra = _HEADER.unpack_from(raw)
            if version != _FORMAT or width not in (4, 8):
                raise ValueError(f"series format {version}/{width} is not {_FORMAT}")
            at = _HEADER.size
            series = cls(kind)
            series._base = base
            series._ts = _column("i" if width == 4 else "q", raw[at : at + width * n])
            at += width * n
            series._value = _column("d", raw[at : at + 8 * n])
            at += 8 * n
            series._flag = array("B", raw[at : at + n])
            at += n
            if n_extra:
                series._extra = {}
                for ts, qty, prev in _EXTRA_ROW.iter_unpack(raw[at : at + _EXTRA_ROW.size * n_extra]):
                    series._extra[ts] = (qty, None if prev == _NO_TS else prev)
                at += _EXTRA_ROW.size * n_extra
        except struct.error as exc:
            raise ValueError(f"series bytes cut short: {exc}") from exc
        if at != len(raw) or len(series._ts) != n or len(series._value) != n or len(series._flag) != n:
            raise ValueError("series bytes do not match their header")
        return series

    @classmethod
    def from_entries(cls, kind: str, entries: dict[int, Any]) -> Series:
        """A series of ``ts → [value, qty, prev_ts, flag, estimated]`` (the earlier JSON form)."""
        series = cls(kind)
        for ts in sorted(entries):
            value, qty, prev, flag, estimated = entries[ts]
            series.put(
                int(ts), float(value), float(qty), None if prev is None else int(prev), flag, bool(estimated)
            )
        return series

    def _rows(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        if self._flag and self._flag[0] & _ANCHOR:
            rows.append(("anchor", self._ts[0] + self._base, self._value[0]))
        rows.extend((ts, *entry) for ts, entry in self.entries())
        return rows

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Series):
            return NotImplemented
        return self._kind == other._kind and self._rows() == other._rows()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Series({self._kind!r}, {self._rows()!r})"


@dataclass(slots=True)
class MeterState:
    """What is remembered of one meter: its kind and energy, its readings inside the lateness
    window (``series``, :class:`Series`), and a rejected jump that the next reading may confirm as a
    swap (``suspect``: [ts, value]). ``appends`` counts the readings remembered (prunes come every
    :data:`_PRUNE_EVERY`)."""

    kind: str
    energy: str
    series: Series = field(default=None)  # type: ignore[assignment]
    suspect: list[float] | None = None
    appends: int = 0

    def __post_init__(self) -> None:
        self.kind = sys.intern(self.kind)
        self.energy = sys.intern(self.energy)
        if self.series is None:
            self.series = Series(self.kind)

    @property
    def last_ts_ms(self) -> int | None:
        """Time (epoch ms) of the newest reading remembered."""
        return self.series.last_ts()

    def to_json(self) -> dict[str, Any]:
        """Plain data for the table store: the series as base64 of :meth:`Series.to_bytes`."""
        return {
            "kind": self.kind,
            "energy": self.energy,
            "series": base64.b64encode(self.series.to_bytes()).decode("ascii"),
            "suspect": self.suspect,
            "appends": self.appends,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MeterState:
        """Inverse of :meth:`to_json` (also reads the earlier form, whose series is a JSON object)."""
        kind = doc["kind"]
        raw = doc["series"]
        if isinstance(raw, dict):
            series = Series.from_entries(kind, {int(ts): v for ts, v in raw.items()})
        else:
            series = Series.from_bytes(kind, base64.b64decode(raw, validate=True))
        return cls(
            kind=kind, energy=doc["energy"], series=series, suspect=doc["suspect"], appends=doc["appends"]
        )

    def segment_at(self, ts_ms: int) -> Segment | None:
        """The segment ending at the remembered reading ``ts_ms`` (None for a baseline)."""
        entry = self.series.get(ts_ms)
        assert entry is not None
        return _segment(ts_ms, entry)


def _segment(ts_ms: int, entry: Entry) -> Segment | None:
    """The segment ending at the reading ``entry`` at ``ts_ms`` (None for a baseline)."""
    _value, qty, prev, flag, estimated = entry
    if flag in (BASELINE, SWAP_DETECTED) and prev is None:
        return None
    return Segment(prev, ts_ms, qty, estimated)


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
        if seen[0] != value:
            raise CounterRejected(
                "duplicate_conflict", f"a reading at the same time had value {seen[0]}, this one {value}"
            )
        segment = _segment(ts_ms, seen)
        return CounterUpdate(added=[segment] if segment else [], repeat=True, baseline=segment is None)
    if value < 0:
        raise CounterRejected("negative_quantity", f"{kind} value {value} is negative")
    if swap_old_value is not None and kind != "cumulative":
        raise CounterRejected("bad_swap", "a meter swap applies to cumulative registers only")

    if kind == "interval":
        update = CounterUpdate(added=[Segment(start_ms, ts_ms, value, estimated)])
        _remember(state, ts_ms, (value, value, start_ms, NORMAL, estimated), retention_ms)
        return update
    last_ts = state.series.last_ts()
    if last_ts is None:
        _remember(state, ts_ms, (value, 0.0, None, BASELINE, estimated), retention_ms)
        return CounterUpdate(baseline=True)
    if ts_ms < last_ts:
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
    if kind != state.kind or not value >= 0:
        return None
    series = state.series
    if kind == "interval":
        last_ts = series.last_ts()
        if last_ts is not None and ts_ms <= last_ts and ts_ms in series:
            return None
        _remember(state, ts_ms, (value, value, start_ms, NORMAL, estimated), retention_ms)
        return start_ms, value
    values = series._value
    if not values:
        return None
    last_ts = series._ts[-1] + series._base
    if ts_ms <= last_ts:
        return None
    last = values[-1]
    hours = (ts_ms - last_ts) / HOUR_MS
    if kind == "rate":
        if limits.max_per_hour is not None and value > limits.max_per_hour:
            return None
        qty = (last + value) / 2.0 * hours
    else:
        qty = value - last
        if not (qty >= 0 and (limits.max_per_hour is None or _plausible(limits, qty, hours))):
            return None
    # remember it as the newest reading, as _append does (_remember written out: this runs per reading;
    # the segment is the one Series derives for a reading after the newest, so only its value is kept)
    state.suspect = None
    series.append_following(ts_ms, value, estimated)
    state.appends += 1
    if state.appends % _PRUNE_EVERY == 0 or (len(values) > MAX_REMEMBERED and len(series) > MAX_REMEMBERED):
        series.prune(ts_ms - retention_ms, MAX_REMEMBERED)
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
    last_ts = state.series.last_ts()
    assert last_ts is not None
    last = state.series.last_value()
    hours = (ts_ms - last_ts) / HOUR_MS
    if kind == "rate":
        _check_rate(limits, value)
        qty = (last + value) / 2.0 * hours
        return _append(state, ts_ms, (value, qty, last_ts, NORMAL, estimated), retention_ms)

    if swap_old_value is not None:
        if swap_old_value < last:
            raise CounterRejected(
                "bad_swap", f"old meter's final register {swap_old_value} is below its last reading {last}"
            )
        update = _append(state, ts_ms, (value, swap_old_value - last, last_ts, SWAP, estimated), retention_ms)
        update.event = SWAP
        return update

    delta = value - last
    if delta >= 0:
        if _plausible(limits, delta, hours):
            return _append(state, ts_ms, (value, delta, last_ts, NORMAL, estimated), retention_ms)
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
            update = _append(state, ts_ms, (value, wrap, last_ts, ROLLOVER, estimated), retention_ms)
            update.event = ROLLOVER
            return update
    state.suspect = None
    _remember(state, ts_ms, (value, 0.0, None, SWAP_DETECTED, estimated), retention_ms)
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
    state.series.put(s_ts, s_value, 0.0, None, SWAP_DETECTED, False)
    update = _append(state, ts_ms, (value, value - s_value, s_ts, NORMAL, False), retention_ms)
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
    series = state.series
    around = series.around(ts_ms)
    if around is None:
        raise CounterRejected("out_of_order", "reading is older than every reading the meter remembers")
    before, before_entry, after, after_entry = around
    v_after, after_qty, after_prev, after_flag, after_est = after_entry
    if after_prev != before or after_flag != NORMAL:
        raise CounterRejected(
            "out_of_order", "late reading falls across a baseline, roll-over or swap of the register"
        )
    v_before = before_entry[0]
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
    removed = Segment(before, after, after_qty, after_est)
    series.put(ts_ms, value, first, before, NORMAL, estimated)
    series.put(after, v_after, second, ts_ms, after_flag, after_est)
    return CounterUpdate(
        added=[
            Segment(before, ts_ms, first, estimated),
            Segment(ts_ms, after, second, after_est),
        ],
        removed=[removed],
    )


def _append(state: MeterState, ts_ms: int, entry: Entry, retention_ms: int) -> CounterUpdate:
    state.suspect = None
    _remember(state, ts_ms, entry, retention_ms)
    _value, qty, prev, _flag, estimated = entry
    return CounterUpdate(added=[Segment(prev, ts_ms, qty, estimated)])


def _remember(state: MeterState, ts_ms: int, entry: Entry, retention_ms: int) -> None:
    series = state.series
    series.put(ts_ms, *entry)
    state.appends += 1
    if state.appends % _PRUNE_EVERY == 0 or len(series) > MAX_REMEMBERED:
        last = series.last_ts()
        assert last is not None
        series.prune(last - retention_ms, MAX_REMEMBERED)


def _plausible(limits: CounterLimits, qty: float, hours: float) -> bool:
    return limits.max_per_hour is None or qty <= limits.max_per_hour * hours * (1 + 1e-9)


def _check_rate(limits: CounterLimits, rate: float) -> None:
    if limits.max_per_hour is not None and rate > limits.max_per_hour:
        raise CounterRejected(
            "implausible_rate", f"rate {rate:g} per hour is above the meter's maximum {limits.max_per_hour:g}"
        )
