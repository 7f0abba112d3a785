"""The alert dispatcher against the real broker and a real HTTP receiver.

Each test gets its own topic and consumer group (``Dispatcher(topic=, group_id=)``); one test runs
``run_dispatcher`` as production does, on the `alerts` topic and the ``energymon-alerts`` group.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.structs import TopicPartition
from pydantic import SecretStr

from alerts.channels import Channel, WebhookChannel, delivery_id
from alerts.dispatcher import GROUP_ID, Dispatcher, run_dispatcher
from energy.alert import Alert
from energy.topics import ALERTS
from energymon.localstack.broker import create_topics
from energymon.settings import AlertSettings, KafkaSettings, Settings
from tests.receivers import WebhookReceiver

pytestmark = pytest.mark.integration

SECRET = "integration-secret"
PARTITIONS = 2


def make_alert(n: int, unit: str = "9111000010000000", **changes: object) -> Alert:
    """Alert number ``n`` of a unit: a red hourly-ceiling alert."""
    fields: dict[str, object] = {
        "key": f"{unit}{n:02d}|hourly_ceiling",
        "unit_id": f"{unit}{n:02d}",
        "rule": "hourly_ceiling",
        "severity": "red",
        "state": "raised",
        "value": 25.0 + n,
        "threshold": 25.0,
        "uom": "tce",
        "message": f"unit {n} over the hourly ceiling",
        "ts_ms": 1_767_225_600_000 + n * 60_000,
    }
    fields.update(changes)
    return Alert.model_validate(fields)


def make_settings(broker: str, receiver: WebhookReceiver | None = None, **alerts: object) -> Settings:
    """Settings for the test broker (tansu mode), webhook to ``receiver`` signed with SECRET."""
    alert_settings = AlertSettings.model_validate(
        {"webhook_url": receiver.url if receiver else None, "webhook_secret": SecretStr(SECRET), **alerts}
    )
    return Settings(
        _env_file=None,
        kafka=KafkaSettings(bootstrap_servers=broker, tansu=True),
        alerts=alert_settings,
    )


def produce(broker: str, topic: str, records: Sequence[tuple[str, bytes | None]]) -> None:
    """Write (key, value) records and wait until the broker has them."""
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=0)
    try:
        for key, value in records:
            producer.send(topic, key=key.encode(), value=value)
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)


def produce_alerts(broker: str, topic: str, alerts: Sequence[Alert]) -> None:
    """Write alerts keyed by unit, as the Faust app does."""
    produce(broker, topic, [(a.unit_id, a.to_json()) for a in alerts])


@contextmanager
def running(target: Callable[..., None], *args: object) -> Iterator[threading.Event]:
    """Run ``target(*args, stop)`` in a thread; on exit set stop and check it ended promptly."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        try:
            target(*args, stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=main, name="dispatcher", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        started = time.monotonic()
        thread.join(timeout=15)
        assert not thread.is_alive(), "dispatcher did not stop within 15 s"
        assert time.monotonic() - started < 6, "dispatcher took too long to stop"
    if errors:
        raise errors[0]


def dispatcher(
    settings: Settings, topic: str, group: str, channels: list[Channel] | None = None
) -> Dispatcher:
    """A dispatcher on a test topic and group with a fast backoff."""
    return Dispatcher(settings, channels, topic=topic, group_id=group, backoff_initial_s=0.05)


@pytest.fixture
def topic(broker: str, unique_name: str) -> str:
    """A fresh alerts-like topic."""
    name = f"alerts_{unique_name}"
    create_topics(broker, [name], partitions=PARTITIONS)
    return name


def committed(broker: str, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets."""
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        admin.close()


def test_delivers_every_alert_once_signed(broker: str, topic: str, unique_name: str) -> None:
    alerts = [make_alert(n) for n in range(3)]
    with WebhookReceiver(secret=SECRET) as receiver:
        d = dispatcher(make_settings(broker, receiver), topic, unique_name)
        produce_alerts(broker, topic, alerts)
        with running(d.run):
            receiver.wait_for(3, timeout_s=20)
            time.sleep(0.5)  # anything extra would arrive now
        requests = receiver.requests
    assert sorted(r.body for r in requests) == sorted(a.to_json() for a in alerts)
    assert all(r.signature_ok for r in requests)
    assert {r.header("X-Energymon-Delivery") for r in requests} == {delivery_id(a) for a in alerts}
    stats = d.stats()
    assert (stats.delivered, stats.failed, stats.malformed, stats.retries) == (3, 0, 0, 0)
    assert sum(committed(broker, unique_name).values()) == 3


def test_retries_server_errors_until_delivered(broker: str, topic: str, unique_name: str) -> None:
    alerts = [make_alert(n) for n in range(2)]
    with WebhookReceiver(secret=SECRET) as receiver:
        receiver.fail_next(2, 503)
        d = dispatcher(make_settings(broker, receiver), topic, unique_name)
        produce_alerts(broker, topic, alerts)
        with running(d.run):
            receiver.wait_for(2, timeout_s=20, accepted=True)
            time.sleep(0.3)
        requests = receiver.requests
    assert [r.status for r in requests] == [503, 503, 200, 200]
    # the first alert was retried (same delivery id) until accepted, then the second went through
    assert len({r.header("X-Energymon-Delivery") for r in requests[:3]}) == 1
    assert sorted(r.body for r in requests if r.ok) == sorted(a.to_json() for a in alerts)
    stats = d.stats()
    assert (stats.delivered, stats.failed, stats.retries) == (2, 0, 2)
    assert stats.channels["webhook"].retries == 2 and stats.channels["log"].retries == 0


def test_malformed_records_are_skipped(broker: str, topic: str, unique_name: str) -> None:
    good = make_alert(1)
    unit = good.unit_id  # one key: one partition, so the good alert comes after the bad ones
    bad_alert = good.model_dump() | {"severity": "purple"}
    with WebhookReceiver(secret=SECRET) as receiver:
        d = dispatcher(make_settings(broker, receiver), topic, unique_name)
        produce(
            broker,
            topic,
            [
                (unit, b"not json at all"),
                (unit, str(bad_alert).encode()),
                (unit, Alert.model_validate(bad_alert | {"severity": "red"}).to_json()[:-1]),
                (unit, None),
                (unit, good.to_json()),
            ],
        )
        with running(d.run):
            receiver.wait_for(1, timeout_s=20)
            deadline = time.monotonic() + 5
            while d.stats().committed == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        requests = receiver.requests
    assert [r.body for r in requests] == [good.to_json()]
    stats = d.stats()
    assert (stats.delivered, stats.malformed) == (1, 4)
    assert sum(committed(broker, unique_name).values()) == 5  # the skipped records are not re-read


def test_a_permanent_failure_is_counted_and_the_next_alert_goes_on(
    broker: str, topic: str, unique_name: str
) -> None:
    alerts = [make_alert(1), make_alert(1, state="resolved", severity="green")]
    with WebhookReceiver(secret=SECRET) as receiver:
        receiver.fail_next(1, 410, b"hook removed")
        d = dispatcher(make_settings(broker, receiver), topic, unique_name)
        produce_alerts(broker, topic, alerts)
        with running(d.run):
            receiver.wait_for(2, timeout_s=20)
            time.sleep(0.3)
        statuses = [r.status for r in receiver.requests]
    assert statuses == [410, 200]
    stats = d.stats()
    assert (stats.delivered, stats.failed, stats.retries) == (1, 1, 0)
    assert stats.last_error is not None and "410" in stats.last_error


class StopAfter:
    """A channel that sets ``stop`` once it has seen ``n`` alerts (placed after the webhook)."""

    name = "stop-after"

    def __init__(self, n: int, stop: threading.Event) -> None:
        self.n = n
        self.stop = stop
        self.seen: list[Alert] = []

    def deliver(self, alert: Alert) -> None:
        self.seen.append(alert)
        if len(self.seen) >= self.n:
            self.stop.set()


def test_restart_resumes_after_the_last_delivered_alert(broker: str, topic: str, unique_name: str) -> None:
    alerts = [make_alert(n) for n in range(4)]
    settings = make_settings(broker)
    produce_alerts(broker, topic, alerts)
    with WebhookReceiver(secret=SECRET) as receiver:
        webhook = WebhookChannel(receiver.url, SECRET, 2.0)

        stop = threading.Event()
        first = dispatcher(settings, topic, unique_name, channels=[webhook, StopAfter(2, stop)])
        thread = threading.Thread(target=first.run, args=(stop,), daemon=True)
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive()
        first_bodies = [r.body for r in receiver.requests]
        assert len(first_bodies) == 2
        assert first.stats().committed >= 1
        assert sum(committed(broker, unique_name).values()) == 2

        second = dispatcher(settings, topic, unique_name, channels=[webhook])
        with running(second.run):
            receiver.wait_for(4, timeout_s=20)
            time.sleep(0.5)
        bodies = [r.body for r in receiver.requests]
    assert len(bodies) == 4  # nothing delivered twice
    assert sorted(bodies) == sorted(a.to_json() for a in alerts)
    assert second.stats().delivered == 2


def test_run_dispatcher_uses_the_settings(broker: str, tmp_path: Path, unique_name: str) -> None:
    """Production wiring: the `alerts` topic, the energymon-alerts group, the secret from a file."""
    create_topics(broker, [ALERTS], partitions=4)
    secret_file = tmp_path / "webhook_secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    mine = make_alert(7, unit=f"run-{unique_name}-")
    with WebhookReceiver(secret=SECRET) as receiver:
        settings = make_settings(broker, receiver, webhook_secret=None, webhook_secret_file=secret_file)
        produce_alerts(broker, ALERTS, [mine])
        with running(run_dispatcher, settings):
            deadline = time.monotonic() + 20
            while not any(r.header("X-Energymon-Alert-Key") == mine.key for r in receiver.requests):
                assert time.monotonic() < deadline, "alert not delivered within 20 s"
                time.sleep(0.05)
        [request] = [r for r in receiver.requests if r.header("X-Energymon-Alert-Key") == mine.key]
    assert request.body == mine.to_json() and request.signature_ok
    assert committed(broker, GROUP_ID)


def test_stop_interrupts_retries_and_leaves_the_alert_undelivered() -> None:
    """No broker needed: ``dispatch`` retrying a failing webhook returns promptly on stop."""
    settings = make_settings("127.0.0.1:1")  # never contacted: dispatch() does not touch Kafka
    with WebhookReceiver() as receiver:
        receiver.fail_next(1000, 503)
        d = Dispatcher(
            settings, [WebhookChannel(receiver.url, None, 2.0)], backoff_initial_s=0.02, backoff_max_s=0.1
        )
        stop = threading.Event()
        result: list[bool] = []
        thread = threading.Thread(target=lambda: result.append(d.dispatch(make_alert(1), stop)))
        thread.start()
        receiver.wait_for(4, timeout_s=10)
        stop.set()
        started = time.monotonic()
        thread.join(timeout=5)
        assert time.monotonic() - started < 0.5
    assert result == [False]  # not delivered: the caller must not commit its offset
    stats = d.stats()
    assert (stats.delivered, stats.failed) == (0, 0) and stats.retries >= 3


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    d = Dispatcher(make_settings("127.0.0.1:1"), [])
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (60, 30.0)]:
        waits = [d.backoff_s(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempt, min(waits), max(waits))
        assert len(set(waits)) > 1  # jittered
    assert d.backoff_s(0, retry_after_s=3) >= 3  # the peer's Retry-After is honoured...
    assert d.backoff_s(0, retry_after_s=3600) <= 30  # ...up to the cap
