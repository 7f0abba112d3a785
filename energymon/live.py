"""The live terminal view of `energymon up`: rates, warning levels, last alerts, process health.

Figures come from the worker's status file (``STATE_DIR/worker-status.json``) and from the
`alerts` topic, which the view tails with its own group-less consumer.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from energy import topics
from energy.alert import Alert
from energymon.localstack.process import ManagedProcess
from energymon.settings import Settings
from streams.status import STATUS_FILE, read_status

CST = timezone(timedelta(hours=8))
PERCENTS = ("used_pct", "schedule_pct", "projected_pct")
LEVEL_STYLE = {"red": "bold red", "orange": "dark_orange", "yellow": "yellow", "green": "green"}


class AlertTail(threading.Thread):
    """Keeps the newest alerts of the `alerts` topic (from its beginning) in memory."""

    def __init__(self, settings: Settings, keep: int = 8) -> None:
        super().__init__(name="alert-tail", daemon=True)
        self.settings = settings
        self.alerts: collections.deque[Alert] = collections.deque(maxlen=keep)
        self.total = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        consumer = KafkaConsumer(**self.settings.kafka.kafka_python_options(), enable_auto_commit=False)
        try:
            partitions = consumer.partitions_for_topic(topics.ALERTS) or set()
            assigned = [TopicPartition(topics.ALERTS, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            while not self.stop_event.is_set():
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        try:
                            self.alerts.append(Alert.from_json(record.value))
                            self.total += 1
                        except (ValidationError, ValueError):
                            continue
        finally:
            consumer.close()


class LiveView:
    """Redraws once a second until ``stop`` is set."""

    def __init__(self, settings: Settings, children: Sequence[ManagedProcess], console: Console) -> None:
        self.settings = settings
        self.children = children
        self.console = console
        self.status_path = Path(settings.state_dir).resolve() / STATUS_FILE
        self.previous: tuple[float, dict[str, Any]] | None = None
        self.rates = {"in": 0.0, "out": 0.0}

    def run(self, stop: threading.Event) -> None:
        """Show the view until ``stop`` is set."""
        tail = AlertTail(self.settings)
        tail.start()
        try:
            with Live(self.render(tail), console=self.console, refresh_per_second=2) as live:
                while not stop.wait(1.0):
                    live.update(self.render(tail))
        finally:
            tail.stop_event.set()

    def _update_rates(self, status: dict[str, Any] | None) -> None:
        if status is None:
            return
        now = float(status.get("ts", time.time()))
        if self.previous is not None and now > self.previous[0]:
            then, old = self.previous
            self.rates["in"] = (status["readings"] - old["readings"]) / (now - then)
            self.rates["out"] = (status["points_written"] - old["points_written"]) / (now - then)
        if self.previous is None or now > self.previous[0]:
            self.previous = (now, status)

    def render(self, tail: AlertTail) -> Group:
        """The whole screen."""
        status = read_status(self.status_path)
        self._update_rates(status)

        figures = Table(title="energymon — live", show_header=False, min_width=60)
        figures.add_column("what")
        figures.add_column("value", justify="right")
        if status is None:
            figures.add_row("worker", "[yellow]starting (no status yet)[/]")
        else:
            figures.add_row("readings/s in", f"{self.rates['in']:,.0f}")
            figures.add_row("points/s out (InfluxDB)", f"{self.rates['out']:,.0f}")
            figures.add_row("messages processed", f"{status['messages']:,}")
            figures.add_row("readings processed", f"{status['readings']:,}")
            figures.add_row("rejected (readings.rejected)", f"{status['rejected']:,}")
            figures.add_row("InfluxDB write retries", f"{status['influx_retries']:,}")
            levels = collections.Counter(status.get("levels", {}).values())
            figures.add_row(
                "units by dual-control level",
                "  ".join(
                    f"[{LEVEL_STYLE[lv]}]{lv} {levels.get(lv, 0)}[/]" for lv in ("red", "yellow", "green")
                ),
            )

        procs = Table(title="processes", min_width=60)
        procs.add_column("part")
        procs.add_column("state")
        procs.add_column("log")
        for child in self.children:
            state = "[green]running[/]" if child.alive else f"[red]exited ({child.returncode})[/]"
            procs.add_row(child.name, state, str(child.log_path))

        risk = Table(title="units most at risk (year-end projection against the energy cap)", min_width=60)
        for column in ("unit", "level", "used %", "schedule %", "projected %"):
            risk.add_column(column, justify="left" if column in ("unit", "level") else "right")
        for unit in (status or {}).get("at_risk", []):
            style = LEVEL_STYLE.get(unit["level"], "")
            risk.add_row(
                unit["unit_id"],
                f"[{style}]{unit['level']}[/]",
                *(f"{unit[k]:.1f}" if k in unit else "—" for k in PERCENTS),
            )

        alerts = Table(title=f"last alerts ({tail.total} in all)", min_width=60)
        for column in ("time (CST)", "unit", "rule", "state", "value / threshold"):
            alerts.add_column(column)
        for a in reversed(tail.alerts):
            when = datetime.fromtimestamp(a.ts_ms / 1000, UTC).astimezone(CST).strftime("%m-%d %H:%M")
            style = LEVEL_STYLE.get(a.severity, "")
            alerts.add_row(
                when, a.unit_id, a.rule, f"[{style}]{a.state}[/]", f"{a.value:.2f} / {a.threshold:g} {a.uom}"
            )
        return Group(figures, risk, procs, alerts)
