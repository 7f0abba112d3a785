"""What people do to an alert (CLI and HTTP API alike): acknowledge it, silence it, look at it."""

from __future__ import annotations

from typing import Any

from . import lifecycle
from .outbox import AlertView, Outbox, StoredNotification


def acknowledge(outbox: Outbox, key: str, by: str | None) -> bool:
    """Acknowledge alert ``key`` (cancels its pending escalation); False when there is no such alert."""
    now = outbox.now_ms()
    return outbox.update(key, lambda r: (lifecycle.acknowledge(r, by, now), []))


def silence(outbox: Outbox, key: str, duration_ms: int) -> int | None:
    """Silence alert ``key`` for ``duration_ms``; the end (epoch ms), or None when there is no such alert."""
    until = outbox.now_ms() + duration_ms
    return until if outbox.update(key, lambda r: (lifecycle.silence(r, until), [])) else None


def alert_json(view: AlertView) -> dict[str, Any]:
    """An alert with its notifications and every attempt, as plain JSON data (the API's answer);
    ``unit_name`` is the one its latest notification carried (None when none did)."""
    r = view.record
    return {
        "key": r.key,
        "unit_id": r.alert.unit_id,
        "unit_name": next(
            (n.notification.unit_name for n in reversed(view.notifications) if n.notification.unit_name),
            None,
        ),
        "rule": r.alert.rule,
        "state": r.alert.state,
        "severity": r.alert.severity,
        "peak": r.peak,
        "episode": r.episode,
        "ts_ms": r.alert.ts_ms,
        "message": r.alert.message,
        "folded": r.folded,
        "acked_at_ms": r.acked_at_ms,
        "acked_by": r.acked_by,
        "silenced_until_ms": r.silenced_until_ms,
        "escalate_at_ms": r.escalate_at_ms,
        "escalated": r.escalated,
        "updated_at_ms": view.updated_at_ms,
        "notifications": [notification_json(n) for n in view.notifications],
    }


def notification_json(n: StoredNotification) -> dict[str, Any]:
    """One notification's delivery state and attempts as plain JSON data."""
    return {
        "delivery_id": n.notification.delivery_id,
        "kind": n.notification.kind,
        "state": n.notification.alert.state,
        "severity": n.notification.alert.severity,
        "channel": n.channel,
        "recipient": n.notification.recipient,
        "lang": n.notification.lang,
        "unit_name": n.notification.unit_name,
        "folded": n.notification.folded,
        "names": list(n.names),
        "status": n.status,
        "attempts": n.attempts,
        "created_at_ms": n.created_at_ms,
        "done_at_ms": n.done_at_ms,
        "last_error": n.last_error,
        "history": [
            {"attempt": a.attempt, "at_ms": a.at_ms, "outcome": a.outcome, "detail": a.detail}
            for a in n.history
        ],
    }
