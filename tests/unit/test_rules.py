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
    resolved = hourly_ceiling("U1", 25.0, 25.0, "red", 3_000)
    assert resolved is not None and resolved.state == "resolved"
    assert hourly_ceiling("U1", 10.0, 25.0, None, 4_000) is None
