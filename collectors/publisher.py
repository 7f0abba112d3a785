"""The Kafka publisher every collector sends through (kafka-python producer, acks=all).

Sends are asynchronous; a failed send is remembered and reported by the next :meth:`Publisher.send`
or :meth:`Publisher.flush`, so a caller that flushes before it forgets its own copy of the data
never loses a message silently.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from energy.topics import READINGS
from energymon.settings import KafkaSettings

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """A message could not be delivered to the broker (the cause is chained)."""


class Publisher:
    """Sends records to Kafka and makes delivery failures visible.

    The producer waits for every in-sync replica (``acks="all"``, kafka-python's idempotent producer),
    lingers 5 ms to batch, does not compress, and retries a failed batch until kafka-python's
    ``delivery_timeout_ms`` (120 s) runs out. On tansu (``kafka.tansu``) it is not idempotent but
    sends one request at a time (order kept): tansu with s3 storage acknowledges a batch retried
    across its own restart as a duplicate without storing it (RELIABILITY.md), while a plain retry is
    at worst stored twice, which the worker counts once.
    """

    def __init__(self, kafka: KafkaSettings, client_id: str = "energymon-collector") -> None:
        options: dict[str, Any] = kafka.kafka_python_options()
        if kafka.tansu:
            options.update(enable_idempotence=False, max_in_flight_requests_per_connection=1)
        try:
            self._producer = KafkaProducer(
                **options,
                client_id=client_id,
                acks="all",
                linger_ms=5,
                compression_type=None,
                delivery_timeout_ms=120_000,
            )
        except KafkaError as exc:  # e.g. no broker answered within bootstrap_timeout_ms (30 s)
            raise PublishError(f"cannot connect to Kafka at {kafka.servers()}: {exc}") from exc
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._failed = 0
        self._closed = False

    # -- sending -------------------------------------------------------------------------------

    def send(self, topic: str, key: str | None, value: bytes) -> FutureRecordMetadata:
        """Queue one record (asynchronous); returns kafka-python's future of its RecordMetadata.
        Raises :class:`PublishError` if an earlier send failed."""
        self._raise_if_failed()
        if self._closed:
            raise PublishError("publisher is closed")
        try:
            future = self._producer.send(
                topic, value=value, key=key.encode("utf-8") if key is not None else None
            )
        except KafkaError as exc:  # e.g. no metadata for the topic within max_block_ms (60 s)
            raise PublishError(f"cannot send to topic {topic}: {exc!r}") from exc
        future.add_errback(self._on_error, topic)
        return future

    def send_readings(self, message: dict[str, Any]) -> None:
        """Send one readings message (a dict in the schema's format) to `readings`, keyed by unit_id."""
        self.send(READINGS, message["unit_id"], orjson.dumps(message))

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued record is acknowledged; raise :class:`PublishError` if any failed."""
        if not self._closed:
            try:
                self._producer.flush(timeout=timeout_s)
            except Exception as exc:  # KafkaTimeoutError and friends
                raise PublishError(f"records not acknowledged within {timeout_s:g} s: {exc}") from exc
        self._raise_if_failed()

    def close(self, timeout_s: float = 30.0) -> None:
        """Close the producer, giving unsent records ``timeout_s`` seconds. Safe to call twice.

        Raises :class:`PublishError` when records were still unacknowledged at the deadline (they are
        dropped: the producer is closed anyway).
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._producer.close(timeout=timeout_s)
        except KafkaError as exc:
            # kafka-python's close() raises from its flush and leaves its I/O thread running: stop it.
            self._force_close()
            raise PublishError(
                f"closed with records unacknowledged after {timeout_s:g} s (they are lost): {exc}"
            ) from exc

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self.flush()
            except BaseException:
                self._close_quietly()
                raise
            self.close()
        else:
            self._close_quietly()

    def _close_quietly(self, timeout_s: float = 5.0) -> None:
        """Close while another exception is on its way: log a failure instead of raising it."""
        try:
            self.close(timeout_s)
        except PublishError as exc:
            log.error("%s", exc)

    def _force_close(self) -> None:
        sender = getattr(self._producer, "_sender", None)  # kafka-python internals, 3.x
        if sender is not None:
            sender.force_close()  # fails the pending batches (their errbacks run) and stops the thread
            sender.join(5.0)
        try:
            self._producer.close(timeout=1.0)
        except KafkaError as exc:
            log.warning("kafka producer did not close cleanly: %s", exc)

    # -- failures ------------------------------------------------------------------------------

    def _on_error(self, topic: str, error: BaseException) -> None:
        """Errback from the producer's I/O thread: remember the first failure."""
        with self._lock:
            self._failed += 1
            if self._error is None:
                self._error = error
                log.error("send to topic %s failed: %s", topic, error)

    def _raise_if_failed(self) -> None:
        with self._lock:
            error, failed = self._error, self._failed
        if error is not None:
            raise PublishError(
                f"{failed} record(s) could not be delivered to Kafka; first error: {error!r}"
            ) from error
