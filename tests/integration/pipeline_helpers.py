"""What the end-to-end tests share: waiting on a condition while watching child processes, the
environment of a local worker, a worker run over a list of messages (:class:`PipelineRun`), group
progress on the broker, per-unit sums read back from InfluxDB and the in-process oracle that says
what they should be (:func:`expected_after`)."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaProducer

from collectors.simulator import Fleet
from energy import topics
from energy.alert import Alert
from energy.registry import UnitInfo
from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.influxdb import create_database, query
from energymon.localstack.ports import free_port
from energymon.localstack.process import ManagedProcess
from energymon.settings import Settings
from streams.app import batch_processor
from streams.recovery import fetched_log_ends
from streams.state import UnitStateStore
from streams.status import STATUS_FILE, read_status


def wait_until(
    what: str,
    check: Callable[[], Any],
    timeout_s: float = 60.0,
    children: Iterable[ManagedProcess] = (),
    poll_s: float = 0.25,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail with the log tail of any
    of ``children`` that exits meanwhile, or after ``timeout_s`` with the log tails of all of them
    (and what ``explain()`` says then)."""
    children = list(children)
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        for child in children:
            if not child.alive:
                raise AssertionError(f"{child.name} exited while waiting for {what}:\n{child.log_tail(30)}")
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {child.name} log tail\n{child.log_tail(15)}" for child in children)
            state = f" ({explain()})" if explain is not None else ""
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{state}{tails}")
        time.sleep(poll_s)


class Quiet:
    """A check for :func:`wait_until`: true once ``probe()`` has returned the same value for
    ``quiet_s`` seconds in a row."""

    def __init__(self, probe: Callable[[], Any], quiet_s: float) -> None:
        self.probe, self.quiet_s = probe, quiet_s
        self.last: Any = None
        self.since = time.monotonic()

    def __call__(self) -> bool:
        now = self.probe()
        if now != self.last:
            self.last, self.since = now, time.monotonic()
            return False
        return time.monotonic() - self.since >= self.quiet_s


def worker_env(bootstrap: str, influx: str, database: str, state: Path, **extra: str) -> dict[str, str]:
    """The environment of an energymon child process on a tansu broker with an in-memory store."""
    return {
        **os.environ,
        "ENERGYMON_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ENERGYMON_KAFKA__TANSU": "true",
        "ENERGYMON_INFLUX__URL": influx,
        "ENERGYMON_INFLUX__DATABASE": database,
        "ENERGYMON_STATE_DIR": str(state),
        "ENERGYMON_STREAM__STORE": "memory://",
        "ENERGYMON_STREAM__BATCH_WITHIN_S": "0.2",
        **extra,
    }


def energymon_argv(*args: str) -> list[str]:
    """The command line of ``energymon ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "energymon", *args]


def sums_by_unit(influx: str, database: str, measurement: str) -> dict[str, tuple[float, float, int]]:
    """``unit_id → (sum tce, sum co2_t, number of points)`` of one measurement."""
    series = query(
        influx,
        database,
        f'SELECT sum("tce"), sum("co2_t"), count("tce") FROM "{measurement}" GROUP BY "unit_id"',
    )
    return {s["tags"]["unit_id"]: (s["values"][0][1], s["values"][0][2], s["values"][0][3]) for s in series}


def collect_records(consumer: Any, expected: int, deadline: float) -> list[Any]:
    """Poll an assigned and positioned kafka-python consumer until it has ``expected`` records and
    then one second more (to catch extras), or until ``deadline`` (time.monotonic())."""
    records: list[Any] = []
    quiet_until: float | None = None
    while time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
        if len(records) >= expected:
            if quiet_until is None:
                quiet_until = time.monotonic() + 1.0
            elif time.monotonic() >= quiet_until:
                break
    return records


def status_counter(state: Path, name: str) -> int:
    """A counter of the worker status file in ``state`` (0 before the file exists)."""
    return int((read_status(state / STATUS_FILE) or {}).get(name, 0))


class PipelineRun:
    """A private tansu broker (memory storage) with every topic, a fresh database and ``energymon
    worker`` that knows ``units``, run over ``messages`` (topic, value, key): entering returns once
    the worker has processed them all and its status stopped moving (``timeout_s`` for that); leaving
    stops the worker (printing its log tail: pytest shows it with a failure) and the broker."""

    TOPICS = (topics.READINGS, topics.OUTPUT, topics.READINGS_REJECTED, topics.ALERTS, topics.REGISTRY)

    def __init__(
        self,
        influx: str,
        state: Path,
        units: Sequence[UnitInfo],
        messages: Sequence[tuple[str, bytes, str]],
        database_prefix: str,
        timeout_s: float = 60.0,
        **env: str,
    ) -> None:
        self.influx, self.state, self.units, self.messages = influx, state, units, messages
        self.database = f"{database_prefix}_{time.time_ns()}"
        self.timeout_s = timeout_s
        self.env = env
        self.server = TansuBroker(free_port(), log_path=state / "tansu.log")
        self.worker: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return self.server.bootstrap

    def __enter__(self) -> PipelineRun:
        self.server.start()
        try:
            self._run()
        except BaseException:
            self._stop()
            raise
        return self

    def _run(self) -> None:
        create_topics(self.bootstrap, self.TOPICS, 4)
        create_database(self.influx, self.database)
        env = worker_env(self.bootstrap, self.influx, self.database, self.state, **self.env)
        worker = ManagedProcess("worker", energymon_argv("worker"), self.state / "worker.log", env=env)
        self.worker = worker
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        try:
            for u in self.units:
                producer.send(topics.REGISTRY, key=u.unit_id.encode(), value=u.to_json())
            producer.flush()
            worker.start()
            wait_until(
                "the worker to know the units",
                lambda: status_counter(self.state, "units_known") >= len(self.units),
                90,
                [worker],
            )
            for topic, value, key in self.messages:
                producer.send(topic, key=key.encode(), value=value)
            producer.flush()
        finally:
            producer.close()
        wait_until(
            "the messages to be processed",
            lambda: status_counter(self.state, "messages") >= len(self.messages),
            self.timeout_s,
            [worker],
        )
        settled = Quiet(lambda: status_counter(self.state, "messages"), 2.0)
        wait_until("the worker to settle", settled, 30, [worker])

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.worker is not None:
            self.worker.stop(15)
            print(f"--- worker log tail\n{self.worker.log_tail(30)}")
        self.server.stop()


# -- progress on the broker ---------------------------------------------------------------------


def committed(bootstrap: str, group: str, topic: str, tries: int = 4) -> int:
    """The group's committed offsets on ``topic``, summed over partitions (0 for none).

    A group's committed offsets only grow, but tansu now and then answers the offset fetch with
    none (a fresh-clone run read 0 just after the same group had been read at 2,246): a 0 is asked
    again, up to ``tries`` reads 0.3 s apart, before it is believed."""
    total = 0
    for attempt in range(tries):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            offsets = admin.list_group_offsets(group).get(group, {})
        finally:
            admin.close()
        total = sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
        if total or attempt == tries - 1:
            break
        time.sleep(0.3)
    return total


def log_end(bootstrap: str, topic: str, partitions: int) -> int:
    """The end offsets of ``topic`` summed over its partitions, as fetches report them (tansu's
    ListOffsets can fall short: streams/recovery.py)."""
    from faust.types import TP

    ends = fetched_log_ends({"bootstrap_servers": bootstrap}, {TP(topic, p): 0 for p in range(partitions)})
    return sum(ends.values())


# -- replays and their oracle ----------------------------------------------------------------------


def fleet_replay(fleet: Fleet, start_ms: int, minutes: int) -> list[bytes]:
    """Scans of ``fleet`` in time order, each unit once a minute from ``start_ms`` for ``minutes``;
    every 50th line delivered again at once and every 50th (another phase) again 20 lines later, as
    a collector's retries would (``seq`` is the scan time)."""
    scans: list[bytes] = []
    previous: int | None = None
    for minute in range(minutes):
        t_ms = start_ms + minute * 60_000
        scans += [orjson.dumps(fleet.scan(u, t_ms, seq=t_ms, previous_t_ms=previous)) for u in fleet.units]
        previous = t_ms
    lines: list[bytes] = []
    for i, scan in enumerate(scans):
        lines.append(scan)
        if i % 50 == 7:
            lines.append(scan)
        if i % 50 == 30 and i >= 20:
            lines.append(scans[i - 20])
    return lines


EnergyKey = tuple[str, str, int]
"""An `energy` point: (unit_id, meter_id, time in ms)."""
Sums = dict[str, tuple[float, float, int]]
"""unit_id → (sum of tce, sum of tCO₂, number of points) of one measurement."""
SUMMED = ("energy", "unit_energy")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


@dataclass
class Expected:
    """What one in-process pass over a replay's lines leaves: per measurement of :data:`SUMMED`
    the per-unit sums InfluxDB should hold, the alerts the worker emits (in order), and after each
    line the number of distinct `energy` points written so far (``energy_points[i]``: after ``i``
    lines), and each of those points (unit, meter, time in ms) with the number of lines after which
    it is first written (``energy_first``)."""

    sums: dict[str, Sums]
    alerts: list[Alert]
    energy_points: list[int] = field(default_factory=list)
    energy_first: dict[EnergyKey, int] = field(default_factory=dict)


def expected_after(
    lines: Sequence[bytes],
    units: Mapping[str, UnitInfo] | None = None,
    settings: Settings | None = None,
) -> Expected:
    """The oracle of a replay: ``lines`` (raw `readings` messages, in order) run through the worker's
    own :class:`~streams.processor.BatchProcessor` (built by ``streams.app.batch_processor`` from
    ``settings``, default: the defaults), one message per call (the results do not depend on the
    batching: ledgers work message by message), with ``units`` as the registry. Of the points it
    keeps what InfluxDB keeps: one per series and time, the last one written."""
    processor = batch_processor(settings or Settings(_env_file=None))  # type: ignore[call-arg]
    registry = units or {}
    # One batch as long as the replay: the units' states stay in memory and are never stored, so
    # the oracle does not share the worker's storage code (and its bugs).
    states = UnitStateStore({})
    kept: dict[tuple[str, int], tuple[str, str, float, float]] = {}  # (series, ts) → point
    alerts: list[Alert] = []
    energy_points = [0]
    energy_series: set[tuple[str, int]] = set()
    energy_first: dict[EnergyKey, int] = {}
    for raw in lines:
        out = processor.process([raw], states, registry.get)
        alerts += out.alerts
        for line in out.lines:
            measurement = line.split(",", 1)[0]
            if measurement not in SUMMED:
                continue
            series, field_text, ts = line.rsplit(" ", 2)  # these points have no string fields
            tags = dict(item.split("=", 1) for item in _UNESCAPED_COMMA.split(series)[1:])
            fields = dict(item.split("=", 1) for item in field_text.split(","))
            point = (series, int(ts))
            kept[point] = (measurement, tags["unit_id"], float(fields["tce"]), float(fields["co2_t"]))
            if measurement == "energy":
                energy_series.add(point)
                energy_first.setdefault((tags["unit_id"], tags["meter_id"], int(ts)), len(energy_points))
        energy_points.append(len(energy_series))
    sums: dict[str, dict[str, list[float]]] = {m: {} for m in SUMMED}
    for measurement, unit, tce, co2 in kept.values():
        acc = sums[measurement].setdefault(unit, [0.0, 0.0, 0.0])
        acc[0] += tce
        acc[1] += co2
        acc[2] += 1
    return Expected(
        {m: {u: (a[0], a[1], int(a[2])) for u, a in by_unit.items()} for m, by_unit in sums.items()},
        alerts,
        energy_points,
        energy_first,
    )


def energy_keys(influx: str, database: str) -> set[EnergyKey]:
    """The `energy` points InfluxDB holds, as (unit_id, meter_id, time in ms)."""
    series = query(influx, database, 'SELECT "tce" FROM "energy" GROUP BY "unit_id", "meter_id"', epoch="ms")
    return {(s["tags"]["unit_id"], s["tags"]["meter_id"], int(row[0])) for s in series for row in s["values"]}


def assert_same_sums(got: dict[str, Sums], expected: dict[str, Sums]) -> None:
    """Per measurement and unit: the same number of points, tce and tCO₂ to 1e-9 relative."""
    import pytest

    for measurement, by_unit in expected.items():
        assert set(got[measurement]) == set(by_unit), measurement
        for unit, (tce, co2, points) in by_unit.items():
            g_tce, g_co2, g_points = got[measurement][unit]
            where = (
                f"{measurement} {unit}: got tce={g_tce!r} co2={g_co2!r} points={g_points}, "
                f"expected tce={tce!r} co2={co2!r} points={points}"
            )
            assert g_points == points, where
            assert g_tce == pytest.approx(tce, rel=1e-9), where
            assert g_co2 == pytest.approx(co2, rel=1e-9), where
