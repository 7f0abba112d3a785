"""Counter rules: baselines, repeats, roll-over, swaps, plausibility, late readings, rates."""

import pytest

from energy.counters import (
    MAX_REMEMBERED,
    CounterLimits,
    CounterRejected,
    MeterState,
    Segment,
    counter_update,
)

MIN = 60_000
HOUR = 60 * MIN


def meter(kind: str = "cumulative") -> MeterState:
    return MeterState(kind=kind, energy="electricity")


def qty(update) -> float:  # type: ignore[no-untyped-def]
    return sum(s.qty for s in update.added) - sum(s.qty for s in update.removed)


def test_first_cumulative_reading_only_sets_the_baseline() -> None:
    m = meter()
    first = counter_update(m, "cumulative", 0, 1000.0)
    assert first.baseline and not first.added
    assert counter_update(m, "cumulative", MIN, 1012.5).added == [Segment(0, MIN, 12.5)]


def test_a_repeated_reading_gives_back_the_same_segment_and_counts_nothing() -> None:
    m = meter()
    counter_update(m, "cumulative", 0, 1000.0)
    counter_update(m, "cumulative", MIN, 1010.0)
    counter_update(m, "cumulative", 2 * MIN, 1030.0)
    again = counter_update(m, "cumulative", MIN, 1010.0)
    assert again.repeat and again.added == [Segment(0, MIN, 10.0)] and not again.removed
    assert counter_update(m, "cumulative", 0, 1000.0).baseline  # the baseline repeats as a baseline
    assert counter_update(m, "cumulative", 3 * MIN, 1031.0).added == [Segment(2 * MIN, 3 * MIN, 1.0)]


def test_a_repeat_with_another_value_is_a_conflict() -> None:
    m = meter()
    counter_update(m, "cumulative", 0, 1000.0)
    with pytest.raises(CounterRejected) as info:
        counter_update(m, "cumulative", 0, 999.0)
    assert info.value.rule == "duplicate_conflict"


def test_roll_over_at_the_register_maximum() -> None:
    m = meter()
    limits = CounterLimits(register_max=100_000.0)
    counter_update(m, "cumulative", 0, 99_990.0, limits=limits)
    update = counter_update(m, "cumulative", MIN, 15.0, limits=limits)
    assert update.event == "rollover" and update.added == [Segment(0, MIN, 25.0)]
    assert counter_update(m, "cumulative", 2 * MIN, 20.0, limits=limits).added[0].qty == 5.0


def test_a_drop_that_is_not_a_roll_over_is_a_detected_meter_swap() -> None:
    m = meter()
    limits = CounterLimits(register_max=100_000.0)
    counter_update(m, "cumulative", 0, 50_000.0, limits=limits)
    update = counter_update(m, "cumulative", MIN, 12.0, limits=limits)  # wrap would be 50,012: no
    assert update.event == "meter_swap_detected" and update.baseline and not update.added
    assert counter_update(m, "cumulative", 2 * MIN, 20.0, limits=limits).added[0].qty == 8.0
    # Without a register maximum, any drop is a swap: never a negative delta.
    m2 = meter()
    counter_update(m2, "cumulative", 0, 500.0)
    assert counter_update(m2, "cumulative", MIN, 3.0).event == "meter_swap_detected"


def test_roll_over_plausibility_uses_the_meters_maximum_rate_when_known() -> None:
    limits = CounterLimits(register_max=1_000.0, max_per_hour=600.0)  # ≤ 10 per minute
    m = meter()
    counter_update(m, "cumulative", 0, 995.0, limits=limits)
    assert counter_update(m, "cumulative", MIN, 4.0, limits=limits).event == "rollover"  # +9
    m = meter()
    counter_update(m, "cumulative", 0, 900.0, limits=limits)
    assert counter_update(m, "cumulative", MIN, 4.0, limits=limits).event == "meter_swap_detected"  # +104


def test_explicit_meter_swap_counts_the_old_meter_to_its_end() -> None:
    m = meter()
    counter_update(m, "cumulative", 0, 7_000.0)
    update = counter_update(m, "cumulative", 10 * MIN, 2.0, swap_old_value=7_040.0)
    assert update.event == "meter_swap" and update.added == [Segment(0, 10 * MIN, 40.0)]
    assert counter_update(m, "cumulative", 20 * MIN, 12.0).added[0].qty == 10.0
    with pytest.raises(CounterRejected) as info:
        counter_update(m, "cumulative", 30 * MIN, 1.0, swap_old_value=5.0)
    assert info.value.rule == "bad_swap"


def test_an_implausible_jump_is_rejected_and_confirmed_as_a_swap_by_the_next_reading() -> None:
    limits = CounterLimits(max_per_hour=600.0)
    m = meter()
    counter_update(m, "cumulative", 0, 100.0, limits=limits)
    assert counter_update(m, "cumulative", MIN, 105.0, limits=limits).added[0].qty == 5.0
    with pytest.raises(CounterRejected) as info:
        counter_update(m, "cumulative", 2 * MIN, 90_000.0, limits=limits)
    assert info.value.rule == "implausible_rate"
    # The next reading follows plausibly from the jump: a new meter; no giant delta is counted.
    update = counter_update(m, "cumulative", 3 * MIN, 90_007.0, limits=limits)
    assert update.event == "meter_swap_detected" and update.added == [Segment(2 * MIN, 3 * MIN, 7.0)]


def test_a_late_cumulative_reading_splits_the_segment_it_falls_into() -> None:
    m = meter()
    counter_update(m, "cumulative", 0, 100.0)
    counter_update(m, "cumulative", 30 * MIN, 160.0)
    late = counter_update(m, "cumulative", 10 * MIN, 110.0)
    assert late.removed == [Segment(0, 30 * MIN, 60.0)]
    assert late.added == [Segment(0, 10 * MIN, 10.0), Segment(10 * MIN, 30 * MIN, 50.0)]
    assert qty(late) == 0.0  # the total is unchanged; only where it lies moved


@pytest.mark.parametrize("value", [99.0, 161.0])
def test_a_late_register_outside_its_neighbours_is_refused(value: float) -> None:
    m = meter()
    counter_update(m, "cumulative", 0, 100.0)
    counter_update(m, "cumulative", 30 * MIN, 160.0)
    with pytest.raises(CounterRejected) as info:
        counter_update(m, "cumulative", 10 * MIN, value)
    assert info.value.rule == "out_of_order_value"


def test_a_reading_older_than_everything_remembered_is_out_of_order() -> None:
    m = meter()
    counter_update(m, "cumulative", 5 * MIN, 100.0)
    with pytest.raises(CounterRejected) as info:
        counter_update(m, "cumulative", MIN, 90.0)
    assert info.value.rule == "out_of_order"


def test_interval_quantities_are_taken_as_they_are_and_never_negative() -> None:
    m = meter("interval")
    assert counter_update(m, "interval", MIN, 0.5).added == [Segment(None, MIN, 0.5)]
    assert counter_update(m, "interval", 0, 0.25).added == [Segment(None, 0, 0.25)]  # late but new
    with pytest.raises(CounterRejected) as info:
        counter_update(m, "interval", 2 * MIN, -1.0)
    assert info.value.rule == "negative_quantity"


def test_rates_integrate_as_a_trapezoid_and_late_rates_split_it() -> None:
    m = meter("rate")
    assert counter_update(m, "rate", 0, 100.0).baseline
    # 100 kW then 120 kW over a quarter hour: 110 kW × 0.25 h = 27.5 kWh.
    assert counter_update(m, "rate", 15 * MIN, 120.0).added[0].qty == pytest.approx(27.5, rel=1e-12)
    late = counter_update(m, "rate", 5 * MIN, 100.0)
    assert [s.qty for s in late.added] == pytest.approx([100 * 5 / 60, 110 * 10 / 60], rel=1e-12)
    with pytest.raises(CounterRejected) as info:
        counter_update(m, "rate", 20 * MIN, 5000.0, limits=CounterLimits(max_per_hour=1000.0))
    assert info.value.rule == "implausible_rate"


def test_a_meter_keeps_its_kind() -> None:
    with pytest.raises(CounterRejected) as info:
        counter_update(meter(), "interval", 0, 1.0)
    assert info.value.rule == "kind_changed"


def test_memory_is_bounded_by_the_window_and_survives_serialisation() -> None:
    m = meter()
    for i in range(600):
        counter_update(m, "cumulative", i * MIN, float(i), retention_ms=2 * HOUR)
    assert 2 * 60 <= len(m.series) <= 2 * 60 + 40  # two hours of minutes, pruned every 32 appends
    assert len(m.series) <= MAX_REMEMBERED
    copy = MeterState.from_json(m.to_json())
    assert copy == m
    assert counter_update(copy, "cumulative", 599 * MIN, 599.0).repeat
