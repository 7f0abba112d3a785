"""KafkaForwardChannel against the session's real broker."""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaConsumer

from alerts.channels import DeliveryError, KafkaForwardChannel
from energymon.localstack.broker import create_topics
from tests.notifications import make_alert, make_notification
from tests.receivers import free_port

pytestmark = pytest.mark.integration


def test_forwarded_record_is_keyed_by_unit_and_carries_kind_and_delivery_id(
    broker: str, unique_name: str
) -> None:
    create_topics(broker, [unique_name], partitions=1)
    channel = KafkaForwardChannel(broker, unique_name, timeout_s=10)
    sent = [
        make_notification(kind="raised", delivery_id="id-1"),
        make_notification(make_alert(state="resolved"), kind="resolved", delivery_id="id-2"),
    ]
    try:
        for n in sent:
            channel.deliver(n)
    finally:
        channel.close()
    consumer = KafkaConsumer(
        unique_name, bootstrap_servers=broker, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    try:
        records = []
        for record in consumer:
            records.append(record)
            if len(records) == 2:
                break
    finally:
        consumer.close()
    assert [r.key for r in records] == [b"91320000100000000X"] * 2
    bodies = [orjson.loads(r.value) for r in records]
    assert [(b["kind"], b["delivery_id"], b["state"]) for b in bodies] == [
        ("raised", "id-1", "raised"),
        ("resolved", "id-2", "resolved"),
    ]
    assert bodies[0]["message"] == sent[0].alert.message  # Chinese text intact


def test_broker_down_is_retryable() -> None:
    channel = KafkaForwardChannel(f"127.0.0.1:{free_port()}", "nowhere", timeout_s=1)
    try:
        with pytest.raises(DeliveryError) as info:
            channel.deliver(make_notification())
    finally:
        channel.close()
    assert info.value.retryable is True
