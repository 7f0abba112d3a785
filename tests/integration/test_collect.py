"""The site collector (`energymon collect`, a real process) against a private tansu broker that the
tests stop and start on the same port.

tansu keeps nothing across its own restart (memory storage), so each test checks what the broker
that is running at the end holds, plus — for a stop mid-stream — what the first broker held just
before it stopped (read with the collector frozen by SIGSTOP, so that the count on the broker side
is complete). Messages are identified by (source, seq); per unit they must come in seq order.

Guarantee asserted: nothing is lost; a message is delivered more than once only when its batch was
in flight (sent, not yet acknowledged) when the broker stopped — at-least-once. With the broker down
from the start, nothing is in flight, so there every message arrives exactly once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from energy.topics import READINGS
from energymon.localstack.broker import TansuBroker
from energymon.localstack.ports import free_port

pytestmark = pytest.mark.integration

SITE = "it-site"
SOURCE = "sim"
UNITS = 3
OUTAGE_S = 62.0
ROOT = Path(__file__).resolve().parents[2]


class Collector:
    """`python -m energymon collect --config site.yaml` as a child process, and its buffer file."""

    def __init__(self, tmp: Path, bootstrap: str) -> None:
        self.state = tmp / "state"
        self.config = tmp / "site.yaml"
        self.config.write_text(
            f"site: {{id: {SITE}, name: integration}}\n"
            f"kafka: {{bootstrap_servers: '{bootstrap}'}}\n"
            f"state_dir: {self.state}\n"
            "buffer: {max_mb: 64, retry_max_s: 2}\n"
            "sources:\n"
            f"  - {{name: {SOURCE}, type: simulator, interval_s: 0.2, units: {UNITS}}}\n",
            encoding="utf-8",
        )
        self.log = tmp / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYMON_")}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "energymon", "collect", "--config", str(self.config)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int:
        """SIGTERM, and the exit status (the collector drains within 5 s)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def query(self, sql: str) -> int:
        """One integer from the buffer file (read-only; 0 when the file or row is missing)."""
        path = self.state / "buffer.db"
        if not path.exists():
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute(sql).fetchone()
        except sqlite3.OperationalError:  # tables not created yet
            return 0
        finally:
            db.close()
        return int(row[0] or 0) if row else 0

    def last_seq(self) -> int:
        return self.query(f"SELECT last_seq FROM sources WHERE source = '{SOURCE}'")

    def backlog(self) -> int:
        return self.query("SELECT count(*) FROM messages")

    def wait_for(self, what: str, condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert self.proc is not None and self.proc.poll() is None, (
                f"collector exited while waiting for {what}:\n{self.log.read_text()[-3000:]}"
            )
            assert time.monotonic() < deadline, (
                f"no {what} within {timeout_s} s:\n{self.log.read_text()[-3000:]}"
            )
            time.sleep(0.1)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def tansu(port: int, tmp_path: Path) -> Iterator[TansuBroker]:
    """A private broker on ``port``, not started yet; stopped at the end."""
    server = TansuBroker(port, log_path=tmp_path / "tansu.log")
    yield server
    server.stop()


@pytest.fixture
def collector(tmp_path: Path, tansu: TansuBroker) -> Iterator[Collector]:
    c = Collector(tmp_path, tansu.bootstrap)
    yield c
    if c.proc is not None and c.proc.poll() is None:
        c.kill()


def read_topic(bootstrap: str) -> list[tuple[int, int, dict[str, object]]]:
    """Every record of `readings` now on the broker, as (partition, offset, message), read up to the
    end offsets of this moment."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(READINGS) or set()
        tps = [TopicPartition(READINGS, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[tuple[int, int, dict[str, object]]] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, "could not read the topic to its end"
            for tp, records in consumer.poll(timeout_ms=500).items():
                out.extend((tp.partition, r.offset, orjson.loads(r.value)) for r in records)
        return out
    finally:
        consumer.close()


def seqs_in_unit_order(records: list[tuple[int, int, dict[str, object]]]) -> dict[str, list[int]]:
    """Per unit, the seqs of its messages in broker order; asserts every message is ours."""
    by_unit: dict[str, list[int]] = {}
    for _partition, _offset, msg in sorted(records, key=lambda r: (r[0], r[1])):
        assert msg["source"] == f"{SITE}/{SOURCE}" and msg["v"] == 1
        by_unit.setdefault(str(msg["unit_id"]), []).append(int(msg["seq"]))  # type: ignore[call-overload]
    return by_unit


def all_seqs(by_unit: dict[str, list[int]]) -> list[int]:
    return sorted(s for seqs in by_unit.values() for s in seqs)


def test_outage_of_60_s_with_a_killed_collector_delivers_every_message_once_in_order(
    tansu: TansuBroker, collector: Collector
) -> None:
    """Broker down from the start for > 60 s; the collector is SIGKILLed halfway and restarted;
    then the broker starts on the same port: every message arrives exactly once, in order per unit."""
    outage_started = time.monotonic()
    collector.start()
    collector.wait_for("buffered messages", lambda: collector.last_seq() >= 20)
    time.sleep(max(0.0, OUTAGE_S / 2 - (time.monotonic() - outage_started)))
    collector.kill()  # SIGKILL mid-outage
    seq_at_kill = collector.last_seq()
    assert collector.backlog() == seq_at_kill  # nothing was sent: everything is still buffered

    collector.start()
    collector.wait_for("messages after the restart", lambda: collector.last_seq() > seq_at_kill + 10)
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
    assert time.monotonic() - outage_started >= 60.0
    buffered_in_outage = collector.last_seq()

    tansu.start()
    collector.wait_for("the backlog to drain", lambda: collector.backlog() <= 2 * UNITS, timeout_s=90)
    assert collector.stop() == 0
    assert collector.backlog() == 0
    last = collector.last_seq()
    assert last > buffered_in_outage > seq_at_kill

    by_unit = seqs_in_unit_order(read_topic(tansu.bootstrap))
    assert all_seqs(by_unit) == list(range(1, last + 1))  # each exactly once: none lost, none twice
    assert set(by_unit) == {"sim-steel-001", "sim-cement-001", "sim-chemicals-001"}
    for unit, seqs in by_unit.items():
        assert seqs == sorted(seqs), f"{unit} out of order"


def test_broker_stopped_mid_stream_loses_nothing_and_resends_only_the_batch_in_flight(
    tansu: TansuBroker, collector: Collector
) -> None:
    """Broker up, collector sending; the broker stops (its records counted just before), the
    collector buffers, the broker starts again empty: both sides together hold every message."""
    tansu.start()
    collector.start()
    collector.wait_for(
        "messages acknowledged", lambda: collector.last_seq() >= 30 and collector.backlog() < 30
    )
    collector.signal(signal.SIGSTOP)  # freeze it, so the broker side can be counted completely
    before = seqs_in_unit_order(read_topic(tansu.bootstrap))
    tansu.stop()
    collector.signal(signal.SIGCONT)
    seq_at_stop = collector.last_seq()
    collector.wait_for("messages buffered in the outage", lambda: collector.last_seq() >= seq_at_stop + 25)
    assert collector.backlog() >= 25  # unacknowledged messages stay in the buffer

    tansu.start()
    collector.wait_for("the backlog to drain", lambda: collector.backlog() <= 2 * UNITS, timeout_s=60)
    assert collector.stop() == 0
    assert collector.backlog() == 0
    after = seqs_in_unit_order(read_topic(tansu.bootstrap))

    first, second = all_seqs(before), all_seqs(after)
    assert len(first) == len(set(first)) and len(second) == len(set(second))  # no duplicate per broker
    assert sorted(set(first) | set(second)) == list(range(1, collector.last_seq() + 1))  # nothing lost
    resent = set(first) & set(second)
    assert resent == {s for s in first if s >= min(resent)} if resent else True  # only the tail in flight
    assert len(resent) <= 500  # at most one batch
    for side in (before, after):
        for unit, seqs in side.items():
            assert seqs == sorted(seqs), f"{unit} out of order"
