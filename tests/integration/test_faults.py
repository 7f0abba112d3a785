"""Faults injected while a known replay streams through the real pipeline: nothing lost, nothing
counted twice, every alert delivered once.

One stack for the module, every part a real process on free ports: a local S3 server (moto) and a
tansu broker on it with ``s3://`` storage (the broker can be restarted without losing anything),
a private influxd, ``energymon worker`` and ``energymon alerts run`` whose routing sends every alert
and its resolve over a signed webhook to a local receiver (``tests/receivers.py``). The replay is the
simulated fleet (:func:`~tests.integration.pipeline_helpers.fleet_replay`: one scan per unit and
minute, some lines delivered twice) with the registry of its units; its two heavy units raise an
`hourly_ceiling` alert in the first hour, and three lighter ones run a generator test every 90 minutes
of data (:func:`with_surges`), so alerts are raised and resolved in every test's share. A paced feed
publishes it through the collectors' :class:`~collectors.publisher.Publisher` (at-least-once: a
group of lines whose acknowledgement failed is sent again). Each test takes the next share of the
replay and breaks one thing while it streams:

* the worker SIGKILLed at random moments while it works, and started again, ``kills`` times;
* InfluxDB stopped for 60 s and started again on the same port and data directory;
* the broker stopped (for 3 s) and started again;
* the alert channel down (the receiver's port closed: connection refused) for a while.

After each, for everything published so far: per unit, the sums of tce and tCO₂ of the ``energy``
and ``unit_energy`` points equal the oracle's to 1e-9 relative and the number of points is exact
(``expected_after``: the worker's own processor run in this process), and the receiver accepted each
notification that the dispatcher's lifecycle and routing (``alerts.lifecycle``, ``alerts.routing``)
give for the oracle's alerts exactly once, and nothing else. Each fault prints a ``fault:`` line
with its recovery time (shown with ``-s``): from the restart until InfluxDB holds every `energy`
point of the lines acknowledged to the feed by then (the worker, InfluxDB), until the feed is
acknowledged again and the worker has caught up with it (the broker), or until every notification
that failed while the channel was down was accepted (the channel). The module's teardown prints them
all again.

``ENERGYMON_SOAK=1`` runs a longer replay with more of each fault (``make test-faults``);
``ENERGYMON_FAULT_SEED=N`` repeats the random moments of a run (its seed is printed).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from alerts.lifecycle import AlertRecord, Policy, on_change
from alerts.outbox import notification_id
from alerts.routing import RoutingConfig, targets
from collectors.publisher import Publisher, PublishError
from collectors.replay import line_key
from collectors.simulator import Fleet
from energy import topics
from energy.alert import Alert
from energy.registry import UnitInfo
from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.influxdb import LocalInfluxDB, create_database, query
from energymon.localstack.ports import free_port
from energymon.localstack.process import ManagedProcess
from energymon.localstack.s3 import LocalS3
from energymon.routing_file import load_routing
from energymon.settings import KafkaSettings, Settings
from streams.status import STATUS_FILE
from tests.integration.pipeline_helpers import (
    SUMMED,
    EnergyKey,
    Expected,
    assert_same_sums,
    committed,
    energy_keys,
    energymon_argv,
    expected_after,
    fleet_replay,
    log_end,
    status_counter,
    sums_by_unit,
    wait_until,
    worker_env,
)
from tests.receivers import DELIVERY_HEADER, WebhookReceiver

pytestmark = pytest.mark.integration

SOAK = os.environ.get("ENERGYMON_SOAK", "") not in ("", "0")
SEED = int(os.environ.get("ENERGYMON_FAULT_SEED") or time.time_ns() % 1_000_000)
FLEET_SEED = 7  # the replay is the same in every run; SEED only picks the moments of the faults
START_MS = int(datetime(2025, 3, 4, tzinfo=UTC).timestamp() * 1000)  # a Tuesday, 08:00 China time
APP_ID = "energymon"  # the worker's consumer group
PARTITIONS = 4
SECRET = "fault-test-webhook-secret"
CHANNEL = "hook"
BROKER_DOWN_S = 3.0
#: The worker's longest wait between two InfluxDB write attempts (s; the default is 30): it bounds
#: how late the worker notices that InfluxDB is back, and so the measured recovery.
INFLUX_RETRY_MAX_S = 5.0


#: Units that run a diesel generator test (4 t a minute for 5 minutes) every 90 minutes of data, from
#: this minute of the replay on: each raises `hourly_ceiling` and resolves it about 80 minutes later.
SURGES = {"sim-chemicals-001": 20, "sim-cement-002": 50, "sim-data_centre-001": 80}
SURGE_EVERY_MIN, SURGE_MIN, SURGE_T_PER_MIN = 90, 5, 4.0


def with_surges(lines: list[bytes], start_ms: int) -> list[bytes]:
    """``lines`` with a generator meter (``GEN-TEST``, diesel, an interval reading per scan) added to
    the scans of the units in :data:`SURGES`: 0 t, or :data:`SURGE_T_PER_MIN` a minute during a test."""
    out = []
    for line in lines:
        doc = orjson.loads(line)
        phase = SURGES.get(doc["unit_id"])
        if phase is not None:
            ts = doc["readings"][0]["ts"]
            testing = ((ts - start_ms) // 60_000 - phase) % SURGE_EVERY_MIN < SURGE_MIN
            generator = {"meter_id": "GEN-TEST", "energy": "diesel", "kind": "interval", "uom": "t"}
            doc["readings"].append({**generator, "value": SURGE_T_PER_MIN if testing else 0.0, "ts": ts})
            line = orjson.dumps(doc)
        out.append(line)
    return out


@dataclass(frozen=True)
class Plan:
    """How much of the replay each test publishes (share of its lines) and over how long (s), and
    how hard it breaks things. The kill test publishes over at most ``kill_publish_s``: the rest of
    its share goes at once when the kills are done (a restart takes 10-20 s here)."""

    units: int
    minutes: int
    kills: int
    kill_share: float
    kill_publish_s: float
    influx_outage_s: float
    influx_share: float
    broker_restarts: int
    broker_share: float
    broker_publish_s: float
    channel_down_s: float
    channel_share: float


PLAN = (
    Plan(10, 600, 20, 0.4, 600.0, 120.0, 0.2, 3, 0.2, 45.0, 60.0, 0.2)
    if SOAK
    else Plan(6, 240, 5, 0.35, 150.0, 60.0, 0.3, 1, 0.2, 12.0, 12.0, 0.15)
)
RECOVERIES: list[str] = []


def record(line: str) -> None:
    """Print a ``fault:`` line now and keep it for the module's summary."""
    RECOVERIES.append(line)
    print(f"fault: {line}", flush=True)


class Feed:
    """Publishes the replay's lines in order, paced, from a background thread; ``acked`` lines are
    acknowledged by the broker. A group whose flush fails is sent again on a new producer."""

    def __init__(self, kafka: KafkaSettings, lines: list[bytes]) -> None:
        self.kafka, self.lines = kafka, lines
        self.acked = 0
        self.resends = 0
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._rush = threading.Event()

    @property
    def busy(self) -> bool:
        """Whether a share is still being published."""
        return self._thread is not None and self._thread.is_alive()

    def publish(self, share: float, over_s: float) -> None:
        """Start publishing the next ``share`` of the lines (the rest, if fewer) over ``over_s`` s."""
        self.wait()
        self._rush.clear()
        start = self.acked
        end = min(len(self.lines), start + round(share * len(self.lines)))
        self._thread = threading.Thread(target=self._run, args=(start, end, over_s), daemon=True)
        self._thread.start()

    def rush(self) -> None:
        """Publish the rest of the current share without pausing."""
        self._rush.set()

    def wait(self, timeout_s: float = 120.0) -> None:
        """Wait for the current share to be acknowledged; raise what stopped it."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            assert not self._thread.is_alive(), "the feed did not finish"
            self._thread = None
        if self._error is not None:
            raise AssertionError("the feed failed") from self._error

    def _run(self, start: int, end: int, over_s: float) -> None:
        size = max(1, math.ceil((end - start) / max(1.0, over_s * 10)))  # at most ten groups a second
        every_s = over_s / max(1, math.ceil((end - start) / size))
        began = time.monotonic()
        publisher = Publisher(self.kafka, client_id="fault-feed")
        try:
            for n, first in enumerate(range(start, end, size)):
                group = self.lines[first : min(first + size, end)]
                while True:
                    try:
                        for line in group:
                            publisher.send(topics.READINGS, line_key(line), line)
                        publisher.flush()
                        break
                    except PublishError:
                        self.resends += 1
                        with contextlib.suppress(PublishError):
                            publisher.close(1.0)
                        publisher = Publisher(self.kafka, client_id="fault-feed")
                self.acked = first + len(group)
                self._rush.wait(max(0.0, began + (n + 1) * every_s - time.monotonic()))
        except BaseException as exc:
            self._error = exc
        finally:
            publisher.close(5.0)


def routing_file(directory: Path, url: str) -> Path:
    """Every alert of yellow and up, and its resolve, to one webhook contact."""
    (directory / "hook_secret").write_text(SECRET + "\n")
    options = {"url": url, "secret_file": str(directory / "hook_secret")}
    doc = {
        "channels": {CHANNEL: {"kind": "webhook", "options": options}},
        "always": [{"name": "监控中心", "channel": CHANNEL, "min_severity": "yellow"}],
    }
    path = directory / "routing.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def notifications(alerts: list[Alert], routing: RoutingConfig, units: dict[str, UnitInfo]) -> list[str]:
    """The delivery ids the dispatcher should send for ``alerts`` (in emission order), by its own
    lifecycle and routing rules (escalation off: the stack sets it hours away)."""
    fold_window_s = Settings(_env_file=None).alerts.fold_window_s  # type: ignore[call-arg]
    policy = Policy(fold_window_ms=round(fold_window_s * 1000), escalate_after_ms=None)
    records: dict[str, AlertRecord] = {}
    ids: list[str] = []
    for alert in alerts:
        step = on_change(records.get(alert.key), alert, 0, policy)
        records[alert.key] = step.record
        if step.kind is not None and step.route_at is not None:
            for t in targets(routing, units.get(alert.unit_id), step.kind, step.route_at):
                ids.append(notification_id(alert, step.kind, t.channel, t.recipient))
    return ids


class Stack:
    """Every process of the fault run, and what the tests ask of them."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.state = directory / "state"
        fleet = Fleet.generate(units=PLAN.units, seed=FLEET_SEED)
        self.units = {u.unit_id: u for u in fleet.registry_records()}
        self.lines = with_surges(fleet_replay(fleet, START_MS, PLAN.minutes), START_MS)
        self.full = expected_after(self.lines, self.units)
        self.s3 = LocalS3(free_port(), directory / "moto.log")
        self.broker = TansuBroker(free_port(), directory / "tansu.log", s3=self.s3)
        self.influx = LocalInfluxDB(directory / "influxdb", free_port())
        self.receiver = WebhookReceiver(secret=SECRET, port=free_port())
        self.database = "faults"
        self.worker: ManagedProcess | None = None
        self.workers = 0
        self.dispatcher: ManagedProcess | None = None
        self.feed = Feed(KafkaSettings(bootstrap_servers=self.broker.bootstrap, tansu=True), self.lines)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.s3.start()
        self.broker.start()
        self.influx.start()
        self.receiver.start()
        create_topics(
            self.broker.bootstrap,
            [topics.READINGS, topics.OUTPUT, topics.READINGS_REJECTED, topics.ALERTS, topics.REGISTRY],
            PARTITIONS,
        )
        create_database(self.influx.url, self.database)
        with Publisher(self.feed.kafka, client_id="fault-registry") as publisher:
            for unit in self.units.values():
                publisher.send(topics.REGISTRY, unit.unit_id, unit.to_json())
        self.routing_path = routing_file(self.dir, self.receiver.url)
        self.routing = load_routing(self.routing_path)
        env = {
            **os.environ,
            "ENERGYMON_KAFKA__BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "ENERGYMON_KAFKA__TANSU": "true",
            "ENERGYMON_STATE_DIR": str(self.dir / "alerts-state"),
            "ENERGYMON_ALERTS__ROUTING_FILE": str(self.routing_path),
            "ENERGYMON_ALERTS__OUTBOX_FILE": str(self.dir / "outbox.db"),
            "ENERGYMON_ALERTS__RETRY_INITIAL_S": "0.2",
            "ENERGYMON_ALERTS__RETRY_MAX_S": "2",
            "ENERGYMON_ALERTS__ESCALATE_AFTER_MIN": "100000",
        }
        self.dispatcher = ManagedProcess(
            "dispatcher", energymon_argv("alerts", "run"), self.dir / "dispatcher.log", env=env
        )
        self.dispatcher.start()
        self.start_worker()
        wait_until(
            "the worker to know the units",
            lambda: status_counter(self.state, "units_known") >= len(self.units),
            90,
            self.children,
        )

    def stop(self) -> None:
        self.feed.wait(60)
        for proc in (self.worker, self.dispatcher):
            if proc is not None:
                proc.stop(15)
        self.receiver.stop()
        self.influx.stop()
        self.broker.stop()
        self.s3.stop()

    @property
    def children(self) -> list[ManagedProcess]:
        return [p for p in (self.worker, self.dispatcher) if p is not None]

    def start_worker(self) -> ManagedProcess:
        """Start a worker (same group, same state dir) with a fresh status file."""
        (self.state / STATUS_FILE).unlink(missing_ok=True)
        self.workers += 1
        env = worker_env(
            self.broker.bootstrap,
            self.influx.url,
            self.database,
            self.state,
            ENERGYMON_STREAM__APP_ID=APP_ID,
            ENERGYMON_INFLUX__RETRY_MAX_BACKOFF_S=str(INFLUX_RETRY_MAX_S),
        )
        name = f"worker{self.workers}"
        self.worker = ManagedProcess(name, energymon_argv("worker"), self.state / f"{name}.log", env=env)
        self.worker.start()
        return self.worker

    # -- read-backs ---------------------------------------------------------------------------------

    def energy_points(self) -> int:
        """`energy` points in InfluxDB (-1 while it does not answer)."""
        try:
            series = query(self.influx.url, self.database, 'SELECT count("tce") FROM "energy"')
        except OSError:
            return -1
        return int(series[0]["values"][0][1]) if series else 0

    def points_due(self) -> int:
        """The `energy` points of every line acknowledged to the feed so far."""
        return self.full.energy_points[self.feed.acked]

    def accepted(self) -> list[str]:
        return [r.header(DELIVERY_HEADER) or "" for r in self.receiver.accepted]

    def missing(self, lines: int) -> list[EnergyKey]:
        """The `energy` points of the first ``lines`` lines that InfluxDB does not hold (all of them
        while it does not answer)."""
        try:
            held = energy_keys(self.influx.url, self.database)
        except OSError:
            held = set()
        return sorted(k for k, n in self.full.energy_first.items() if n <= lines and k not in held)

    def caught_up(self, what: str, lines: int, timeout_s: float = 120.0) -> float:
        """Wait until InfluxDB holds every `energy` point of the first ``lines`` lines (the points
        themselves, not just as many: later lines' points must not hide a lost one); the monotonic
        time it did."""

        def explain() -> str:
            gone = self.missing(lines)
            first = ", ".join(
                f"{u}/{m}@{ts} (line {self.full.energy_first[(u, m, ts)]})" for u, m, ts in gone[:8]
            )
            return f"{self.progress()}; {len(gone)} points of the first {lines} lines missing: {first}"

        wait_until(what, lambda: not self.missing(lines), timeout_s, self.children, 0.2, explain)
        return time.monotonic()

    def working(self) -> None:
        """Wait until the worker writes points (it has joined, recovered and is processing), or has
        nothing left to do (the feed is done and every point is in)."""
        before = self.energy_points()

        def moving() -> bool:
            now = self.energy_points()
            return now > before or (not self.feed.busy and now >= self.points_due())

        wait_until("the worker to write points", moving, 60, self.children, 0.1, self.progress)

    def progress(self) -> str:
        """Where the feed, the worker and InfluxDB are (for failure messages)."""
        end = log_end(self.broker.bootstrap, topics.READINGS, PARTITIONS)
        return (
            f"feed {'busy' if self.feed.busy else 'idle'} at line {self.feed.acked}, readings end {end}, "
            f"committed {self.committed()}, energy points {self.energy_points()} of {self.points_due()} due, "
            f"worker messages {status_counter(self.state, 'messages')}"
        )

    def committed(self) -> int:
        """The worker group's committed offsets on `readings`, summed."""
        return committed(self.broker.bootstrap, APP_ID, topics.READINGS)

    def notifications_due(self) -> list[str]:
        """The delivery ids of the alerts of every line acknowledged to the feed so far."""
        alerts = expected_after(self.lines[: self.feed.acked], self.units).alerts
        return notifications(alerts, self.routing, self.units)

    # -- the check after each fault -----------------------------------------------------------------

    def check(self, fault: str) -> Expected:
        """Everything published so far is in InfluxDB once, and every notification arrived once."""
        self.feed.wait()
        self.caught_up(f"every point of the messages published ({fault})", self.feed.acked)
        end = log_end(self.broker.bootstrap, topics.READINGS, PARTITIONS)
        # Commits come every 2.8 s; a worker restarted after the last one processes again what came
        # after it (points extra to the oracle's, if any, would arrive meanwhile).
        wait_until(
            f"the worker to commit every message published ({fault})",
            lambda: self.committed() >= end,
            90,
            self.children,
            explain=self.progress,
        )
        expected = expected_after(self.lines[: self.feed.acked], self.units)
        got = {m: sums_by_unit(self.influx.url, self.database, m) for m in SUMMED}
        assert_same_sums(got, expected.sums)
        ids = notifications(expected.alerts, self.routing, self.units)
        assert ids, "no alert in the replay so far: the check would prove nothing"
        wait_until(
            f"every expected notification to be accepted ({fault})",
            lambda: set(ids) <= set(self.accepted()),
            60,
            self.children,
            explain=lambda: f"{len(set(ids) - set(self.accepted()))} of {len(ids)} missing",
        )
        time.sleep(1.0)  # a duplicate or an unexpected notification would arrive now
        accepted = self.accepted()
        assert sorted(accepted) == sorted(ids), (
            f"{len(accepted)} accepted, {len(set(accepted))} distinct; {len(ids)} expected, "
            f"{len(set(accepted) - set(ids))} unexpected"
        )
        print(
            f"after {fault}: {self.feed.acked}/{len(self.lines)} lines ({self.feed.resends} groups sent "
            f"again), {expected.energy_points[-1]} energy points, {len(expected.alerts)} alerts, "
            f"{len(ids)} notifications each accepted once; committed {self.committed()}/{end}",
            flush=True,
        )
        return expected


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    print(f"\nfault run: seed {SEED}, plan {PLAN}", flush=True)
    RECOVERIES.clear()
    started = time.monotonic()
    run = Stack(tmp_path_factory.mktemp("faults"))
    try:
        run.start()
        yield run
    finally:
        run.stop()
        print(
            f"\nfault summary (seed {SEED}, {time.monotonic() - started:.0f} s):\n"
            + "\n".join(f"  {line}" for line in RECOVERIES),
            flush=True,
        )


@pytest.mark.timeout(900 if SOAK else 240)
def test_a_worker_sigkilled_at_random_moments_loses_nothing_and_counts_nothing_twice(stack: Stack) -> None:
    rng = random.Random(SEED)
    stack.feed.publish(PLAN.kill_share, PLAN.kill_publish_s)
    for n in range(1, PLAN.kills + 1):
        stack.working()
        time.sleep(rng.uniform(0.0, 2.0))
        worker = stack.worker
        assert worker is not None and worker.pid is not None
        os.killpg(worker.pid, signal.SIGKILL)
        assert worker.stop(5) == -signal.SIGKILL
        killed_at_line, restarted = stack.feed.acked, time.monotonic()
        due, written = stack.points_due(), stack.energy_points()
        stack.start_worker()
        if written < due or stack.feed.busy:
            wait_until(
                "the restarted worker's first batch",
                lambda: status_counter(stack.state, "messages") > 0,
                90,
                stack.children,
                0.05,
                stack.progress,
            )
            resumed = f"first batch {time.monotonic() - restarted:.1f} s after the restart, "
        else:
            resumed = "nothing left to do, "  # killed idle: the feed was done and every point in
        caught = stack.caught_up("the restarted worker to catch up", killed_at_line)
        record(
            f"worker SIGKILL {n}/{PLAN.kills} (feed at line {killed_at_line}, {written}/{due} of its "
            f"points written): {resumed}every point of the acknowledged lines "
            f"{caught - restarted:.1f} s after the restart"
        )
    stack.feed.rush()
    stack.check(f"{PLAN.kills} worker kills")


@pytest.mark.timeout(900 if SOAK else 240)
def test_influxdb_stopped_and_started_again_delays_points_and_loses_none(stack: Stack) -> None:
    rng = random.Random(SEED + 1)
    stack.feed.publish(PLAN.influx_share, PLAN.influx_outage_s + 10.0)
    stack.working()
    time.sleep(rng.uniform(0.0, 2.0))
    stack.influx.stop()
    time.sleep(PLAN.influx_outage_s)
    worker = stack.worker
    assert worker is not None and worker.alive, "the worker died while InfluxDB was down"
    stack.influx.start()
    restarted, acked = time.monotonic(), stack.feed.acked
    caught = stack.caught_up("the points written while InfluxDB was down", acked)
    record(
        f"InfluxDB down {PLAN.influx_outage_s:.0f} s (1 time): every point of the lines acknowledged "
        f"meanwhile {caught - restarted:.1f} s after its restart"
    )
    stack.check(f"InfluxDB down {PLAN.influx_outage_s:.0f} s")


@pytest.mark.timeout(900 if SOAK else 240)
def test_the_broker_restarted_on_its_s3_storage_loses_nothing(stack: Stack) -> None:
    rng = random.Random(SEED + 2)
    stack.feed.publish(PLAN.broker_share, PLAN.broker_publish_s)
    for n in range(1, PLAN.broker_restarts + 1):
        stack.working()
        time.sleep(rng.uniform(0.0, 2.0))
        stack.broker.stop()
        time.sleep(BROKER_DOWN_S)
        stack.broker.start()
        restarted = time.monotonic()
        acked = stack.feed.acked

        def fed_again(acked: int = acked) -> bool:
            return stack.feed.acked > acked or not stack.feed.busy

        wait_until("the feed to be acknowledged again", fed_again, 60, stack.children, 0.05)
        fed = time.monotonic()
        caught = stack.caught_up("the worker to catch up with the feed", stack.feed.acked)
        record(
            f"broker restart {n}/{PLAN.broker_restarts} (down {BROKER_DOWN_S:.0f} s): the feed acknowledged "
            f"again {fed - restarted:.1f} s after the restart, the worker caught up with it "
            f"{caught - restarted:.1f} s after"
        )
    stack.check(f"{PLAN.broker_restarts} broker restart(s)")


@pytest.mark.timeout(900 if SOAK else 240)
def test_the_alert_channel_down_for_a_while_receives_each_notification_once(stack: Stack) -> None:
    stack.receiver.stop()
    stack.feed.publish(PLAN.channel_share, PLAN.channel_down_s + 3.0)
    time.sleep(PLAN.channel_down_s)
    missing = set(stack.notifications_due()) - set(stack.accepted())
    stack.receiver.start()
    restarted = time.monotonic()
    assert missing, "no notification fell due while the channel was down: the test would prove nothing"
    wait_until(
        "the notifications held back while the channel was down",
        lambda: missing <= set(stack.accepted()),
        60,
        stack.children,
        0.05,
    )
    record(
        f"alert channel down {PLAN.channel_down_s:.0f} s (1 time): the {len(missing)} notifications "
        f"due meanwhile accepted {time.monotonic() - restarted:.1f} s after it came back"
    )
    stack.check(f"the alert channel down {PLAN.channel_down_s:.0f} s")
