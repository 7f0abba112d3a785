"""Consume the `alerts` topic, decide who hears what, and put it in the outbox before committing.

For every record: the lifecycle (``lifecycle.py``) decides whether it is a notification, routing
(``routing.py``) to whom, and the outbox (``outbox.py``) stores the change and its notifications in
one transaction; the Kafka offsets of a batch are committed only after that. Delivery workers
(``delivery.py``, one thread per channel) send from the outbox. Escalation timers live in the outbox
too: the loop fires the due ones between polls. Optionally an HTTP API (``api.py``) runs alongside.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from pydantic import ValidationError

from energy.alert import Alert
from energy.registry import UnitInfo
from energy.topics import ALERTS, REGISTRY

from . import lifecycle
from .channels.base import Channel
from .delivery import Backoff, DeliveryWorker
from .lifecycle import AlertRecord, Policy, Step
from .outbox import Decision, Outbox, Pending
from .routing import RoutingConfig, default_routing, targets
from .units import UnitDirectory

if TYPE_CHECKING:  # alerts/ imports only energy/ at run time (ARCHITECTURE.md)
    from energymon.settings import Settings

    from .api import ApiServer

log = logging.getLogger("energymon.alerts.dispatcher")

GROUP_ID = "energymon-alerts"
TANSU_SESSION_TIMEOUT_MS = 6000
"""Group joins on tansu take about half the session timeout: keep it short there."""


@dataclass
class DispatcherStats:
    """Counters for a status view (``Dispatcher.stats`` returns a copy)."""

    changes: int = 0
    """Alert changes recorded in the outbox."""
    replayed: int = 0
    """Records already in the outbox (a redelivery after a restart): nothing added."""
    malformed: int = 0
    queued: int = 0
    """Notifications added to the outbox."""
    escalated: int = 0
    committed: int = 0
    last_error: str | None = None


def outbox_path(settings: Settings) -> Path:
    """The outbox file: ``alerts.outbox_file`` or ``<state_dir>/alerts/outbox.db``."""
    return settings.alerts.outbox_file or settings.state_dir / "alerts" / "outbox.db"


def build_channels(routing: RoutingConfig) -> dict[str, Channel]:
    """Every named channel of the routing, made by ``alerts.channels.channel_from_config``."""
    from . import channels as channel_kinds

    factory: Callable[..., Channel] = channel_kinds.channel_from_config  # type: ignore[attr-defined,unused-ignore]
    out: dict[str, Channel] = {}
    for name, spec in routing.channels.items():
        options, secrets = spec.split()
        out[name] = factory(spec.kind, options, secrets)
    return out


class Dispatcher:
    """Kafka → lifecycle + routing → outbox → delivery workers.

    ``topic``, ``group_id``, ``registry_topic`` and ``consumer_options`` exist for tests. ``channels``
    overrides the channels made from the routing (by name).
    """

    def __init__(
        self,
        settings: Settings,
        routing: RoutingConfig | None = None,
        *,
        channels: Mapping[str, Channel] | None = None,
        topic: str = ALERTS,
        group_id: str = GROUP_ID,
        registry_topic: str = REGISTRY,
        poll_timeout_ms: int = 500,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        a = settings.alerts
        self.settings = settings
        secret = a.webhook_secret.get_secret_value() if a.webhook_secret else None
        self.routing = routing or default_routing(a.webhook_url, secret, a.webhook_timeout_s)
        self.channels = dict(channels) if channels is not None else build_channels(self.routing)
        self.policy = Policy(
            fold_window_ms=round(a.fold_window_s * 1000),
            escalate_after_ms=round(a.escalate_after_min * 60_000) if a.escalate_after_min else None,
        )
        self.backoff = Backoff(a.retry_initial_s, a.retry_max_s)
        self.topic = topic
        self.group_id = group_id
        self.registry_topic = registry_topic
        self.poll_timeout_ms = poll_timeout_ms
        self._consumer_options = dict(consumer_options or {})
        self.outbox = Outbox(outbox_path(settings))
        self.units: Mapping[str, UnitInfo] = {}
        self.workers: list[DeliveryWorker] = []
        self.api: ApiServer | None = None
        if settings.alerts.api_port is not None:
            from .api import ApiServer

            self.api = ApiServer(self.outbox, settings.alerts)
        self._lock = threading.Lock()
        self._stats = DispatcherStats()

    def stats(self) -> DispatcherStats:
        """A copy of the counters (safe from another thread)."""
        with self._lock:
            return replace(self._stats)

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, n in increments.items():
                setattr(self._stats, name, getattr(self._stats, name) + n)

    # -- Kafka ------------------------------------------------------------------------------------

    def consumer_config(self) -> dict[str, Any]:
        """The KafkaConsumer options: manual commits, earliest reset, short sessions on tansu."""
        kafka = self.settings.kafka
        session_ms = round(kafka.session_timeout_s * 1000)
        if kafka.tansu:
            session_ms = min(session_ms, TANSU_SESSION_TIMEOUT_MS)
        config: dict[str, Any] = kafka.kafka_python_options()
        config.update(
            group_id=self.group_id,
            client_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 3),
            max_poll_records=100,
        )
        config.update(self._consumer_options)
        return config

    def run(self, stop: threading.Event) -> None:
        """Dispatch until ``stop`` is set, then let the workers finish their current send and close."""
        if self.api is not None:
            self.api.start()
        requeued = self.outbox.recover()
        if requeued:
            log.warning(
                "%d notifications were being sent when the dispatcher stopped: sending them again", requeued
            )
        directory = UnitDirectory(self.registry_topic, self.settings.kafka.kafka_python_options())
        directory.catch_up()
        self.units = directory.units
        self.workers = [
            DeliveryWorker(n, c, self.outbox, self.backoff, stop) for n, c in self.channels.items()
        ]
        for w in self.workers:
            w.start()
        consumer = KafkaConsumer(**self.consumer_config())
        try:
            consumer.subscribe([self.topic])
            log.info(
                "dispatching alerts from %s (group %s) to %s",
                self.topic,
                self.group_id,
                ", ".join(self.channels),
            )
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=self.poll_timeout_ms)
                directory.poll()
                if batch:
                    self._process(consumer, batch)
                self.fire_escalations()
        finally:
            consumer.close(autocommit=False, timeout_ms=5000)
            directory.close()
            for w in self.workers:
                w.join(timeout=30)
            if self.api is not None:
                self.api.stop()
            self.outbox.close()
            log.info("alert dispatcher stopped: %s", self.stats())

    def _process(self, consumer: KafkaConsumer, batch: Mapping[TopicPartition, list[Any]]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in batch.items():
            for record in records:
                alert = self.parse(record)
                if alert is not None:
                    self.accept(alert)
                offsets[tp] = OffsetAndMetadata(record.offset + 1, "", record.leader_epoch)
        self._wake()
        try:  # the outbox holds everything now: committing can only skip what is safe
            consumer.commit(offsets, timeout_ms=10_000)
        except KafkaError as exc:
            self._note(f"offset commit failed, the records will be read again (and ignored): {exc}")
        else:
            self._count(committed=1)

    def parse(self, record: Any) -> Alert | None:
        """The record's Alert, or None (logged, counted) when it is not one."""
        try:
            if record.value is None:
                raise ValueError("empty value (tombstone)")
            return Alert.from_json(record.value)
        except (ValueError, TypeError) as exc:
            reason = _reason(exc)
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            log.error("skipping malformed alert record %s: %s", where, reason)
            self._count(malformed=1)
            self._note(f"malformed record {where}: {reason}")
            return None

    # -- decisions ---------------------------------------------------------------------------------

    def accept(self, alert: Alert) -> int | None:
        """Record one alert change and its notifications; None when it was already recorded."""
        now = self.outbox.now_ms()

        def decide(previous: AlertRecord | None) -> Decision:
            step = lifecycle.on_change(previous, alert, now, self.policy)
            return step.record, step.outcome, self.pending(step)

        added = self.outbox.apply_change(alert, decide)
        if added is None:
            self._count(replayed=1)
        else:
            self._count(changes=1, queued=added)
        return added

    def fire_escalations(self) -> None:
        """Escalate every red alert whose acknowledgement is overdue (once each)."""
        now = self.outbox.now_ms()
        for key in self.outbox.escalations_due(now):

            def decide(record: AlertRecord) -> tuple[AlertRecord, list[Pending]]:
                step = lifecycle.on_timer(record, now)
                if step.kind == "escalated":
                    log.warning("alert %s not acknowledged in time: escalating", record.key)
                    self._count(escalated=1)
                return step.record, self.pending(step)

            self.outbox.update(key, decide)
        self._wake()

    def pending(self, step: Step) -> list[Pending]:
        """The notifications of a lifecycle step, one per routing target with a known channel, with
        the unit's name from the registry."""
        if step.kind is None or step.route_at is None:
            return []
        alert = step.record.alert
        unit = self.units.get(alert.unit_id)
        name = unit.name if unit else None
        out = []
        for t in targets(self.routing, unit, step.kind, step.route_at):
            if t.channel not in self.channels:
                self._note(
                    f"alert {alert.key}: contact {', '.join(t.names)} names unknown channel {t.channel!r}"
                )
                log.error("alert %s: contact %s names an unknown channel %r", alert.key, t.names, t.channel)
                continue
            where = (t.channel, t.recipient, t.lang, t.names)
            out.append(Pending.make(alert, step.kind, *where, unit_name=name, folded=step.folded))
        return out

    def _wake(self) -> None:
        for w in self.workers:
            w.wake.set()

    def _note(self, error: str) -> None:
        with self._lock:
            self._stats.last_error = error


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        text = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def run_dispatcher(settings: Settings, stop: threading.Event, routing: RoutingConfig | None = None) -> None:
    """Dispatch alerts from the `alerts` topic until ``stop`` is set (the API too when
    ``alerts.api_port`` is set); without ``routing``, the log and ``alerts.webhook_url`` hear all."""
    Dispatcher(settings, routing).run(stop)
