"""``energy.counters.Series``, the columns a meter's remembered readings are kept in, against a plain
dict of entries (what ``MeterState.series`` was): same readings after any puts and prunes, and the
same after a round trip through bytes."""

from __future__ import annotations

import base64
from bisect import bisect_left
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energy.counters import (
    BASELINE,
    HOUR_MS,
    NORMAL,
    ROLLOVER,
    SWAP,
    SWAP_DETECTED,
    Entry,
    MeterState,
    Series,
    counter_update,
)

T0 = 1_767_542_400_000
MIN = 60_000
DAY = 24 * 60 * MIN
FLAGS = [NORMAL, NORMAL, NORMAL, BASELINE, ROLLOVER, SWAP, SWAP_DETECTED]


def rule(kind: str, before: tuple[int, Entry] | None, ts: int, value: float) -> tuple[float, int | None]:
    """The segment the meter's rule gives a reading after ``before`` (what Series need not store)."""
    if before is None:
        return value, None
    b_ts, (b_value, *_rest) = before
    if kind == "cumulative":
        return value - b_value, b_ts
    if kind == "rate":
        return (b_value + value) / 2.0 * ((ts - b_ts) / HOUR_MS), b_ts
    return value, b_ts


def prune(model: dict[int, Entry], cutoff: int, keep: int) -> None:
    times = sorted(model)
    keep_from = max(bisect_left(times, cutoff) - 1, len(times) - keep, 0)
    for ts in times[:keep_from]:
        del model[ts]


operation = st.one_of(
    st.tuples(
        st.just("put"),
        st.sampled_from([MIN, MIN, MIN, 7 * MIN, -3 * MIN, -30 * MIN, 0, 30 * DAY, -40 * DAY]),  # time step
        st.floats(min_value=0, max_value=1e6, allow_nan=False),  # value
        st.sampled_from(["rule", "rule", "rule", "other", "none", "zero"]),  # its segment
        st.sampled_from(FLAGS),
        st.booleans(),  # estimated
    ),
    st.tuples(
        st.just("prune"), st.sampled_from([0, 2 * MIN, 30 * MIN, 2 * HOUR_MS]), st.sampled_from([3, 50])
    ),
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["cumulative", "rate", "interval"]), ops=st.lists(operation, max_size=60))
def test_series_remembers_what_a_dict_of_entries_remembers(kind: str, ops: list[tuple[Any, ...]]) -> None:
    series = Series(kind)
    model: dict[int, Entry] = {}
    ts = T0
    for op in ops:
        if op[0] == "prune":
            _, behind, keep = op
            if model:
                cutoff = max(model) - behind
                series.prune(cutoff, keep)
                prune(model, cutoff, keep)
        else:
            _, step, value, segment, flag, estimated = op
            ts += step
            earlier = [t for t in model if t < ts]
            before = (max(earlier), model[max(earlier)]) if earlier else None
            qty, prev = rule(kind, before, ts, value)
            if segment == "other":
                qty, prev = qty + 1.5, (prev or ts) - 1
            elif segment == "none":
                prev = None
            elif segment == "zero":
                qty, prev = 0.0, None
            series.put(ts, value, qty, prev, flag, estimated)
            model[ts] = (value, qty, prev, flag, estimated)
        assert series.entries() == sorted(model.items())
        assert len(series) == len(model)
        for t, entry in model.items():
            assert series.get(t) == entry and t in series
        again = Series.from_bytes(kind, series.to_bytes())
        assert again == series and again.entries() == series.entries()
        if model:
            assert series.last_ts() == max(model) and series.last_value() == model[max(model)][0]


def test_a_steady_register_keeps_13_bytes_a_reading() -> None:
    state = MeterState(kind="cumulative", energy="electricity")
    for i in range(600):
        counter_update(state, "cumulative", T0 + i * MIN, 1000.0 + 2.5 * i)
    raw = state.series.to_bytes()
    # 2 h at one reading a minute (pruned every 32): 4-byte time, 8-byte value, a flag byte; no segments
    assert len(raw) == 18 + 13 * (len(state.series) + 1)  # 18-byte header, the readings and the anchor
    assert state.series._extra is None and state.series._ts.typecode == "i"
    copy = MeterState.from_json(state.to_json())
    assert copy == state and copy.series.get(T0 + 599 * MIN) == (
        1000.0 + 2.5 * 599,
        2.5,
        T0 + 598 * MIN,
        NORMAL,
        False,
    )


def test_the_earlier_json_form_is_read() -> None:
    doc = {
        "kind": "cumulative",
        "energy": "electricity",
        "series": {
            str(T0): [1000.0, 0.0, None, BASELINE, False],
            str(T0 + MIN): [1010.0, 10.0, T0, NORMAL, True],
        },
        "last_ts_ms": T0 + MIN,
        "suspect": None,
        "appends": 2,
    }
    state = MeterState.from_json(doc)
    assert state.last_ts_ms == T0 + MIN and state.series.entries() == [
        (T0, (1000.0, 0.0, None, BASELINE, False)),
        (T0 + MIN, (1010.0, 10.0, T0, NORMAL, True)),
    ]


@pytest.mark.parametrize("cut", [1, 10, 30])
def test_bytes_that_do_not_fit_their_header_are_refused(cut: int) -> None:
    series = Series("cumulative")
    series.put(T0, 1.0, 0.0, None, BASELINE, False)
    series.put(T0 + MIN, 2.0, 5.0, T0 - 1, NORMAL, False)  # a kept segment
    raw = series.to_bytes()
    with pytest.raises(ValueError):
        Series.from_bytes("cumulative", raw[:-cut])
    with pytest.raises(ValueError):
        Series.from_bytes("cumulative", raw + b"x")
    with pytest.raises(ValueError):
        MeterState.from_json(
            {"kind": "cumulative", "energy": "e", "series": "not base64!", "suspect": None, "appends": 0}
        )
    assert base64.b64decode(MeterState("cumulative", "e", series).to_json()["series"]) == raw
