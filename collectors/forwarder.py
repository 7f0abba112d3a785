"""The forwarder of a site collector: sends the buffer's messages, oldest first, with the
:class:`~collectors.publisher.Publisher` (kafka-python, acks=all) in a worker thread, deletes them only
once the broker acknowledged them, and retries with exponential backoff while it cannot.

One forwarder per collector, one batch at a time: messages reach the broker in buffer order, so the
order per unit (one partition per unit) is kept. Delivery is at-least-once: a batch the broker
stored but whose acknowledgement was lost (broker or collector killed in between) is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from collectors.buffer import Buffer, Stored
from collectors.publisher import Publisher, PublishError
from energymon.settings import KafkaSettings

log = logging.getLogger("energymon.collect.forwarder")
T = TypeVar("T")

#: Largest wait between two attempts to reach the broker, seconds (default).
MAX_BACKOFF_S = 30.0


class CollectorKafka(KafkaSettings):
    """The connection settings with kafka-python's reconnect backoff capped at 5 s (default 30 s)
    and a 10 s bootstrap timeout, so a broker that is back is found within seconds."""

    def kafka_python_options(self) -> dict[str, Any]:
        """KafkaSettings' options plus the shorter reconnect backoff and bootstrap timeout."""
        return {
            **super().kafka_python_options(),
            "reconnect_backoff_max_ms": 5000,
            "bootstrap_timeout_ms": 10000,
        }


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a new daemon thread and await its result: unlike asyncio.to_thread, a
    call still blocked in kafka-python (bootstrap 30 s, flush) never delays the process's exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return  # the awaiting task was cancelled
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting task
            loop.call_soon_threadsafe(settle, False, exc)
        else:
            loop.call_soon_threadsafe(settle, True, result)

    threading.Thread(target=work, name=getattr(fn, "__name__", "worker"), daemon=True).start()
    return await future


class Sender(Protocol):
    """What the forwarder needs of a publisher (:class:`Publisher` in production)."""

    def send(self, topic: str, key: str | None, value: bytes) -> Any: ...
    def flush(self, timeout_s: float = 30.0) -> None: ...
    def close(self, timeout_s: float = 30.0) -> None: ...


class ClockCheck:
    """Compares the collector's clock with the broker's from the timestamp of an acknowledged record.

    With a LogAppendTime topic the broker stamps each record with its own clock, so the broker's
    time lies in [sent, acknowledged] of the local clock when both agree; ``drift_s`` is how far
    outside it is (positive: the broker is ahead). With CreateTime topics the record keeps the
    collector's own time and the drift reads 0: the check then sees nothing (collectors/README.md).
    """

    def __init__(self, max_drift_s: float) -> None:
        self.max_drift_s = max_drift_s
        self.drift_s: float | None = None
        self._warned = False

    def observe(self, sent_at_s: float, acked_at_s: float, broker_ts_ms: int) -> float:
        """Record one acknowledged record's timestamp; warns when the drift passes the maximum."""
        broker_s = broker_ts_ms / 1000.0
        if broker_s > acked_at_s:
            drift = broker_s - acked_at_s
        elif broker_s < sent_at_s:
            drift = broker_s - sent_at_s
        else:
            drift = 0.0
        self.drift_s = drift
        too_far = abs(drift) > self.max_drift_s
        if too_far and not self._warned:
            log.warning(
                "clock drift: the broker's clock is %+.1f s from this collector's (max %g s): "
                "readings are stamped with this clock; check NTP (chrony/systemd-timesyncd)",
                drift,
                self.max_drift_s,
            )
        elif not too_far and self._warned:
            log.info("clock drift back within %g s (%+.1f s)", self.max_drift_s, drift)
        self._warned = too_far
        return drift


@dataclass
class ForwarderState:
    """What the status file shows of the forwarder: messages ``sent`` (acknowledged), failed
    attempts, the last error, when the last batch was acknowledged (epoch s), whether connected."""

    sent: int = 0
    failures: int = 0
    last_error: str | None = None
    last_ack_at: float | None = None
    connected: bool = False


class Forwarder:
    """Sends the buffer to the broker (see the module docstring); run :meth:`run` as a task."""

    def __init__(
        self,
        buffer: Buffer,
        kafka: KafkaSettings,
        clock_check: ClockCheck,
        client_id: str = "energymon-collector",
        batch: int = 500,
        flush_timeout_s: float = 10.0,
        max_backoff_s: float = MAX_BACKOFF_S,
        publisher_factory: Callable[[KafkaSettings, str], Sender] = Publisher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.buffer = buffer
        self.kafka = CollectorKafka.model_validate(kafka.model_dump())
        self.max_backoff_s = max_backoff_s
        self.clock_check = clock_check
        self.client_id = client_id
        self.batch = batch
        self.flush_timeout_s = flush_timeout_s
        self.state = ForwarderState()
        self._factory = publisher_factory
        self._clock = clock
        self._publisher: Sender | None = None
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()

    def wake(self) -> None:
        """New messages were buffered: send them now."""
        self._wake.set()

    async def until_empty(self) -> None:
        """Return once the forwarder found the buffer empty after everything was acknowledged."""
        self._empty.clear()
        self.wake()
        await self._empty.wait()

    async def run(self, idle_poll_s: float = 1.0) -> None:
        """Forward until cancelled."""
        backoff = 1.0
        while True:
            batch = await asyncio.to_thread(self.buffer.oldest, self.batch)
            if not batch:
                self._empty.set()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle_poll_s)
                continue
            try:
                await self._forward(batch)
            except Exception as exc:  # PublishError, or anything kafka-python raises unwrapped
                await self._failed(exc, backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            else:
                backoff = 1.0

    async def _forward(self, batch: list[Stored]) -> None:
        if self._publisher is None:
            self._publisher = await in_thread(self._factory, self.kafka, self.client_id)
            if not self.state.connected:
                log.info("forwarder: connected to %s", self.kafka.bootstrap_servers)
            self.state.connected = True
        await in_thread(self._send, self._publisher, batch)
        removed = await asyncio.to_thread(self.buffer.delete, [s.id for s in batch])
        self.state.sent += removed
        self.state.last_ack_at = self._clock()

    def _send(self, publisher: Sender, batch: list[Stored]) -> None:
        """Send a batch and wait for every acknowledgement (worker thread); raises PublishError."""
        sent_at = self._clock()
        futures = [publisher.send(s.record.topic, s.record.key, s.record.value) for s in batch]
        publisher.flush(self.flush_timeout_s)
        metadata = getattr(futures[-1], "value", None)
        if metadata is not None and getattr(metadata, "timestamp", None) is not None:
            self.clock_check.observe(sent_at, self._clock(), metadata.timestamp)

    async def _failed(self, exc: Exception, backoff: float) -> None:
        self.state.failures += 1
        self.state.last_error = str(exc) if isinstance(exc, PublishError) else repr(exc)
        if self.state.connected or self.state.failures == 1:
            log.warning("forwarder: cannot deliver to Kafka: %s", self.state.last_error)
        self.state.connected = False
        await self.close(timeout_s=0.0)
        stats = await asyncio.to_thread(self.buffer.stats)
        age = self._clock() - stats.oldest_created_at if stats.oldest_created_at else 0.0
        log.warning(
            "forwarder: broker unavailable; %d message(s) buffered (oldest %.0f s ago, %.1f%% full); "
            "retrying in %.0f s",
            stats.messages,
            age,
            stats.used_pct,
            backoff,
        )
        await asyncio.sleep(backoff)

    async def close(self, timeout_s: float = 1.0) -> None:
        """Drop the publisher; records it had not delivered stay in the buffer (sent again later)."""
        publisher, self._publisher = self._publisher, None
        if publisher is None:
            return
        try:
            await in_thread(publisher.close, timeout_s)
        except PublishError as exc:
            log.debug("forwarder: publisher closed with records in flight (kept in the buffer): %s", exc)
