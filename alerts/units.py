"""The registry as the dispatcher sees it: every unit's latest record from the compacted `registry`
topic (region, contacts and name for routing and messages), read to its end at start and followed
afterwards. A topic that does not exist yet is looked for again every :data:`LOOK_AGAIN_S`."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from pydantic import ValidationError

from energy.registry import UnitInfo

log = logging.getLogger("energymon.alerts.units")

LOOK_AGAIN_S = 10.0
"""How often (s) a missing registry topic is looked for again."""


class UnitDirectory:
    """unit_id → :class:`UnitInfo`, from ``topic`` (no consumer group: always read from the start)."""

    def __init__(self, topic: str, kafka_options: dict[str, Any]) -> None:
        self.topic = topic
        self.units: dict[str, UnitInfo] = {}
        self._consumer = KafkaConsumer(**kafka_options, enable_auto_commit=False, group_id=None)
        self._partitions: list[TopicPartition] = []
        self._look_at = 0.0  # monotonic time of the next look for a missing topic

    def get(self, unit_id: str) -> UnitInfo | None:
        """The unit's latest record, if the registry has one."""
        return self.units.get(unit_id)

    def catch_up(self, timeout_s: float = 30.0) -> None:
        """Read the topic from its start to its current end (or for ``timeout_s``, then go on)."""
        deadline = time.monotonic() + timeout_s
        if not self._assign():  # no registry topic yet: nothing to read
            log.info("no %s topic: units have no contacts until one is published", self.topic)
            return
        ends = self._consumer.end_offsets(self._partitions)
        while time.monotonic() < deadline and any(
            self._consumer.position(tp) < ends[tp] for tp in self._partitions
        ):
            self.poll(0.2)
        log.info(
            "registry: %d units with %d contacts",
            len(self.units),
            sum(len(u.contacts) for u in self.units.values()),
        )

    def _assign(self) -> bool:
        """Read every partition of the topic from its start; False when the topic does not exist."""
        if self._partitions:
            return True
        self._look_at = time.monotonic() + LOOK_AGAIN_S
        found = self._consumer.partitions_for_topic(self.topic)
        if not found:
            return False
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(found)]
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)
        return True

    def poll(self, timeout_s: float = 0.0) -> None:
        """Apply the registry records that arrived (a null value deletes a unit)."""
        if not self._partitions and (time.monotonic() < self._look_at or not self._assign()):
            return
        batch = self._consumer.poll(timeout_ms=round(timeout_s * 1000))
        for records in batch.values():
            for r in records:
                unit_id = r.key.decode() if r.key else None
                if r.value is None:
                    if unit_id:
                        self.units.pop(unit_id, None)
                    continue
                try:
                    info = UnitInfo.from_json(r.value)
                except (ValidationError, ValueError) as exc:
                    log.error("skipping a malformed registry record at offset %d: %s", r.offset, exc)
                    continue
                self.units[info.unit_id] = info

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()
