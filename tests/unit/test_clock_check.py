"""The collector's clock check (collectors.forwarder.ClockCheck): an acknowledged record's broker
timestamp (LogAppendTime) against the local send and acknowledgement times."""

import logging

import pytest

from collectors.forwarder import ClockCheck


def test_a_broker_time_between_send_and_ack_is_no_drift() -> None:
    check = ClockCheck(max_drift_s=5)
    assert check.observe(1000.0, 1000.2, 1_000_100) == 0.0


def test_a_broker_ahead_or_behind_is_the_distance_to_the_window(caplog: pytest.LogCaptureFixture) -> None:
    check = ClockCheck(max_drift_s=5)
    with caplog.at_level(logging.INFO, logger="energymon.collect"):
        assert check.observe(1000.0, 1000.2, 1_010_200) == pytest.approx(10.0)  # broker 10 s ahead
        assert check.observe(1001.0, 1001.2, 1_011_200) == pytest.approx(10.0)  # still: no second warning
        assert check.observe(1002.0, 1002.2, 994_000) == pytest.approx(-8.0)  # broker 8 s behind
        assert check.observe(1003.0, 1003.2, 1_005_200) == pytest.approx(2.0)  # back within 5 s
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "+10.0 s" in warnings[0] and "NTP" in warnings[0]
    assert any("back within 5 s" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
