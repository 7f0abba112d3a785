"""A channel that writes each alert as one log line (always on: the operator's record)."""

from __future__ import annotations

import logging

from energy.alert import Alert

log = logging.getLogger("energymon.alerts")


class LogChannel:
    """Logs one line per alert: WARNING for a raised or updated red alert, INFO for everything else."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    @staticmethod
    def level(alert: Alert) -> int:
        """The log level an alert is written at."""
        if alert.severity == "red" and alert.state in ("raised", "updated"):
            return logging.WARNING
        return logging.INFO

    def deliver(self, alert: Alert) -> None:
        """Write the alert's line; never fails."""
        self._log.log(
            self.level(alert),
            "alert %s %s unit=%s rule=%s value=%g threshold=%g %s: %s",
            alert.state,
            alert.severity,
            alert.unit_id,
            alert.rule,
            alert.value,
            alert.threshold,
            alert.uom,
            alert.message,
        )
