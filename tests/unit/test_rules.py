"""The first alert rule: a unit's consumption over the last hour against a ceiling."""

from energy.intervals import INTERVAL_MS
from energy.rules import hourly_ceiling, last_hour_tce


def test_last_hour_is_the_newest_interval_and_the_three_before() -> None:
    t0 = 100 * INTERVAL_MS
    intervals = {t0 - i * INTERVAL_MS: [1.0 + i, 0.0] for i in range(6)}
    assert last_hour_tce(intervals, t0) == 1.0 + 2.0 + 3.0 + 4.0


def test_raise_once_then_resolve_once() -> None:
    raised = hourly_ceiling("U1", 30.0, 25.0, None, 1_000)
    assert raised is not None and raised.state == "raised" and raised.severity == "red"
    assert raised.key == "U1|hourly_ceiling" and raised.value == 30.0 and raised.threshold == 25.0
    assert hourly_ceiling("U1", 31.0, 25.0, "red", 2_000) is None
    resolved = hourly_ceiling("U1", 23.75, 25.0, "red", 3_000)  # 5 % under the ceiling
    assert resolved is not None and resolved.state == "resolved"
    assert hourly_ceiling("U1", 10.0, 25.0, None, 4_000) is None


def test_a_unit_hovering_at_its_ceiling_does_not_flap() -> None:
    # raised at 25.5; 24.9 and 23.8 are under the ceiling but not 5 % under it: still open
    assert hourly_ceiling("U1", 25.5, 25.0, None, 1_000) is not None
    assert hourly_ceiling("U1", 24.9, 25.0, "red", 2_000) is None
    assert hourly_ceiling("U1", 23.8, 25.0, "red", 3_000) is None
    resolved = hourly_ceiling("U1", 23.7, 25.0, "red", 4_000)
    assert resolved is not None and resolved.state == "resolved"
    # once resolved, the ceiling itself (not the margin) raises it again
    assert hourly_ceiling("U1", 24.0, 25.0, None, 5_000) is None
