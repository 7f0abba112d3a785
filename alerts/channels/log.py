"""A channel that writes each notification as one log line (always on: the operator's record)."""

from __future__ import annotations

import logging

from ..notification import Notification

log = logging.getLogger("energymon.alerts")


class LogChannel:
    """Logs one line per notification: WARNING for a red alert raised, changed or escalated, INFO
    for everything else."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    @staticmethod
    def level(n: Notification) -> int:
        """The log level a notification is written at."""
        if n.alert.severity == "red" and n.kind != "resolved":
            return logging.WARNING
        return logging.INFO

    def deliver(self, notification: Notification) -> None:
        """Write the notification's line; never fails."""
        alert = notification.alert
        self._log.log(
            self.level(notification),
            "alert %s %s unit=%s%s rule=%s value=%g threshold=%g %s: %s",
            notification.kind,
            alert.severity,
            alert.unit_id,
            f" ({notification.unit_name})" if notification.unit_name else "",
            alert.rule,
            alert.value,
            alert.threshold,
            alert.uom,
            alert.message,
        )
