"""End to end on real parts: replay a hand-written file through a real tansu broker into a real
Faust worker, and check the exact sums in a real InfluxDB, the dead letters on `readings.rejected`,
and the alert at a real HTTP receiver. What the file holds: tests/data/README.md.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from energy import topics
from energy.registry import UnitInfo
from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.influxdb import create_database, query
from energymon.localstack.ports import free_port
from energymon.localstack.process import ManagedProcess
from streams.status import STATUS_FILE, read_status
from tests.integration.pipeline_helpers import energymon_argv, sums_by_unit, wait_until, worker_env
from tests.receivers import WebhookReceiver

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "pipeline.jsonl"
LINES = 11
SECRET = "pipeline-test-secret"

# Domain facts (../shared/reference/domain.md), written out here so that the test checks the
# tables instead of trusting them: GB/T 2589 当量值 coefficients in tce per unit, CO₂ factors in t.
TCE_PER_KWH = 0.1229e-3
TCE_PER_M3_GAS = 1.2143e-3
TCE_PER_T_RAW_COAL = 0.7143
CO2_PER_KWH_NATIONAL_2023 = 0.5306e-3
CO2_PER_KWH_EAST_CHINA_2023 = 0.5500e-3  # 华东 regional average, 2023 data
CO2_PER_M3_GAS = 21.62e-4  # 21.62 tCO₂ per 10⁴ Nm³
CO2_PER_T_BITUMINOUS = 2.072  # 烟煤 as tabulated in §2.3 (NCV × carbon content × oxidation × 44/12, rounded)

EXPECTED = {
    # unit: (tce, tCO₂, energy points)
    "U1": (
        400 * TCE_PER_KWH + 30 * TCE_PER_M3_GAS + 1.25 * TCE_PER_T_RAW_COAL,
        400 * CO2_PER_KWH_EAST_CHINA_2023 + 30 * CO2_PER_M3_GAS + 1.25 * CO2_PER_T_BITUMINOUS,
        # one point per meter and 15-minute interval: E1 10:00 and 10:15 (its 10:10→10:20 segment is
        # split at 10:15), G1 10:00, C1 09:45 and 10:00
        5,
    ),
    "U2": (167.5 * TCE_PER_KWH, 167.5 * CO2_PER_KWH_NATIONAL_2023, 4),  # P1 10:00, 10:15; E2 10:00, 10:30
}
EXPECTED_REJECTIONS = sorted(
    ["uom_mismatch", "negative_quantity", "unknown_energy", "bad_reading", "not_json", "bad_envelope"]
)
ENERGY_POINTS = sum(points for _tce, _co2, points in EXPECTED.values())


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of this module's own, so that other tests' messages on `readings` stay out."""
    server = TansuBroker(free_port(), log_path=tmp_path_factory.mktemp("tansu-e2e") / "tansu.log")
    server.start()
    try:
        yield server.bootstrap
    finally:
        server.stop()


class Pipeline:
    def __init__(self, bootstrap: str, influx: str, database: str, state: Path, hook: WebhookReceiver):
        self.bootstrap, self.influx, self.database, self.state = bootstrap, influx, database, state
        self.env = worker_env(
            bootstrap, influx, database, state,
            ENERGYMON_ALERTS__WEBHOOK_URL=hook.url, ENERGYMON_ALERTS__WEBHOOK_SECRET=SECRET,
        )
        self.children = [
            ManagedProcess(name, energymon_argv(*args), state / f"{name}.log", env=self.env)
            for name, args in (("worker", ["worker"]), ("alerts", ["alerts", "run"]))
        ]

    def status(self) -> dict[str, Any] | None:
        return read_status(self.state / STATUS_FILE)

    def replay(self) -> None:
        done = subprocess.run(
            energymon_argv("replay", str(DATA)),
            env=self.env, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert f"published {LINES} messages" in done.stdout

    def energy_by_unit(self, measurement: str = "energy") -> dict[str, tuple[float, float, int]]:
        return sums_by_unit(self.influx, self.database, measurement)

    def rejected(self) -> list[dict[str, Any]]:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            parts = [TopicPartition(topics.READINGS_REJECTED, p)
                     for p in consumer.partitions_for_topic(topics.READINGS_REJECTED) or ()]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            records: list[dict[str, Any]] = []
            idle = 0
            while idle < 3:
                batch = consumer.poll(timeout_ms=300)
                idle = 0 if batch else idle + 1
                for recs in batch.values():
                    records += [orjson.loads(r.value) for r in recs]
            return records
        finally:
            consumer.close()


@pytest.fixture(scope="module")
def pipeline(own_broker: str, influx: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    state = tmp_path_factory.mktemp("pipeline-state")
    database = f"e2e_{int(time.time() * 1000)}"
    create_topics(own_broker, [topics.READINGS, topics.READINGS_REJECTED, topics.ALERTS, topics.REGISTRY], 4)
    create_database(influx, database)
    producer = KafkaProducer(bootstrap_servers=own_broker)
    u1 = UnitInfo(unit_id="U1", name="Test steel works", region="江苏", grid_region="华东",
                  industry="steel", hourly_tce_ceiling=0.5)
    producer.send(topics.REGISTRY, key=b"U1", value=u1.to_json()).get(timeout=10)
    producer.close()
    with WebhookReceiver(secret=SECRET) as hook:
        p = Pipeline(own_broker, influx, database, state, hook)
        p.hook = hook  # type: ignore[attr-defined]
        for child in p.children:
            child.start()
        try:
            wait_until("the worker to know unit U1",
                       lambda: (p.status() or {}).get("units_known", 0) >= 1, 90, p.children)
            p.replay()
            yield p
        finally:
            for child in p.children:
                child.stop(15)
            for child in p.children:
                print(f"--- {child.name} log tail\n{child.log_tail(40)}")


def test_exact_tce_and_co2_per_unit_in_influxdb(pipeline: Pipeline) -> None:
    got = wait_until(
        f"{ENERGY_POINTS} energy points",
        lambda: (lambda e: e if sum(v[2] for v in e.values()) >= ENERGY_POINTS else None)(
            pipeline.energy_by_unit()
        ),
    )
    assert set(got) == set(EXPECTED)
    for unit, (tce, co2, points) in EXPECTED.items():
        assert got[unit][2] == points, unit
        assert got[unit][0] == pytest.approx(tce, rel=1e-9), unit
        assert got[unit][1] == pytest.approx(co2, rel=1e-9), unit


def test_unit_interval_totals_add_up_to_the_readings(pipeline: Pipeline) -> None:
    wait_until(
        "energy points", lambda: sum(v[2] for v in pipeline.energy_by_unit().values()) >= ENERGY_POINTS
    )
    intervals = pipeline.energy_by_unit("unit_energy")
    for unit, (tce, co2, _points) in EXPECTED.items():
        assert intervals[unit][0] == pytest.approx(tce, rel=1e-9)
        assert intervals[unit][1] == pytest.approx(co2, rel=1e-9)


def test_every_bad_input_is_a_dead_letter_with_its_rule(pipeline: Pipeline) -> None:
    wait_until("dead letters", lambda: len(pipeline.rejected()) >= len(EXPECTED_REJECTIONS))
    records = pipeline.rejected()
    assert sorted(r["rule"] for r in records) == EXPECTED_REJECTIONS
    assert all(r["detail"] for r in records)


def test_a_falling_register_is_a_detected_meter_swap_not_a_negative(pipeline: Pipeline) -> None:
    series = wait_until(
        "the meter event",
        lambda: query(pipeline.influx, pipeline.database, 'SELECT "detail" FROM "meter_event" GROUP BY *'),
    )
    assert [(s["tags"]["unit_id"], s["tags"]["meter_id"], s["tags"]["event"]) for s in series] == [
        ("U2", "E2", "meter_swap_detected")
    ]


def test_the_alert_reaches_the_webhook_signed(pipeline: Pipeline) -> None:
    hook: WebhookReceiver = pipeline.hook  # type: ignore[attr-defined]
    (request,) = hook.wait_for(1, timeout_s=60, accepted=True)
    alert = orjson.loads(request.body)
    assert (alert["unit_id"], alert["rule"], alert["state"], alert["severity"]) == (
        "U1", "hourly_ceiling", "raised", "red"
    )
    assert alert["value"] > 0.5 and alert["threshold"] == 0.5
    assert request.signature_ok is True


def test_a_second_replay_changes_no_total(pipeline: Pipeline) -> None:
    wait_until("the first replay", lambda: (pipeline.status() or {}).get("messages", 0) >= LINES)
    before = pipeline.energy_by_unit()
    pipeline.replay()
    wait_until("the second replay", lambda: (pipeline.status() or {}).get("messages", 0) >= 2 * LINES)
    # The worker counts a batch only after its points were written, so they are all there now.
    after = pipeline.energy_by_unit()
    assert set(after) == set(before)
    for unit in before:
        assert after[unit][2] == before[unit][2]
        assert after[unit][0] == pytest.approx(before[unit][0], rel=1e-12)
        assert after[unit][1] == pytest.approx(before[unit][1], rel=1e-12)
    hook: WebhookReceiver = pipeline.hook  # type: ignore[attr-defined]
    assert len(hook.accepted) == 1, "the replay raised the alert again"
