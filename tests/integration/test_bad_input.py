"""Bad input through the real pipeline: a Faust worker (child process) on a tansu broker of its own,
writing to a real InfluxDB, fed generated bad messages mixed with good ones (tests/property/
bad_input.py: the same cases as the property tests, drawn once, derandomized).

Three equal waves of bad input go in (~300 messages and ~20 MB each), each beside good scans of
three units:

* every bad message and every bad reading is a dead letter on `readings.rejected` with its rule (and,
  for a schema rule, the check), and nothing else is: the dead letters are counted exactly;
* every good reading is an `energy` point in InfluxDB (the good readings beside bad ones too), with
  its quantity; the later waves' repeats add no point;
* each unit's `data_quality` point of the day counts its refusals (`rejected`), the good units' scans
  from ten days back among them as `late`;
* the worker keeps running, and its RSS after the third wave is within :data:`RSS_SLACK_MB` of its
  RSS after the second (the first warms it up).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from energy import topics
from energy.registry import UnitInfo
from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.influxdb import create_database, query
from energymon.localstack.ports import free_port
from energymon.localstack.process import ManagedProcess
from streams.status import STATUS_FILE, read_status
from tests.integration.pipeline_helpers import Quiet, energymon_argv, wait_until, worker_env
from tests.property.bad_input import (
    NOW_MS,
    UNIT_ID,
    Case,
    bad_messages,
    dumps,
    envelope,
    ledger_cases,
    profile,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

#: How many generated cases of each kind a wave holds.
WHOLE_MESSAGES, SCANS_WITH_BAD_READINGS = 120, 120
#: Good units and their scans per wave (two interval meters each, 15 minutes apart).
GOOD_UNITS, GOOD_SCANS = ("GOOD-1", "GOOD-2", "GOOD-3"), 20
#: Messages of ~900 kB in a wave (half 10,001 readings, half one reading with a 900,000-character id).
HUGE_MESSAGES = 24
#: The RSS (MB) the worker may gain over a wave equal to the one before, after a first wave that warms
#: it up (first use of each code path, buffers sized for 1 MB messages): half of what a wave carries
#: (~20 MB of messages), so a worker keeping the messages of a wave, or anything their size, fails.
#: A wave adds no unit and no meter (the bad cases' good readings are repeats; the good units' new
#: scans add a few kB of interval and period state) and every cache is bounded; what remains is
#: allocator noise, measured here at 0–4 MB (the worker runs with glibc's mmap threshold fixed at
#: 128 kB, so that each ~1 MB buffer is a mapping of its own, returned when freed; with the default,
#: moving threshold they land in the heap and its fragments add up to ~8 MB of noise).
RSS_SLACK_MB = 10.0
#: The good scans' first interval end: 02:00 China time, so that three waves of scans (15 h) stay in
#: one China day, the day their refusals are counted in.
T0 = NOW_MS - 6 * 86_400_000 - 8 * 3_600_000


def generate(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` examples of ``strategy``, the same every run (hypothesis as a derandomized generator)."""
    found: list[Any] = []

    @profile(n)
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    collect()
    return found[:n]


class Wave:
    """The messages of one wave, keyed for the `readings` topic, and what must become of them."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes | None, bytes]] = []
        self.rules: Counter[str] = Counter()  # dead letters expected, by rule
        self.points: dict[str, tuple[int, float]] = {}  # unit → (energy points, sum of qty)
        self.refused: dict[str, tuple[int, int]] = {}  # unit (with points) → (late, rejected) it counts


@cache
def cases() -> tuple[list[Case], list[Case]]:
    """The generated cases of a wave: messages refused whole, and scans with bad readings."""
    return generate(bad_messages(), WHOLE_MESSAGES), generate(ledger_cases(), SCANS_WITH_BAD_READINGS)


def build_wave(wave_no: int) -> Wave:
    """Generated bad cases (the same in every wave) interleaved with this wave's good scans."""
    wave = Wave()
    bad: list[tuple[bytes | None, bytes]] = []
    whole, scans = cases()
    for case in whole:
        assert case.whole is not None
        bad.append((UNIT_ID.encode(), case.raw))
        wave.rules[case.whole.rule] += 1
    for i, case in enumerate(scans):
        unit = f"LC{i:03d}"  # a unit per case: its one scan is never too late
        raw = case.raw.replace(f'"unit_id":"{UNIT_ID}"'.encode(), f'"unit_id":"{unit}"'.encode(), 1)
        bad.append((unit.encode(), raw))
        wave.rules.update(e.rule for e in case.bad_expectations)
        if case.good_meter_ids:
            doc = orjson.loads(raw)
            qty = sum(r["value"] for r in doc["readings"] if r.get("meter_id") in case.good_meter_ids)
            wave.points[unit] = (len(case.good_meter_ids), qty)
            wave.refused[unit] = (0, len(case.bad_expectations))
    for raw, why in huge_cases():
        bad.append((UNIT_ID.encode(), raw))
        wave.rules[why] += 1
    good = good_scans(wave_no)
    step = max(1, len(bad) // len(good))
    for n, message in enumerate(good):  # a good scan, then a few bad messages, and so on
        wave.messages.append(message)
        wave.messages += bad[n * step : (n + 1) * step]
    wave.messages += bad[len(good) * step :]
    for unit in GOOD_UNITS:
        wave.points[unit] = (2 * GOOD_SCANS, sum(good_values(unit, wave_no)))
        wave.refused[unit] = (2, 2)  # its scan from ten days back: two readings too late
        wave.rules["too_late"] += 2
    return wave


def huge_cases() -> list[tuple[bytes, str]]:
    """Messages near Kafka's 1 MB: 10,001 small readings (refused whole), and one reading whose meter
    id is 900,000 characters (refused alone, in a dead letter that keeps a preview of it)."""
    tiny = {"meter_id": "E", "energy": "e", "kind": "rate", "value": 1, "uom": "u", "ts": T0}
    long_id = dict(tiny, meter_id="x" * 900_000, energy="electricity", kind="interval", uom="kWh")
    cases = [(dumps(envelope([tiny] * 10_001)), "bad_envelope"), (dumps(envelope([long_id])), "bad_reading")]
    return cases * (HUGE_MESSAGES // 2)


def good_values(unit: str, wave_no: int) -> list[float]:
    base = 10.0 * GOOD_UNITS.index(unit) + 100.0 * wave_no
    return [base + k * 0.25 + meter for k in range(GOOD_SCANS) for meter in (0.125, 0.5)]


def good_scans(wave_no: int) -> list[tuple[bytes | None, bytes]]:
    """Each good unit's scans of this wave, in time order per unit (two interval meters)."""
    scans: list[tuple[bytes | None, bytes]] = []
    for k in range(GOOD_SCANS):
        for unit in GOOD_UNITS:
            ts = T0 + (wave_no * GOOD_SCANS + k) * 900_000
            values = good_values(unit, wave_no)[2 * k : 2 * k + 2]
            readings = [
                {"meter_id": m, "energy": e, "kind": "interval", "value": v, "uom": u, "ts": ts}
                for (m, e, u), v in zip(
                    (("E1", "electricity", "kWh"), ("N1", "natural_gas", "m³")), values, strict=True
                )
            ]
            scans.append((unit.encode(), orjson.dumps(envelope(readings, unit_id=unit, seq=k))))
            if k == 1:  # then one from ten days back: older than the lateness window allows
                late = [dict(r, ts=ts - 10 * 86_400_000) for r in readings]
                scans.append((unit.encode(), orjson.dumps(envelope(late, unit_id=unit, seq=k))))
    return scans


class Worker:
    """A worker child process on its own broker and database, and how to read what it did."""

    def __init__(self, bootstrap: str, influx: str, state: Path) -> None:
        self.bootstrap, self.influx, self.state = bootstrap, influx, state
        self.database = f"bad_input_{time.time_ns()}"
        create_database(influx, self.database)
        env = worker_env(bootstrap, influx, self.database, state, MALLOC_MMAP_THRESHOLD_="131072")
        self.process = ManagedProcess("worker", energymon_argv("worker"), state / "worker.log", env=env)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=2 * 1024 * 1024)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        parts = [TopicPartition(topics.READINGS_REJECTED, p) for p in range(4)]
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning(*parts)
        self.dead_letters: list[dict[str, Any]] = []

    def status(self) -> dict[str, Any]:
        return read_status(self.state / STATUS_FILE) or {}

    def send(self, messages: list[tuple[bytes | None, bytes]]) -> None:
        for key, value in messages:
            self.producer.send(topics.READINGS, key=key, value=value)
        self.producer.flush(30)

    def read_dead_letters(self) -> int:
        for batch in self.consumer.poll(timeout_ms=200, max_records=5000).values():
            self.dead_letters += [orjson.loads(r.value) for r in batch]
        return len(self.dead_letters)

    def points(self) -> dict[str, tuple[int, float]]:
        series = query(
            self.influx, self.database, 'SELECT count("qty"), sum("qty") FROM "energy" GROUP BY "unit_id"'
        )
        return {s["tags"]["unit_id"]: (s["values"][0][1], s["values"][0][2]) for s in series}

    def refusals(self) -> dict[str, tuple[float, float]]:
        """unit → (late, rejected) of its newest data_quality point that has them."""
        series = query(
            self.influx, self.database,
            'SELECT last("late"), last("rejected") FROM "data_quality" GROUP BY "unit_id"',
        )  # fmt: skip
        return {s["tags"]["unit_id"]: (s["values"][0][1], s["values"][0][2]) for s in series}

    def written(self) -> int:
        """Energy points in InfluxDB."""
        return sum(n for n, _ in self.points().values())

    def rss_mb(self) -> float:
        assert self.process.pid is not None
        return float(psutil.Process(self.process.pid).memory_info().rss) / 2**20

    def settle(self, dead_letters: int, points: int) -> None:
        """Wait until the dead letters and points of everything sent are there, and all is quiet."""
        children = [self.process]
        wait_until(
            f"{dead_letters} dead letters", lambda: self.read_dead_letters() >= dead_letters, 60, children
        )
        wait_until(f"{points} energy points", lambda: self.written() >= points, 60, children)
        progress = Quiet(lambda: (self.read_dead_letters(), self.status().get("messages")), 1.5)
        wait_until("a quiet worker", progress, 30, children)


@pytest.fixture(scope="module")
def worker(influx: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    state = tmp_path_factory.mktemp("bad-input")
    broker = TansuBroker(free_port(), log_path=state / "tansu.log")
    broker.start()
    try:
        create_topics(
            broker.bootstrap, [topics.READINGS, topics.READINGS_REJECTED, topics.ALERTS, topics.REGISTRY], 4
        )
        w = Worker(broker.bootstrap, influx, state)
        units = [UNIT_ID, *GOOD_UNITS, *(f"LC{i:03d}" for i in range(SCANS_WITH_BAD_READINGS))]
        for unit in units:
            info = UnitInfo(unit_id=unit, name=unit, region="江苏", grid_region="华东", industry="steel")
            w.producer.send(topics.REGISTRY, key=unit.encode(), value=info.to_json())
        w.producer.flush(10)
        w.process.start()
        try:
            known = lambda: w.status().get("units_known", 0) >= len(units)  # noqa: E731
            wait_until("the worker to know the units", known, 60, [w.process])
            yield w
        finally:
            w.process.stop(15)
            print(f"--- worker log tail\n{w.process.log_tail(30)}")
            w.producer.close()
            w.consumer.close()
    finally:
        broker.stop()


def test_two_waves_of_bad_input_are_dead_letters_good_readings_land_and_memory_stays_bounded(
    worker: Worker,
) -> None:
    waves = [build_wave(n) for n in range(3)]
    expected_rules: Counter[str] = Counter()
    rss: list[float] = []
    for n, wave in enumerate(waves):
        worker.send(wave.messages)
        expected_rules.update(wave.rules)
        good_points = sum(points for unit, (points, _) in wave.points.items() if unit in GOOD_UNITS)
        lc_points = sum(points for unit, (points, _) in wave.points.items() if unit not in GOOD_UNITS)
        worker.settle(sum(expected_rules.values()), (n + 1) * good_points + lc_points)
        rss.append(worker.rss_mb())
        print(f"wave {n + 1}: {len(wave.messages)} messages, {sum(wave.rules.values())} dead letters, "
              f"worker RSS {rss[-1]:.1f} MB")  # fmt: skip

    # every bad message and reading is a dead letter with its rule, and nothing else is
    assert Counter(d["rule"] for d in worker.dead_letters) == expected_rules
    assert all(d["detail"] for d in worker.dead_letters)
    schema_rules = {"bad_envelope", "bad_reading"}
    assert all(d.get("check") for d in worker.dead_letters if d["rule"] in schema_rules)

    # every good reading is a point, once
    got = worker.points()
    for unit, (points, qty) in waves[0].points.items():
        if unit in GOOD_UNITS:  # new scans in every wave
            points, qty = points * len(waves), sum(w.points[unit][1] for w in waves)
        assert got.get(unit, (0, 0.0))[0] == points, unit
        assert got[unit][1] == pytest.approx(qty, rel=1e-9, abs=1e-9), unit
    assert set(got) <= set(waves[0].points)

    # each unit's refusals of the day, all waves (a unit's refusals are written once it has a day)
    refusals = worker.refusals()
    for unit, (late, rejected) in waves[0].refused.items():
        assert refusals.get(unit) == (len(waves) * late, len(waves) * rejected), unit

    # the worker is still running, and an equal wave after the warm-up did not grow it beyond the slack
    assert worker.process.alive
    assert rss[2] - rss[1] <= RSS_SLACK_MB, f"RSS after the waves: {rss} MB"
