"""Consume the `alerts` topic and hand every alert to every channel, at least once.

One consumer in group ``energymon-alerts`` reads the topic with auto-commit off. A record's offset is
committed only after every channel has delivered its alert or failed for good, so a dispatcher that is
killed redelivers rather than loses; receivers drop repeats by the delivery id (see
``channels/webhook.py``). A retryable failure is retried, for that channel only, with exponential
backoff and jitter (0.5 s doubling to 30 s) until it succeeds or the dispatcher is told to stop.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from pydantic import ValidationError

from energy.alert import Alert
from energy.topics import ALERTS

from .channels import Channel, DeliveryError, channels_from_settings

if TYPE_CHECKING:  # alerts/ imports only energy/ at run time (ARCHITECTURE.md)
    from energymon.settings import Settings

log = logging.getLogger("energymon.alerts.dispatcher")

GROUP_ID = "energymon-alerts"
TANSU_SESSION_TIMEOUT_MS = 6000
"""Group joins on tansu take about half the session timeout: keep it short there."""

Outcome = Literal["delivered", "failed", "stopped"]


@dataclass
class ChannelStats:
    """Counters of one channel."""

    delivered: int = 0
    failed: int = 0
    retries: int = 0


@dataclass
class DispatcherStats:
    """Counters for a status view (a snapshot: :meth:`Dispatcher.stats` returns a copy)."""

    delivered: int = 0
    """Alerts every channel accepted."""
    failed: int = 0
    """Alerts at least one channel refused for good (the others may have delivered them)."""
    malformed: int = 0
    """Records skipped because they are not an Alert."""
    retries: int = 0
    """Retried attempts, all channels together."""
    committed: int = 0
    """Offset commits that succeeded."""
    last_error: str | None = None
    channels: dict[str, ChannelStats] = field(default_factory=dict)


class Dispatcher:
    """Reads alerts from Kafka and delivers each to every channel.

    ``topic`` and ``group_id`` exist for tests; production uses the `alerts` topic and the
    ``energymon-alerts`` group. ``consumer_options`` are passed to ``KafkaConsumer`` last.
    """

    def __init__(
        self,
        settings: Settings,
        channels: Iterable[Channel] | None = None,
        *,
        topic: str = ALERTS,
        group_id: str = GROUP_ID,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        poll_timeout_ms: int = 500,
        commit_interval_s: float = 1.0,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.channels: list[Channel] = (
            list(channels) if channels is not None else channels_from_settings(settings.alerts)
        )
        self.topic = topic
        self.group_id = group_id
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.poll_timeout_ms = poll_timeout_ms
        self.commit_interval_s = commit_interval_s
        self._consumer_options = dict(consumer_options or {})
        self._lock = threading.Lock()
        self._stats = DispatcherStats(channels={c.name: ChannelStats() for c in self.channels})

    # -- counters ---------------------------------------------------------------------------------

    def stats(self) -> DispatcherStats:
        """A consistent copy of the counters (safe to call from another thread)."""
        with self._lock:
            return replace(self._stats, channels={k: replace(v) for k, v in self._stats.channels.items()})

    @property
    def delivered(self) -> int:
        """Alerts every channel accepted."""
        return self._stats.delivered

    @property
    def failed(self) -> int:
        """Alerts at least one channel refused for good."""
        return self._stats.failed

    @property
    def malformed(self) -> int:
        """Records skipped because they are not an Alert."""
        return self._stats.malformed

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
        """Consume and deliver until ``stop`` is set; then commit what was delivered and close."""
        consumer = KafkaConsumer(**self.consumer_config())
        try:
            consumer.subscribe([self.topic])
            log.info(
                "dispatching alerts from %s (group %s) to %s",
                self.topic,
                self.group_id,
                ", ".join(c.name for c in self.channels) or "no channel",
            )
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=self.poll_timeout_ms)
                if batch:
                    self._process(consumer, batch, stop)
        finally:
            consumer.close(autocommit=False, timeout_ms=5000)
            log.info("alert dispatcher stopped: %s", self._summary())

    def _process(
        self, consumer: KafkaConsumer, batch: Mapping[TopicPartition, list[Any]], stop: threading.Event
    ) -> None:
        done: dict[TopicPartition, OffsetAndMetadata] = {}
        last_commit = time.monotonic()
        try:
            for tp, records in batch.items():
                for record in records:
                    if stop.is_set() or not self.dispatch_record(record, stop):
                        return  # not delivered everywhere: its offset stays uncommitted
                    done[tp] = OffsetAndMetadata(record.offset + 1, "", record.leader_epoch)
                    if time.monotonic() - last_commit >= self.commit_interval_s:
                        self._commit(consumer, done)
                        done = {}
                        last_commit = time.monotonic()
        finally:
            self._commit(consumer, done)

    def _commit(self, consumer: KafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if not offsets:
            return
        try:
            consumer.commit(offsets, timeout_ms=10_000)
        except KafkaError as exc:  # CommitFailedError among them
            # e.g. the group rebalanced while a channel was retrying: the partition's next owner
            # redelivers these alerts (receivers de-duplicate by delivery id)
            self._note_error(f"offset commit failed, alerts will be redelivered: {exc}")
            log.warning("offset commit failed, alerts will be redelivered: %s", exc)
        else:
            with self._lock:
                self._stats.committed += 1

    # -- one record -------------------------------------------------------------------------------

    def dispatch_record(self, record: Any, stop: threading.Event) -> bool:
        """Parse and deliver one consumer record; False when ``stop`` interrupted a retry."""
        alert = self.parse(record)
        if alert is None:
            return True
        return self.dispatch(alert, stop)

    def parse(self, record: Any) -> Alert | None:
        """The record's Alert, or None (logged, counted) when it is not one."""
        try:
            if record.value is None:
                raise ValueError("empty value (tombstone)")
            return Alert.from_json(record.value)
        except (ValueError, TypeError) as exc:
            reason = _reason(exc)
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            raw = record.value[:120] if isinstance(record.value, bytes | str) else record.value
            log.error("skipping malformed alert record %s: %s; value=%r", where, reason, raw)
            with self._lock:
                self._stats.malformed += 1
                self._stats.last_error = f"malformed record {where}: {reason}"
            return None

    def dispatch(self, alert: Alert, stop: threading.Event) -> bool:
        """Deliver an alert to every channel; False when ``stop`` interrupted a retry."""
        failed = False
        for channel in self.channels:
            outcome = self._deliver(channel, alert, stop)
            if outcome == "stopped":
                log.info(
                    "stopping before %s accepted alert %s (%s); it will be redelivered",
                    channel.name,
                    alert.key,
                    alert.state,
                )
                return False
            failed = failed or outcome == "failed"
        with self._lock:
            if failed:
                self._stats.failed += 1
            else:
                self._stats.delivered += 1
        return True

    def _deliver(self, channel: Channel, alert: Alert, stop: threading.Event) -> Outcome:
        attempt = 0
        while True:
            try:
                channel.deliver(alert)
            except DeliveryError as exc:
                if not exc.retryable:
                    log.error(
                        "alert %s (%s) not delivered to %s, giving up: %s",
                        alert.key,
                        alert.state,
                        channel.name,
                        exc.detail,
                    )
                    self._count_channel(channel.name, failed=1, error=f"{channel.name}: {exc.detail}")
                    return "failed"
                delay = self.backoff_s(attempt, exc.retry_after_s)
                attempt += 1
                log.warning(
                    "alert %s (%s) not yet delivered to %s (attempt %d), retrying in %.1f s: %s",
                    alert.key,
                    alert.state,
                    channel.name,
                    attempt,
                    delay,
                    exc.detail,
                )
                self._count_channel(channel.name, retries=1, error=f"{channel.name}: {exc.detail}")
                if stop.wait(delay):
                    return "stopped"
            except Exception as exc:  # a bug in a channel must not stop the others or the loop
                log.exception("channel %s failed on alert %s (%s)", channel.name, alert.key, alert.state)
                self._count_channel(channel.name, failed=1, error=f"{channel.name}: {exc!r}")
                return "failed"
            else:
                self._count_channel(channel.name, delivered=1)
                return "delivered"

    def backoff_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Wait before retry ``attempt`` (0-based): initial·2^attempt capped, half of it jittered.

        A peer's ``Retry-After`` hint lengthens the wait, but never beyond the cap.
        """
        ceiling = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(attempt, 32))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.backoff_max_s))
        return delay

    def _count_channel(
        self, name: str, *, delivered: int = 0, failed: int = 0, retries: int = 0, error: str | None = None
    ) -> None:
        with self._lock:
            stats = self._stats.channels.setdefault(name, ChannelStats())
            stats.delivered += delivered
            stats.failed += failed
            stats.retries += retries
            self._stats.retries += retries
            if error is not None:
                self._stats.last_error = error

    def _note_error(self, error: str) -> None:
        with self._lock:
            self._stats.last_error = error

    def _summary(self) -> str:
        s = self.stats()
        return f"{s.delivered} delivered, {s.failed} failed, {s.malformed} malformed, {s.retries} retries"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()]
        text = "; ".join(parts)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def run_dispatcher(settings: Settings, stop: threading.Event, channels: list[Channel] | None = None) -> None:
    """Deliver alerts from the `alerts` topic until ``stop`` is set (default channels from settings)."""
    Dispatcher(settings, channels).run(stop)
