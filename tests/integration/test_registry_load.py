"""`energymon registry load` against the real (tansu) broker: the records on the `registry` topic.

The records are read back with assigned partitions (no consumer group) from the end offsets seen
before the load, so records other tests may have written to the shared `registry` topic do not
count. That a running worker applies a record as it arrives is covered by the worker's `units`
table (the `registry` agent of streams/app.py, exercised by tests/integration/test_pipeline.py):
this test checks what reaches the topic.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition
from typer.testing import CliRunner

from energy.registry import UnitInfo
from energy.topics import REGISTRY
from energymon.cli import app
from energymon.localstack.broker import create_topics
from energymon.registry_files import load_registry
from tests.integration.pipeline_helpers import collect_records

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "registry" / "simulator.yaml"


def end_offsets(broker: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(REGISTRY) or set()
        tps = [TopicPartition(REGISTRY, p) for p in sorted(partitions)]
        return dict(consumer.end_offsets(tps))
    finally:
        consumer.close()


def records_after(
    broker: str, start: dict[TopicPartition, int], expected: int, timeout_s: float = 30.0
) -> list[ConsumerRecord]:
    """The records of `registry` after ``start``: waits for ``expected`` and 1 s more for extras."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker, enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000
    )
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        return collect_records(consumer, expected, time.monotonic() + timeout_s)
    finally:
        consumer.close()


def load(broker: str, path: Path) -> str:
    env = {"ENERGYMON_KAFKA__BOOTSTRAP_SERVERS": broker, "ENERGYMON_KAFKA__TANSU": "true"}
    result = CliRunner().invoke(app, ["registry", "load", str(path)], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_load_publishes_every_unit_and_a_changed_file_again(broker: str, tmp_path: Path) -> None:
    create_topics(broker, [REGISTRY], partitions=4)  # as `energymon init` does; kept if it exists
    units = load_registry(SAMPLE)

    before = end_offsets(broker)
    out = load(broker, SAMPLE)
    assert f"published 20 registry records from {SAMPLE} to `registry`" in out
    first = records_after(broker, before, 20)
    assert len(first) == 20
    assert sorted((r.key, r.value) for r in first) == sorted((u.unit_id.encode(), u.to_json()) for u in units)
    assert all(UnitInfo.from_json(r.value).unit_id == r.key.decode() for r in first)
    partition_of = {r.key: r.partition for r in first}

    # change one unit's 2026 energy cap and load the file again: the new version follows the old one
    text = SAMPLE.read_text(encoding="utf-8")
    old_cap = units[0].targets_for(2026).energy_cap_tce  # type: ignore[union-attr]
    assert old_cap is not None
    old_line = f"energy_cap_tce: {old_cap:.0f}, energy_intensity_decline_pct"
    assert old_line in text
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace(old_line, "energy_cap_tce: 250000, energy_intensity_decline_pct", 1))
    between = end_offsets(broker)
    load(broker, changed)
    second = records_after(broker, between, 20)
    assert len(second) == 20
    latest = {r.key: UnitInfo.from_json(r.value) for r in sorted(second, key=lambda r: r.offset)}
    steel = latest[units[0].unit_id.encode()]
    assert steel.targets_for(2026).energy_cap_tce == 250000  # type: ignore[union-attr]
    assert steel.targets_for(2025) == units[0].targets_for(2025)
    assert {k: v for k, v in latest.items() if k != units[0].unit_id.encode()} == {
        u.unit_id.encode(): u for u in units[1:]
    }
    assert all(partition_of[r.key] == r.partition for r in second)  # same key, same partition


def test_load_reports_an_unreachable_broker(tmp_path: Path) -> None:
    env = {"ENERGYMON_KAFKA__BOOTSTRAP_SERVERS": "", "ENERGYMON_KAFKA__TANSU": "false"}
    result = CliRunner().invoke(app, ["registry", "load", str(SAMPLE)], env=env)
    assert result.exit_code == 1
    assert "no Kafka broker configured" in result.stderr
