"""A channel that forwards each notification to another Kafka topic (kafka-python, ``acks=all``).

The record's key is the alert's ``unit_id`` (UTF-8), so one unit's notifications keep their order;
its value is :func:`~alerts.channels.payload.notification_json` (the alert's fields, ``kind`` and
``delivery_id``: consumers drop a repeat by that id). ``deliver`` returns once the broker has
acknowledged the record; any Kafka failure (broker down, timeout) is retryable. The producer is made
on first use, so a broker that is down when the dispatcher starts does not stop it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ..notification import Notification
from .base import DeliveryError
from .payload import notification_json


class KafkaForwardChannel:
    """Forwards notifications to ``topic`` on ``bootstrap_servers`` within ``timeout_s`` each."""

    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        topic: str,
        timeout_s: float = 10.0,
        producer_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not topic:
            raise ValueError("kafka forwarding needs a topic")
        if timeout_s <= 0:
            raise ValueError("kafka timeout must be positive")
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.timeout_s = timeout_s
        self._options = dict(producer_options or {})
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._where = f"Kafka topic {topic}"

    def __repr__(self) -> str:
        return f"KafkaForwardChannel({self.bootstrap_servers!r}, {self.topic!r})"

    def deliver(self, notification: Notification) -> None:
        """Send the record and wait for the broker's acknowledgement (all in-sync replicas)."""
        try:
            future = self._get_producer().send(
                self.topic,
                key=notification.alert.unit_id.encode("utf-8"),
                value=notification_json(notification),
            )
            future.get(timeout=self.timeout_s)
        except KafkaError as exc:
            raise DeliveryError(True, f"{self._where}: {type(exc).__name__}: {exc}") from None

    def close(self, timeout_s: float = 5.0) -> None:
        """Close the producer (if one was made)."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=timeout_s)

    def _get_producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                timeout_ms = round(self.timeout_s * 1000)
                options = {
                    "linger_ms": 0,
                    "max_block_ms": timeout_ms,
                    "request_timeout_ms": timeout_ms,
                    "delivery_timeout_ms": timeout_ms,  # give up about when deliver does
                    "bootstrap_timeout_ms": timeout_ms,
                    **self._options,
                }
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap_servers, acks="all", **options
                )
            return self._producer
