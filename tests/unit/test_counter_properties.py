"""Properties of the counter rules: the total of a register series does not depend on how it is
split into messages, on duplicates, or on reordering within the lateness window."""

from __future__ import annotations

import random
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from energy.accounting import Accountant
from energy.intervals import INTERVAL_MS
from energy.ledger import LedgerPolicy, UnitLedger
from energy.schema import ParsedMessage, Reading

T0 = 1_740_967_200_000  # 2025-03-03 10:00 China time
MIN = 60_000
ACCOUNTANT = Accountant()
# The window covers the longest generated series (30 steps × 40 min), so any order is "within" it.
POLICY = LedgerPolicy(lateness_ms=24 * 60 * MIN, hourly_tce_ceiling=1e9)


def series(steps: list[tuple[int, float]]) -> list[Reading]:
    """A rising electricity register: (minutes since the previous reading, kWh used) per step."""
    t, value, out = T0, 1000.0, []
    out.append(Reading.model_validate({"meter_id": "E1", "energy": "electricity", "kind": "cumulative",
                                       "value": value, "uom": "kWh", "ts": t}))
    for minutes, used in steps:
        t += minutes * MIN
        value += used
        out.append(Reading.model_validate({"meter_id": "E1", "energy": "electricity", "kind": "cumulative",
                                           "value": value, "uom": "kWh", "ts": t}))
    return out


def run(messages: list[list[Reading]]) -> tuple[float, dict[int, float], dict[int, float]]:
    """Apply messages; return the kWh total, tce per interval, and the final energy points by
    interval start (what InfluxDB holds once the open interval is written as well: a later point
    with the same time overwrites an earlier one)."""
    ledger = UnitLedger("U1")
    points: dict[int, float] = {}
    for readings in messages:
        result = ledger.apply(ParsedMessage("U1", "t", 0, readings=readings), ACCOUNTANT, POLICY)
        assert not result.rejections, result.rejections
        for p in result.energy:
            points[p.start_ms] = p.qty
    for p in ledger.open_points():
        points[p.start_ms] = p.qty
    intervals = {start: v[0] for start, v in ledger.intervals.items()}
    return sum(points.values()), intervals, points


steps_strategy = st.lists(
    st.tuples(st.integers(min_value=1, max_value=40), st.floats(min_value=0, max_value=500, allow_nan=False)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(steps=steps_strategy, cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=10))
def test_total_is_independent_of_how_readings_are_split_into_messages(
    steps: list[tuple[int, float]], cuts: list[int]
) -> None:
    readings = series(steps)
    expected = sum(used for _, used in steps)
    one, intervals_one, points_one = run([readings])
    bounds = sorted({c % len(readings) for c in cuts} | {0, len(readings)})
    split = [readings[a:b] for a, b in pairwise(bounds) if b > a]
    many, intervals_many, points_many = run(split)
    assert abs(one - expected) <= 1e-9 * max(1.0, expected)
    assert abs(many - expected) <= 1e-9 * max(1.0, expected)
    assert points_one == points_many
    assert intervals_one.keys() == intervals_many.keys()
    for k, v in intervals_one.items():
        assert abs(v - intervals_many[k]) <= 1e-12 * max(1.0, abs(v))


@settings(max_examples=80, deadline=None)
@given(steps=steps_strategy, dup_seed=st.integers(min_value=0, max_value=10_000))
def test_duplicates_change_nothing(steps: list[tuple[int, float]], dup_seed: int) -> None:
    readings = series(steps)
    rng = random.Random(dup_seed)
    with_dups = list(readings)
    for r in rng.sample(readings, k=min(len(readings), 1 + dup_seed % 5)):
        with_dups.insert(rng.randrange(with_dups.index(r) + 1, len(with_dups) + 1), r)
    assert run([[r] for r in with_dups]) == run([[r] for r in readings])


@settings(max_examples=80, deadline=None)
@given(steps=steps_strategy, order_seed=st.integers(min_value=0, max_value=10_000))
def test_reordering_within_the_lateness_window_changes_no_total_and_no_interval(
    steps: list[tuple[int, float]], order_seed: int
) -> None:
    readings = series(steps)
    shuffled = readings[:1] + random.Random(order_seed).sample(readings[1:], k=len(readings) - 1)
    total_in_order, intervals_in_order, points_in_order = run([[r] for r in readings])
    total, intervals, points = run([[r] for r in shuffled])
    assert abs(total - total_in_order) <= 1e-9 * max(1.0, total_in_order)
    assert points.keys() == points_in_order.keys()
    for ts, q in points_in_order.items():
        assert abs(points[ts] - q) <= 1e-9 * max(1.0, q), ts
    for start, tce in intervals_in_order.items():
        assert abs(intervals.get(start, 0.0) - tce) <= 1e-9 * max(1e-3, tce), start
    assert all(start % INTERVAL_MS == 0 for start in intervals)
