"""The broker of the fault tests: tansu on ``s3://`` storage (a local moto S3 server) keeps records
and a group's committed offsets across its own restart, and its ListOffsets can report an end short
of the log's, which a fetch does not (the reason for ``streams.recovery.fetched_log_ends``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faust.types import TP
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.ports import free_port
from energymon.localstack.s3 import LocalS3
from streams.recovery import fetched_log_ends

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    with LocalS3(free_port(), tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


def produce_one_by_one(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """One record batch per value (each flushed before the next)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    try:
        for value in values:
            producer.send(topic, value=value, partition=0)
            producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)


def test_records_and_committed_offsets_survive_a_broker_restart(s3: LocalS3, tmp_path: Path) -> None:
    broker = TansuBroker(free_port(), tmp_path / "tansu.log", s3=s3)
    broker.start()
    try:
        create_topics(broker.bootstrap, ["kept"], 1)
        values = [f"r{i}".encode() for i in range(20)]
        produce_one_by_one(broker.bootstrap, "kept", values)
        tp = TopicPartition("kept", 0)
        group = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="g", enable_auto_commit=False)
        group.commit({tp: OffsetAndMetadata(13, "", -1)})
        group.close()
        broker.stop()
        broker.start()  # same port, same bucket
        reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="g", enable_auto_commit=False)
        try:
            assert reader.committed(tp) == 13
            reader.assign([tp])
            reader.seek(tp, 0)
            got: list[bytes] = []
            deadline = time.monotonic() + 20
            while len(got) < len(values) and time.monotonic() < deadline:
                got += [r.value for batch in reader.poll(300).values() for r in batch]
        finally:
            reader.close()
    finally:
        broker.stop()
    assert got == values


def test_list_offsets_falls_short_after_a_burst_and_a_fetch_reports_the_true_end(
    s3: LocalS3, tmp_path: Path
) -> None:
    with TansuBroker(free_port(), tmp_path / "tansu.log", s3=s3) as broker:
        create_topics(broker.bootstrap, ["burst"], 1)
        produce_one_by_one(broker.bootstrap, "burst", [b"first"])
        time.sleep(1.05 - time.time() % 1.0)  # just after a whole second: the burst fits in one
        produce_one_by_one(broker.bootstrap, "burst", [f"b{i}".encode() for i in range(5)])
        tp = TopicPartition("burst", 0)
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
        try:
            listed = consumer.end_offsets([tp])[tp]
        finally:
            consumer.close()
        fetched = fetched_log_ends({"bootstrap_servers": broker.bootstrap}, {TP("burst", 0): 0})
    # The base offset + 1 of the first batch written in the newest second: the burst's first.
    assert listed == 2
    assert fetched == {TP("burst", 0): 6}
