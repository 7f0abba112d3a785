"""What an alert change means for people: notify, fold, stay quiet or escalate (pure functions).

The dispatcher keeps one :class:`AlertRecord` per alert key (in the outbox DB) and runs every change
through :func:`on_change`; its :class:`Step` says which notification kind, if any, goes out and at
which severity it is routed. The rules:

- **raised** (or any change after a resolve): a new episode; notified.
- **level change** (another severity than last notified): notified as ``updated``.
- **resolved**: notified, routed at the episode's peak severity (everyone told about it hears the end).
- **repeats**: a change with the state and severity last notified, less than ``fold_window_ms`` of
  event time after that notification, is folded (counted in ``folded``, shown by ``alerts list``, and
  in ``folded_since`` until the next notification, whose :attr:`Step.folded` reports them).
- **silence**: until ``silenced_until_ms`` (wall clock) nothing is sent; the change is still recorded.
- **escalation**: a red alert notified and not acknowledged within ``escalate_after_ms`` (wall clock)
  escalates once (kind ``escalated``); an ack, a drop below red or the resolve cancels it.

Times: ``ts_ms`` fields are event times of the alerts (epoch ms), ``*_at_ms`` / ``now_ms`` wall clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from energy.alert import Alert, Severity
from energy.registry import SEVERITY_ORDER

from .notification import NotificationKind

Outcome = Literal["notified", "folded", "silenced", "quiet"]


@dataclass(frozen=True, slots=True)
class Policy:
    """``fold_window_ms``: repeats this close (event time) to the last notification are folded;
    ``escalate_after_ms``: wall-clock wait before an unacknowledged red alert escalates (None: never)."""

    fold_window_ms: int = 300_000
    escalate_after_ms: int | None = 1_800_000


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """What the dispatcher remembers of one alert key.

    ``alert`` is its latest change; ``episode`` counts raises after a resolve (1 for the first);
    ``peak`` is the worst severity of the episode; ``notified_*`` describe the last notification
    (state, severity, event time ``ts_ms``); ``folded`` counts repeats folded in this episode,
    ``folded_since`` those since the last notification (a silenced one does not count: nothing went out).
    """

    alert: Alert
    episode: int = 1
    peak: Severity = "green"
    notified_state: str | None = None
    notified_severity: Severity | None = None
    notified_ts_ms: int | None = None
    folded: int = 0
    folded_since: int = 0
    acked_at_ms: int | None = None
    acked_by: str | None = None
    silenced_until_ms: int | None = None
    escalate_at_ms: int | None = None
    escalated: bool = False

    @property
    def key(self) -> str:
        """The alert's key (``unit|rule|…``)."""
        return self.alert.key

    @property
    def open(self) -> bool:
        """Whether the alert is raised or updated (not resolved)."""
        return self.alert.state != "resolved"

    def silenced(self, now_ms: int) -> bool:
        """Whether a silence is in force at ``now_ms``."""
        return self.silenced_until_ms is not None and now_ms < self.silenced_until_ms


@dataclass(frozen=True, slots=True)
class Step:
    """The result of a change: the new record, what happened, and when notified the ``kind``, the
    severity ``route_at`` which recipients are chosen, and how many repeats since the previous
    notification it reports (``folded``)."""

    record: AlertRecord
    outcome: Outcome
    kind: NotificationKind | None = None
    route_at: Severity | None = None
    folded: int = 0


def rank(severity: str) -> int:
    """0 for green … 3 for red."""
    return SEVERITY_ORDER.index(severity)


def worse(a: Severity, b: Severity) -> Severity:
    """The worse of two severities."""
    return a if rank(a) >= rank(b) else b


def on_change(record: AlertRecord | None, alert: Alert, now_ms: int, policy: Policy) -> Step:
    """Apply one alert change (``now_ms``: wall clock) to the key's record (None: never seen)."""
    new_episode = record is None or (not record.open and alert.state != "resolved")
    if new_episode:
        episode = 1 if record is None else record.episode + 1
        base = AlertRecord(alert=alert, episode=episode, peak=alert.severity)
        if record is not None:
            base = replace(base, silenced_until_ms=record.silenced_until_ms)
        return _notify(base, "raised", alert.severity, alert, now_ms, policy)
    assert record is not None
    current = replace(record, alert=alert, peak=worse(record.peak, alert.severity))
    if alert.state == "resolved":
        if not record.open:  # a second resolve: nothing new
            return _fold(current)
        done = replace(current, escalate_at_ms=None)
        return _notify(done, "resolved", current.peak, alert, now_ms, policy)
    if alert.severity != record.notified_severity:
        kind: NotificationKind = "updated"
        route_at = worse(alert.severity, record.notified_severity or alert.severity)
        return _notify(current, kind, route_at, alert, now_ms, policy)
    last = record.notified_ts_ms
    if last is not None and alert.ts_ms - last < policy.fold_window_ms:
        return _fold(current)
    kind = "raised" if alert.state == "raised" else "updated"
    return _notify(current, kind, alert.severity, alert, now_ms, policy)


def _fold(record: AlertRecord) -> Step:
    """A repeat folded into the last notification (counted, nothing sent)."""
    return Step(replace(record, folded=record.folded + 1, folded_since=record.folded_since + 1), "folded")


def _notify(
    record: AlertRecord,
    kind: NotificationKind,
    route_at: Severity,
    alert: Alert,
    now_ms: int,
    policy: Policy,
) -> Step:
    """The record after a notification of ``kind`` (or its silenced stand-in), escalation armed."""
    record = replace(
        record,
        notified_state=alert.state,
        notified_severity=alert.severity,
        notified_ts_ms=alert.ts_ms,
        escalate_at_ms=_escalation_time(record, alert, now_ms, policy),
    )
    if record.silenced(now_ms):
        return Step(record, "silenced")
    return Step(replace(record, folded_since=0), "notified", kind, route_at, record.folded_since)


def _escalation_time(record: AlertRecord, alert: Alert, now_ms: int, policy: Policy) -> int | None:
    """When the record's escalation is due after ``alert``: kept while red, armed on turning red."""
    if (
        alert.state == "resolved"
        or alert.severity != "red"
        or record.escalated
        or record.acked_at_ms is not None
        or policy.escalate_after_ms is None
    ):
        return None
    return record.escalate_at_ms if record.escalate_at_ms is not None else now_ms + policy.escalate_after_ms


def on_timer(record: AlertRecord, now_ms: int) -> Step:
    """Fire the record's escalation if due: ``escalated`` once (or ``silenced``), else ``quiet``."""
    due = record.escalate_at_ms
    if due is None or now_ms < due:
        return Step(record, "quiet")
    if record.escalated or record.acked_at_ms is not None or not record.open:
        return Step(replace(record, escalate_at_ms=None), "quiet")
    fired = replace(record, escalate_at_ms=None, escalated=True)
    if record.silenced(now_ms):
        return Step(fired, "silenced")
    return Step(fired, "notified", "escalated", "red", record.folded_since)


def acknowledge(record: AlertRecord, by: str | None, now_ms: int) -> AlertRecord:
    """The record acknowledged by ``by`` at ``now_ms``: a pending escalation is cancelled."""
    return replace(record, acked_at_ms=now_ms, acked_by=by, escalate_at_ms=None)


def silence(record: AlertRecord, until_ms: int) -> AlertRecord:
    """The record silenced until ``until_ms`` (wall clock, epoch ms)."""
    return replace(record, silenced_until_ms=until_ms)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int:
    """``90s``, ``30m``, ``2h``, ``1.5d`` → milliseconds (ValueError otherwise, or when not positive)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (expected a number and s, m, h or d, e.g. 2h)")
    ms = round(float(match.group(1)) * _UNIT_MS[match.group(2)])
    if ms <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return ms
