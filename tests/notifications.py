"""Alerts and notifications for the channel and template tests."""

from __future__ import annotations

from typing import Any

from alerts.notification import Lang, Notification, NotificationKind
from energy.alert import Alert

#: 2026-11-24 10:15 China time (02:15 UTC).
TS_MS = 1_795_486_500_000


def make_alert(**changes: Any) -> Alert:
    """A red dual-control alert (energy_total) of 某某钢铁; fields overridable."""
    fields: dict[str, Any] = {
        "key": "91320000100000000X|dual_control|energy_total",
        "unit_id": "91320000100000000X",
        "rule": "dual_control",
        "severity": "red",
        "state": "raised",
        "value": 112.5,
        "threshold": 100.0,
        "uom": "%",
        "message": "【一级预警】某某钢铁 2026 年能耗总量预计达到配额的 112.5%",
        "ts_ms": TS_MS,
    }
    fields.update(changes)
    return Alert.model_validate(fields)


def make_notification(
    alert: Alert | None = None,
    kind: NotificationKind = "raised",
    recipient: str | None = None,
    delivery_id: str = "d3adbeef0001",
    lang: Lang = "zh",
    unit_name: str | None = None,
    folded: int = 0,
) -> Notification:
    """A notification of ``alert`` (default :func:`make_alert`)."""
    return Notification(
        alert or make_alert(), kind, recipient, delivery_id, lang, unit_name=unit_name, folded=folded
    )
