"""Counter deltas: baselines, repeats, decreases, out-of-order and rate integration."""

import pytest

from energy.counters import RECENT_READINGS, CounterRejected, MeterState, counter_delta

MIN = 60_000


def test_first_cumulative_reading_only_sets_the_baseline() -> None:
    meter = MeterState(kind="cumulative", energy="electricity")
    first = counter_delta(meter, "cumulative", 0, 1000.0)
    assert first.baseline and first.qty == 0.0
    assert counter_delta(meter, "cumulative", MIN, 1012.5).qty == 12.5


def test_a_repeated_reading_gives_back_the_same_quantity_and_is_not_counted_again() -> None:
    meter = MeterState(kind="cumulative", energy="electricity")
    counter_delta(meter, "cumulative", 0, 1000.0)
    counter_delta(meter, "cumulative", MIN, 1010.0)
    counter_delta(meter, "cumulative", 2 * MIN, 1030.0)
    again = counter_delta(meter, "cumulative", MIN, 1010.0)
    assert again.repeat and again.qty == 10.0
    # The register moves on from the newest reading, not from the repeat.
    assert counter_delta(meter, "cumulative", 3 * MIN, 1031.0).qty == 1.0


def test_a_repeat_with_another_value_is_a_conflict() -> None:
    meter = MeterState(kind="cumulative", energy="electricity")
    counter_delta(meter, "cumulative", 0, 1000.0)
    with pytest.raises(CounterRejected) as info:
        counter_delta(meter, "cumulative", 0, 999.0)
    assert info.value.rule == "duplicate_conflict"


def test_a_falling_register_is_rejected_and_becomes_the_new_baseline() -> None:
    meter = MeterState(kind="cumulative", energy="electricity")
    counter_delta(meter, "cumulative", 0, 1000.0)
    with pytest.raises(CounterRejected) as info:
        counter_delta(meter, "cumulative", MIN, 5.0)
    assert info.value.rule == "counter_decrease"
    assert counter_delta(meter, "cumulative", 2 * MIN, 7.0).qty == 2.0
    # Processing the rejected reading again is a quiet no-op, not a second rejection.
    assert counter_delta(meter, "cumulative", MIN, 5.0).baseline


def test_an_older_cumulative_reading_is_out_of_order() -> None:
    meter = MeterState(kind="cumulative", energy="electricity")
    counter_delta(meter, "cumulative", 5 * MIN, 100.0)
    with pytest.raises(CounterRejected) as info:
        counter_delta(meter, "cumulative", MIN, 90.0)
    assert info.value.rule == "out_of_order"


def test_interval_quantities_are_taken_as_they_are_and_never_negative() -> None:
    meter = MeterState(kind="interval", energy="raw_coal")
    assert counter_delta(meter, "interval", MIN, 0.5).qty == 0.5
    assert counter_delta(meter, "interval", 0, 0.25).qty == 0.25  # late but new: still counted
    with pytest.raises(CounterRejected) as info:
        counter_delta(meter, "interval", 2 * MIN, -1.0)
    assert info.value.rule == "negative_quantity"


def test_rates_integrate_as_a_trapezoid() -> None:
    meter = MeterState(kind="rate", energy="electricity")
    assert counter_delta(meter, "rate", 0, 100.0).baseline
    # 100 kW then 120 kW over a quarter hour: 110 kW × 0.25 h = 27.5 kWh.
    assert counter_delta(meter, "rate", 15 * MIN, 120.0).qty == pytest.approx(27.5, rel=1e-12)


def test_a_meter_keeps_its_kind() -> None:
    meter = MeterState(kind="cumulative", energy="electricity")
    with pytest.raises(CounterRejected) as info:
        counter_delta(meter, "interval", 0, 1.0)
    assert info.value.rule == "kind_changed"


def test_memory_of_recent_readings_is_bounded_and_survives_serialisation() -> None:
    meter = MeterState(kind="cumulative", energy="electricity")
    for i in range(RECENT_READINGS * 2):
        counter_delta(meter, "cumulative", i * MIN, float(i))
    assert len(meter.recent) == RECENT_READINGS
    copy = MeterState.from_json(meter.to_json())
    assert copy == meter
    last = RECENT_READINGS * 2 - 1
    assert counter_delta(copy, "cumulative", last * MIN, float(last)).repeat
