"""The publisher, replay and the simulator loop against the real (tansu) broker.

Every test writes to its own topics (created with 4 partitions, like tansu's auto-created ones) and
reads them back from the beginning with assigned partitions (no consumer group), so counts are exact.
The simulator loop writes to `<prefix>.registry` / `<prefix>.readings` through a publisher that
prefixes topic names, instead of the shared `registry` / `readings` topics.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from collectors.publisher import Publisher, PublishError
from collectors.replay import replay_file
from collectors.simulator import MINUTE_MS, Fleet, registry_for, run_simulator
from energy.registry import UnitInfo
from energy.schema import parse_message
from energy.topics import READINGS, REGISTRY
from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.ports import free_port
from energymon.settings import KafkaSettings, Settings, SimulatorSettings
from tests.integration.pipeline_helpers import collect_records

pytestmark = pytest.mark.integration

PARTITIONS = 4


class PrefixedPublisher(Publisher):
    """A real Publisher that writes topic ``t`` to ``<prefix>.t`` and remembers what it sent."""

    def __init__(self, kafka: KafkaSettings, prefix: str) -> None:
        super().__init__(kafka, client_id="energymon-test")
        self.prefix = prefix
        self.sent: dict[str, list[tuple[str | None, bytes]]] = defaultdict(list)

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        super().send(f"{self.prefix}.{topic}", key, value)
        self.sent[topic].append((key, value))


@pytest.fixture
def kafka(broker: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=broker, tansu=True)


@pytest.fixture
def publisher(kafka: KafkaSettings) -> Iterator[Publisher]:
    with Publisher(kafka) as pub:
        yield pub


def consume_all(broker: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning: waits for ``expected`` and 1 s more for extras."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker, enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000
    )
    try:
        deadline = time.monotonic() + timeout_s
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.1)
            consumer.topics()  # refresh metadata
            partitions = consumer.partitions_for_topic(topic)
        assert partitions, f"topic {topic} not found"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return collect_records(consumer, expected, deadline)
    finally:
        consumer.close()


def by_partition_in_order(records: list[ConsumerRecord]) -> dict[int, list[ConsumerRecord]]:
    out: dict[int, list[ConsumerRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.partition].append(r)
    return out


def test_replay_file_round_trip(broker: str, publisher: Publisher, unique_name: str, tmp_path: Path) -> None:
    topic = f"{unique_name}.readings"
    create_topics(broker, [topic], partitions=PARTITIONS)
    fleet = Fleet.generate(units=8)
    t0 = 1_772_409_600_000  # 2026-03-02 08:00 +08:00
    good = [
        orjson.dumps(fleet.scan(u, t0 + k * MINUTE_MS, seq=k, previous_t_ms=None))
        for k in range(5)
        for u in fleet.units
    ]
    bad = [
        b"this is not json",
        b'{"v":1,"unit_id":"sim-steel-001","source":"x","seq":-1,"readings":[]}',  # invalid, has a key
        b'{"unit_id": 7}',
        b'  {"unit_id":"\xe6\xb1\x9f\xe8\x8b\x8f-1"}  ',  # leading/trailing spaces kept
    ]
    lines = good[:10] + bad[:2] + good[10:] + bad[2:]
    path = tmp_path / "replay.jsonl"
    path.write_bytes(b"\n".join(lines[:20]) + b"\n\n  \r\n" + b"\r\n".join(lines[20:]) + b"\n")

    result = replay_file(path, publisher, topic=topic)

    assert (result.messages, result.skipped_blank) == (len(lines), 2)
    assert result.bytes == sum(len(line) for line in lines)
    records = consume_all(broker, topic, len(lines))
    assert len(records) == len(lines)
    assert sorted(r.value for r in records) == sorted(lines)
    keyed = {r.value: (r.key.decode() if r.key is not None else None) for r in records}
    for line in good:
        assert keyed[line] == orjson.loads(line)["unit_id"]
    assert keyed[bad[0]] is None and keyed[bad[2]] is None
    assert keyed[bad[1]] == "sim-steel-001" and keyed[bad[3]] == "江苏-1"
    # one unit's messages share a partition and keep the file's order
    for part in by_partition_in_order(records).values():
        seqs: dict[str, list[int]] = defaultdict(list)
        for r in part:
            if r.value in good:
                doc = orjson.loads(r.value)
                seqs[doc["unit_id"]].append(doc["seq"])
        for s in seqs.values():
            assert s == sorted(s)
    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    for r in records:
        if r.key is not None:
            partitions_of[r.key].add(r.partition)
    assert all(len(p) == 1 for p in partitions_of.values())
    assert len({r.partition for r in records}) > 1  # 8 units spread over the partitions


def test_simulator_rounds_round_trip(broker: str, kafka: KafkaSettings, unique_name: str) -> None:
    prefix = unique_name
    create_topics(broker, [f"{prefix}.{READINGS}", f"{prefix}.{REGISTRY}"], partitions=PARTITIONS)
    settings = Settings(
        _env_file=None,
        kafka=kafka,
        simulator=SimulatorSettings(units=20, seed=2026, scan_interval_s=0.2, backfill_s=180, history="none"),
    )
    rounds: list[tuple[int, int]] = []
    stop = threading.Event()

    def on_sent(messages: int, readings: int) -> None:
        rounds.append((messages, readings))
        if len(rounds) == 5:  # 3 backfill minutes + 2 live scans
            stop.set()

    pub = PrefixedPublisher(kafka, prefix)
    try:
        started = time.monotonic()
        run_simulator(settings, stop, publisher=pub, on_sent=on_sent)
        assert time.monotonic() - started < 30
        pub.send("after", None, b"the publisher passed in is still open")
        pub.flush()
    finally:
        pub.close()

    fleet = Fleet.generate(units=20, seed=2026)
    assert len(rounds) == 5
    assert all(m == 20 for m, _ in rounds)
    assert sum(r for _, r in rounds) == 5 * sum(len(u.meters) for u in fleet.units)

    registry = consume_all(broker, f"{prefix}.{REGISTRY}", 20)
    assert len(registry) == 20
    expected = registry_for(fleet)  # the sample registry deploy/registry/simulator.yaml
    assert [i.unit_id for i in expected] == [i.unit_id for i in fleet.registry_records()]
    assert all(i.targets and i.meters for i in expected)
    assert sorted((r.key, r.value) for r in registry) == sorted(
        (i.unit_id.encode(), i.to_json()) for i in expected
    )
    assert {UnitInfo.from_json(r.value) for r in registry} == set(expected)

    readings = consume_all(broker, f"{prefix}.{READINGS}", 100)
    assert len(readings) == 100
    sent = pub.sent[READINGS]
    assert sorted((r.key.decode(), r.value) for r in readings) == sorted((k or "", v) for k, v in sent)
    per_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for part in by_partition_in_order(readings).values():
        for r in part:
            doc = orjson.loads(r.value)
            assert r.key.decode() == doc["unit_id"]
            assert parse_message(r.value).rejections == []
            per_unit[doc["unit_id"]].append(doc)
    assert set(per_unit) == {u.unit_id for u in fleet.units}
    for docs in per_unit.values():
        seqs = [d["seq"] for d in docs]
        assert len(docs) == 5 and seqs == sorted(seqs) and len(set(seqs)) == 5
        ts = [d["readings"][0]["ts"] for d in docs]
        assert ts == seqs  # seq is the scan time
        assert all(t % MINUTE_MS == 0 for t in ts[:3])  # backfill on whole minutes
        assert ts[1] - ts[0] == ts[2] - ts[1] == MINUTE_MS
        # the same bytes as a fresh fleet's scans: deterministic
        unit = fleet.unit(docs[0]["unit_id"])
        prev: int | None = None
        for d in docs:
            assert d == fleet.scan(unit, d["seq"], d["seq"], prev)
            prev = d["seq"]


@pytest.mark.parametrize("history", ["none", "year"])
def test_simulator_stops_promptly_during_backfill(
    broker: str, kafka: KafkaSettings, unique_name: str, history: Literal["none", "year"]
) -> None:
    prefix = unique_name
    create_topics(broker, [f"{prefix}.{READINGS}", f"{prefix}.{REGISTRY}"], partitions=PARTITIONS)
    settings = Settings(
        _env_file=None,
        kafka=kafka,
        simulator=SimulatorSettings(units=50, backfill_s=7 * 86_400, history=history),
    )
    stop = threading.Event()
    rounds: list[int] = []

    def on_sent(messages: int, readings: int) -> None:
        rounds.append(messages)
        if len(rounds) == 10:
            stop.set()

    pub = PrefixedPublisher(kafka, prefix)
    try:
        worker = threading.Thread(target=run_simulator, args=(settings, stop, pub, on_sent), daemon=True)
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive()
    finally:
        pub.close()
    assert len(rounds) == 10  # a week of backfill would be 10 080 rounds (after the year's days)
    readings = consume_all(broker, f"{prefix}.{READINGS}", 500)
    assert len(readings) == 500  # everything sent was flushed before returning


def test_publisher_reports_failures(kafka: KafkaSettings, broker: str, unique_name: str) -> None:
    topic = f"{unique_name}.t"
    create_topics(broker, [topic], partitions=1)
    pub = Publisher(kafka)
    pub.send(topic, None, b"x" * 10)
    pub.flush()
    with pytest.raises(Exception, match="MessageSizeTooLarge"):
        pub.send(topic, "big", b"x" * 2_000_000)  # over max_request_size: refused at once
    pub.close()
    with pytest.raises(PublishError, match="closed"):
        pub.send(topic, None, b"late")
    pub.close()  # twice is fine


def test_publisher_reports_a_broker_that_went_away(tmp_path: Path) -> None:
    """A private broker, stopped under the publisher: nothing is lost silently."""
    own = TansuBroker(free_port(), log_path=tmp_path / "tansu.log")
    own.start()
    try:
        pub = Publisher(KafkaSettings(bootstrap_servers=own.bootstrap, tansu=True))
        pub.send("t", "k", b"before")
        pub.flush(10)
    finally:
        own.stop()
    pub.send("t", "k", b"after the broker stopped")  # queued: sends are asynchronous
    with pytest.raises(PublishError, match="not acknowledged within 2 s"):
        pub.flush(timeout_s=2)
    with pytest.raises(PublishError, match="they are lost"):
        pub.close(timeout_s=1)
    with pytest.raises(PublishError, match="1 record"):
        pub.flush()
    assert not [t for t in threading.enumerate() if "kafka" in t.name.lower()]
