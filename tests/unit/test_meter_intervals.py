"""A meter's consumption per interval (``energy.meter_intervals``): what one `energy` point holds."""

from __future__ import annotations

import pytest

from energy.meter_intervals import IntervalSums

T0 = 1_740_967_200_000  # an interval boundary
IV = 15 * 60_000


def test_pieces_add_up_per_interval_and_a_withdrawn_piece_is_taken_back() -> None:
    sums = IntervalSums()
    assert sums.add(T0, 10.0, 1.0, 2.0, 0) is True  # a new interval
    assert sums.add(T0, 5.0, 0.5, 1.0, 0) is False
    assert sums.add(T0 + IV, 7.0, 0.7, 1.4, 0) is True
    assert sums.add(T0, -5.0, -0.5, -1.0, 0) is False
    assert sums.get(T0) == (10.0, 1.0, 2.0, False)
    assert sums.get(T0 + IV) == (7.0, 0.7, 1.4, False)
    assert sums.get(T0 - IV) is None and len(sums) == 2


def test_an_older_interval_goes_in_its_place() -> None:
    sums = IntervalSums()
    for start in (T0 + 2 * IV, T0, T0 + IV, T0 - IV):
        sums.add(start, 1.0, 0.1, 0.2, 0)
    assert sums.starts_from(T0 - 5 * IV) == [T0 - IV, T0, T0 + IV, T0 + 2 * IV]
    assert sums.starts_from(T0 + IV) == [T0 + IV, T0 + 2 * IV]


def test_an_interval_is_estimated_while_an_estimated_piece_is_in_it() -> None:
    sums = IntervalSums()
    sums.add(T0, 3.0, 0.3, 0.6, 1)
    assert sums.get(T0) == pytest.approx((3.0, 0.3, 0.6, True))
    sums.add(T0, -3.0, -0.3, -0.6, -1)  # a late reading takes the estimated share back …
    sums.add(T0, 3.0, 0.3, 0.6, 0)  # … and puts an exact one in its place
    assert sums.get(T0) == pytest.approx((3.0, 0.3, 0.6, False))


def test_forgetting_drops_only_older_intervals() -> None:
    sums = IntervalSums()
    for k in range(5):
        sums.add(T0 + k * IV, float(k), 0.0, 0.0, 0)
    sums.forget_before(T0 + 2 * IV)
    assert sums.starts_from(0) == [T0 + 2 * IV, T0 + 3 * IV, T0 + 4 * IV]
    sums.forget_before(T0)  # nothing older
    assert len(sums) == 3


def test_bytes_round_trip_and_refuse_a_cut_row() -> None:
    sums = IntervalSums()
    sums.add(T0, 1.5, 0.25, 0.125, 1)
    sums.add(T0 + IV, 2.5, 0.5, 0.75, 0)
    raw = sums.to_bytes()
    assert len(raw) == 2 * 5 * 8
    assert IntervalSums.from_bytes(raw) == sums
    with pytest.raises(ValueError, match="not whole rows"):
        IntervalSums.from_bytes(raw[:-3])
