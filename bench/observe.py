"""Producing the readings and watching what comes out: when the last closed interval's `energy`
points are visible in InfluxDB (:class:`EndCheck`), when each `unit_status` point appears, when each
alert arrives on `alerts`.

Every time here is ``time.monotonic()`` of this process, so production and observation times
compare directly. The producer is confluent-kafka (librdkafka, installed with Quix Streams):
kafka-python 3.0 computes record CRC32C in pure Python when the optional ``crc32c`` package is
missing, ~0.6 ms of CPU per 6 KB message on this machine, which would make the producer the
bottleneck of the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Producer

from bench.fleet import AlertId, Message, alert_id, minute_ms
from bench.peers.accounting import PeerAccounting, interval_totals
from energy.alert import Alert
from energy.intervals import INTERVAL_MS

#: How often the observers poll InfluxDB (s); a point is seen at most this late.
POLL_S = 0.1


def confluent_options(kafka_options: dict[str, Any]) -> dict[str, Any]:
    """librdkafka settings for kafka-python ``kafka_options`` (bootstrap, security, SASL, TLS)."""
    servers = kafka_options["bootstrap_servers"]
    conf: dict[str, Any] = {
        "bootstrap.servers": servers if isinstance(servers, str) else ",".join(servers),
        "security.protocol": kafka_options.get("security_protocol", "PLAINTEXT"),
    }
    renames = {
        "sasl_mechanism": "sasl.mechanism",
        "sasl_plain_username": "sasl.username",
        "sasl_plain_password": "sasl.password",
        "ssl_cafile": "ssl.ca.location",
        "ssl_certfile": "ssl.certificate.location",
        "ssl_keyfile": "ssl.key.location",
    }
    conf.update({renames[k]: v for k, v in kafka_options.items() if k in renames and v is not None})
    return conf


class ReadingsProducer:
    """Sends readings messages to a topic and notes when each was handed to the client."""

    def __init__(self, kafka_options: dict[str, Any], linger_ms: int) -> None:
        self._producer = Producer(
            {**confluent_options(kafka_options), "linger.ms": linger_ms, "log_level": 3}
        )
        self._errors: list[str] = []

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def _send(self, topic: str, msg: Message) -> None:
        while True:
            try:
                self._producer.produce(topic, key=msg.key, value=msg.value, on_delivery=self._on_delivery)
                break
            except BufferError:  # the client's queue is full: let it send
                self._producer.poll(0.01)
        self._producer.poll(0)

    def backlog(self, topic: str, messages: Sequence[Message]) -> tuple[float, float]:
        """Send every message as fast as the client takes them; (time of the first send, time the
        broker had acknowledged all)."""
        first = time.monotonic()
        for msg in messages:
            self._send(topic, msg)
        self.flush()
        return first, time.monotonic()

    def paced(
        self,
        topic: str,
        messages: Sequence[Message],
        readings_per_s: float,
        progress: Callable[[int], None] | None = None,
    ) -> dict[int, float]:
        """Send the messages at ``readings_per_s`` (evenly, by readings); message index → time of
        its send."""
        produced: dict[int, float] = {}
        start = time.monotonic()
        done = 0
        next_report = start + 5.0
        for msg in messages:
            due = start + done / readings_per_s
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
                now = time.monotonic()
            produced[msg.index] = now
            self._send(topic, msg)
            done += msg.readings
            if progress is not None and now >= next_report:
                progress(done)
                next_report = now + 5.0
        self.flush()
        return produced

    def flush(self) -> None:
        """Wait until the broker has every message; RuntimeError if it refused any."""
        self._producer.flush(60)
        if self._errors:
            raise RuntimeError(f"{len(self._errors)} readings messages not delivered: {self._errors[0]}")

    def close(self) -> None:
        """Send what is left and let the client go (before the broker stops: it would log failures)."""
        self._producer.flush(10)
        del self._producer


class Poller:
    """A daemon thread calling ``step()`` every ``every_s`` until stopped; errors are kept for
    :meth:`stop` to raise."""

    def __init__(self, name: str, every_s: float = POLL_S) -> None:
        self._every_s = every_s
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def step(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.step()
                self._stop.wait(self._every_s)
        except BaseException as exc:
            self._error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self._error is not None:
            raise RuntimeError(f"{self._thread.name} failed: {self._error}") from self._error


class StatusObserver(Poller):
    """Notes when each ``unit_status`` point (unit, time) first shows in InfluxDB: polls the points
    at or after the oldest one still awaited (``expected``: (unit, T) keys)."""

    def __init__(
        self,
        query: Callable[[str], list[dict[str, Any]]],
        expected: set[tuple[str, int]],
        since_ms: int,
    ) -> None:
        super().__init__("unit_status observer")
        self._query = query
        self._waiting = set(expected)
        self._since_ms = since_ms
        self.seen: dict[tuple[str, int], float] = {}

    def step(self) -> None:
        if not self._waiting:
            return
        lo = max(min(t for _, t in self._waiting), self._since_ms)
        asked = time.monotonic()
        series = self._query(f'SELECT "ytd_tce", "unit_id" FROM "unit_status" WHERE time >= {lo}ms')
        for s in series:
            for ts, _ytd, unit_id in s.get("values") or []:
                key = (str(unit_id), int(ts))
                if key not in self.seen:
                    self.seen[key] = asked
                    self._waiting.discard(key)

    @property
    def waiting(self) -> int:
        return len(self._waiting)


class AlertObserver(Poller):
    """Notes when each alert arrives on the ``alerts`` topic, reading from the end it had when the
    observer started (kafka-python, short fetch waits)."""

    def __init__(self, kafka_options: dict[str, Any], topic: str) -> None:
        super().__init__("alerts observer", every_s=0.0)  # the poll itself waits up to 50 ms
        from kafka import KafkaConsumer

        self._consumer = KafkaConsumer(**kafka_options, enable_auto_commit=False, fetch_max_wait_ms=20)
        partitions = self._consumer.partitions_for_topic(topic) or set()
        from kafka import TopicPartition

        parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(parts)
        self._consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the end offsets now, not at the first poll
            self._consumer.position(tp)
        self.seen: dict[AlertId, float] = {}

    def step(self) -> None:
        batches = self._consumer.poll(timeout_ms=50)
        arrived = time.monotonic()
        for records in batches.values():
            for record in records:
                self.seen.setdefault(alert_id(Alert.from_json(record.value)), arrived)

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._consumer.close()


#: Relative shortfall of Σtce :meth:`EndCheck.reached` allows for (the order of the sums differs).
END_TCE_REL_TOL = 1e-9


@dataclass(frozen=True)
class EndCheck:
    """When a system is through a backlog of minutes 0 … N + 1: the `energy` points of the last
    interval the backlog closes by data, (N − 15 min, N] starting at ``start_ms`` (epoch ms), are
    visible: at least ``points`` of them (one per meter) and their tce summing to ``tce``. The sum
    matters: the naive peer writes running sums and ours writes open intervals when it has caught
    up, so the points can all be there before the interval is complete."""

    start_ms: int
    points: int
    tce: float

    @classmethod
    def of_backlog(cls, job: PeerAccounting, messages: Sequence[Message], last_minute: int) -> EndCheck:
        """The check for ``messages``, a backlog whose interval (``last_minute`` − 15, ``last_minute``]
        is closed by the minute after it; its points and Σtce as ``job`` (the peers' accounting,
        fresh) makes them from the messages of minute ``last_minute`` − 15 on (those before add
        nothing to the interval; that minute's readings only set the registers' baselines, or belong
        to the interval before for interval meters)."""
        start = minute_ms(last_minute) - INTERVAL_MS
        docs = (orjson.loads(m.value) for m in messages if m.ts_ms >= start)
        points, tce = interval_totals(job, docs, start)
        return cls(start, points, tce)

    def reached(self, points: int, tce: float) -> bool:
        """Whether ``points`` `energy` points at :attr:`start_ms` summing to ``tce`` are the whole
        interval (Σtce within :data:`END_TCE_REL_TOL`)."""
        return points >= self.points and tce >= self.tce * (1.0 - END_TCE_REL_TOL)


def _count_tce(query: Callable[[str], list[dict[str, Any]]], where: str) -> tuple[int, float]:
    """(number of `energy` points, their summed tce) ``WHERE`` … in the queried database."""
    series = query(f'SELECT count("tce"), sum("tce") FROM "energy" WHERE {where}')
    if not series:
        return 0, 0.0
    _time, count, total = series[0]["values"][0]
    return int(count or 0), float(total or 0.0)


def energy_at(query: Callable[[str], list[dict[str, Any]]], ts_ms: int) -> tuple[int, float]:
    """(number of `energy` points at exactly ``ts_ms``, their summed tce) in the queried database."""
    return _count_tce(query, f"time = {ts_ms}ms")


def energy_totals(query: Callable[[str], list[dict[str, Any]]], until_ms: int) -> tuple[int, float]:
    """(number of `energy` points up to ``until_ms``, their summed tce) in the queried database."""
    return _count_tce(query, f"time <= {until_ms}ms")
