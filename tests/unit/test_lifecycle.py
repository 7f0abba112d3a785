"""The alert lifecycle: raise, level change, resolve, folding, escalation, ack and silence."""

from __future__ import annotations

from alerts.lifecycle import (
    AlertRecord,
    Policy,
    Step,
    acknowledge,
    on_change,
    on_timer,
    parse_duration_ms,
    silence,
)
from energy.alert import Alert

T0 = 1_767_225_600_000  # event time of the first change
NOW = 1_800_000_000_000  # wall clock
MIN = 60_000
POLICY = Policy(fold_window_ms=5 * MIN, escalate_after_ms=30 * MIN)


def change(state: str = "raised", severity: str = "red", at_min: float = 0) -> Alert:
    return Alert.model_validate(
        {
            "key": "U1|annual_energy|total",
            "unit_id": "U1",
            "rule": "annual_energy",
            "severity": severity,
            "state": state,
            "value": 1.0,
            "threshold": 1.0,
            "uom": "tce",
            "message": "m",
            "ts_ms": T0 + round(at_min * MIN),
        }
    )


def run(*alerts: Alert, now: int = NOW) -> list[Step]:
    record: AlertRecord | None = None
    steps = []
    for a in alerts:
        step = on_change(record, a, now, POLICY)
        record = step.record
        steps.append(step)
    return steps


def test_raise_level_change_and_resolve_notify_once_each() -> None:
    steps = run(change("raised", "yellow"), change("updated", "red", 1), change("resolved", "green", 2))
    assert [(s.outcome, s.kind, s.route_at) for s in steps] == [
        ("notified", "raised", "yellow"),
        ("notified", "updated", "red"),
        ("notified", "resolved", "red"),  # routed at the peak: everyone told hears the end
    ]


def test_a_drop_in_level_is_routed_to_those_told_about_the_worse_level() -> None:
    steps = run(change("raised", "red"), change("updated", "yellow", 1))
    assert (steps[1].kind, steps[1].route_at) == ("updated", "red")


def test_repeats_inside_the_fold_window_are_folded_and_counted() -> None:
    steps = run(
        change("raised", "red"),
        change("updated", "red", 1),
        change("updated", "red", 4.9),
        change("updated", "red", 5),  # the window has passed since the notification at 0
        change("updated", "red", 6),
    )
    assert [s.outcome for s in steps] == ["notified", "folded", "folded", "notified", "folded"]
    assert steps[-1].record.folded == 3


def test_a_raise_after_a_resolve_starts_a_new_episode() -> None:
    steps = run(change("raised"), change("resolved", "green", 1), change("raised", "red", 2))
    assert (steps[2].kind, steps[2].record.episode, steps[2].record.folded) == ("raised", 2, 0)


def test_red_unacknowledged_escalates_after_n_minutes_once() -> None:
    [step] = run(change("raised", "red"))
    assert step.record.escalate_at_ms == NOW + 30 * MIN
    assert on_timer(step.record, NOW + 30 * MIN - 1).outcome == "quiet"
    fired = on_timer(step.record, NOW + 30 * MIN)
    assert (fired.outcome, fired.kind, fired.record.escalated) == ("notified", "escalated", True)
    assert on_timer(fired.record, NOW + 60 * MIN).outcome == "quiet"
    # a later red change does not arm it again
    again = on_change(fired.record, change("updated", "red", 10), NOW + 40 * MIN, POLICY)
    assert again.record.escalate_at_ms is None


def test_yellow_never_escalates_and_a_drop_below_red_cancels() -> None:
    [yellow] = run(change("raised", "yellow"))
    assert yellow.record.escalate_at_ms is None
    red, dropped = run(change("raised", "red"), change("updated", "yellow", 1))
    assert red.record.escalate_at_ms is not None and dropped.record.escalate_at_ms is None


def test_ack_stops_escalation() -> None:
    [step] = run(change("raised", "red"))
    acked = acknowledge(step.record, "值班员", NOW + MIN)
    assert (acked.acked_by, acked.acked_at_ms, acked.escalate_at_ms) == ("值班员", NOW + MIN, None)
    assert on_timer(acked, NOW + 31 * MIN).outcome == "quiet"
    assert on_change(acked, change("updated", "red", 10), NOW + 2 * MIN, POLICY).record.escalate_at_ms is None


def test_silence_sends_nothing_until_it_ends_but_records() -> None:
    [step] = run(change("raised", "yellow"))
    quiet = silence(step.record, NOW + 60 * MIN)
    during = on_change(quiet, change("updated", "red", 10), NOW + MIN, POLICY)
    assert (during.outcome, during.kind, during.record.alert.severity) == ("silenced", None, "red")
    assert on_timer(during.record, NOW + 31 * MIN).outcome == "silenced"  # no escalation either
    after = on_change(during.record, change("resolved", "green", 20), NOW + 61 * MIN, POLICY)
    assert (after.outcome, after.kind) == ("notified", "resolved")


def test_durations() -> None:
    assert [parse_duration_ms(t) for t in ("90s", "30m", "2h", "1.5d")] == [
        90_000,
        1_800_000,
        7_200_000,
        129_600_000,
    ]
    for bad in ("2", "h", "0m", "-1h", "2 weeks"):
        try:
            parse_duration_ms(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_the_next_notification_reports_the_repeats_folded_since_the_last() -> None:
    steps = run(
        change("raised", "yellow"),
        change("raised", "yellow", 1),
        change("raised", "yellow", 2),  # two repeats folded into the raise
        change("updated", "red", 3),  # reports them
        change("updated", "red", 4),  # one repeat of red
        change("resolved", "green", 6),  # reports it
    )
    assert [(s.outcome, s.folded) for s in steps] == [
        ("notified", 0),
        ("folded", 0),
        ("folded", 0),
        ("notified", 2),
        ("folded", 0),
        ("notified", 1),
    ]
    assert (steps[-1].record.folded, steps[-1].record.folded_since) == (3, 0)


def test_escalation_reports_the_repeats_and_leaves_them_for_the_next_notification() -> None:
    _, repeat = run(change("raised", "red"), change("updated", "red", 1))
    fired = on_timer(repeat.record, NOW + 30 * MIN)
    assert (fired.kind, fired.folded, fired.record.folded_since) == ("escalated", 1, 1)
    resolved = on_change(fired.record, change("resolved", "green", 9), NOW + 31 * MIN, POLICY)
    assert (resolved.kind, resolved.folded) == ("resolved", 1)


def test_a_silenced_change_keeps_the_count_for_the_next_message() -> None:
    [_, repeat] = run(change("raised", "yellow"), change("raised", "yellow", 1))
    quiet = silence(repeat.record, NOW + 10 * MIN)
    during = on_change(quiet, change("updated", "red", 2), NOW + MIN, POLICY)
    assert (during.outcome, during.record.folded_since) == ("silenced", 1)
    after = on_change(during.record, change("resolved", "green", 20), NOW + 11 * MIN, POLICY)
    assert (after.outcome, after.folded) == ("notified", 1)
