"""The alert dispatcher against the real broker and real HTTP receivers.

Each test gets its own alerts topic, consumer group, registry topic and outbox; the crash test runs
``energymon alerts run`` as a process (on the `alerts` topic) and SIGKILLs it mid-send.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from kafka import KafkaProducer

from alerts.dispatcher import Dispatcher
from alerts.outbox import notification_id
from energy.alert import Alert
from energy.registry import ContactInfo, UnitInfo
from energy.topics import ALERTS, REGISTRY
from energymon.localstack.broker import create_topics
from energymon.routing_file import load_routing
from energymon.settings import AlertSettings, KafkaSettings, Settings
from tests.receivers import WebhookReceiver, free_port

pytestmark = pytest.mark.integration

SECRET = "integration-secret"
ROOT = Path(__file__).resolve().parents[2]


def make_alert(unit: str, n: int = 0, state: str = "raised", severity: str = "red") -> Alert:
    return Alert.model_validate(
        {
            "key": f"{unit}|hourly_ceiling|total",
            "unit_id": unit,
            "rule": "hourly_ceiling",
            "severity": severity,
            "state": state,
            "value": 30.0,
            "threshold": 25.0,
            "uom": "tce",
            "message": "over the hourly ceiling",
            "ts_ms": 1_767_225_600_000 + n * 60_000,
        }
    )


def produce(broker: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=0)
    try:
        for key, value in records:
            producer.send(topic, key=key.encode(), value=value)
            producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)


def routing_file(tmp_path: Path, hook: str, esc: str | None = None) -> Path:
    """Channel `hook` (signed webhook) for the units' own contacts and 江苏's duty; `esc` escalation."""
    (tmp_path / "hook_secret").write_text(SECRET + "\n")
    channels = {
        "hook": {"kind": "webhook", "options": {"url": hook, "secret_file": str(tmp_path / "hook_secret")}}
    }
    region: dict[str, object] = {"duty": [{"name": "江苏值班", "channel": "hook", "recipient": "duty"}]}
    if esc:
        channels["esc"] = {
            "kind": "webhook",
            "options": {"url": esc, "secret_file": str(tmp_path / "hook_secret")},
        }
        region["escalation"] = [{"name": "主任", "channel": "esc"}]
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump({"channels": channels, "regions": {"江苏": region}}, allow_unicode=True))
    load_routing(path)  # valid
    return path


def unit(unit_id: str) -> UnitInfo:
    contact = ContactInfo(name="能源岗", channel="hook", recipient="energy", min_severity="yellow")
    return UnitInfo(
        unit_id=unit_id,
        name="某钢铁",
        region="江苏",
        grid_region="华东",
        industry="steel",
        contacts=(contact,),
    )


def settings(broker: str, tmp_path: Path, routing: Path, **alerts: object) -> Settings:
    return Settings(
        _env_file=None,
        kafka=KafkaSettings(bootstrap_servers=broker, tansu=True),
        alerts=AlertSettings.model_validate(
            {"routing_file": routing, "outbox_file": tmp_path / "outbox.db", "retry_initial_s": 0.2, **alerts}
        ),
    )


@pytest.fixture
def topics(broker: str, unique_name: str) -> tuple[str, str]:
    """(alerts topic, registry topic) of this test."""
    names = (f"alerts_{unique_name}", f"registry_{unique_name}")
    create_topics(broker, list(names), partitions=2)
    return names


@contextmanager
def running(d: Dispatcher) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=d.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive()


def dispatcher(s: Settings, topics: tuple[str, str], group: str) -> Dispatcher:
    return Dispatcher(
        s, load_routing(s.alerts.routing_file), topic=topics[0], group_id=group, registry_topic=topics[1]
    )  # type: ignore[arg-type]


def ids(alerts: list[Alert], kind: str, recipients: tuple[str, ...] = ("energy", "duty")) -> set[str]:
    return {notification_id(a, kind, "hook", r) for a in alerts for r in recipients}  # type: ignore[arg-type]


def test_alerts_reach_their_unit_contact_and_duty_signed(
    broker: str, topics: tuple[str, str], unique_name: str, tmp_path: Path
) -> None:
    alerts = [make_alert(f"U{i}-{unique_name}") for i in range(3)]
    with WebhookReceiver(secret=SECRET) as receiver:
        s = settings(broker, tmp_path, routing_file(tmp_path, receiver.url))
        produce(broker, topics[1], [(a.unit_id, unit(a.unit_id).to_json()) for a in alerts])
        produce(broker, topics[0], [(a.unit_id, a.to_json()) for a in alerts])
        with running(dispatcher(s, topics, unique_name)):
            receiver.wait_for(6, timeout_s=30)
            time.sleep(0.5)  # anything extra would arrive now
        requests = receiver.requests
    assert all(r.signature_ok for r in requests)
    assert sorted(r.header("X-Energymon-Delivery") or "" for r in requests) == sorted(ids(alerts, "raised"))
    assert {json.loads(r.body)["unit_name"] for r in requests} == {"某钢铁"}  # the registry's name


class Outage(WebhookReceiver):
    """Answers 503 until ``down_s`` seconds after :meth:`go_down`."""

    up_at = 0.0

    def go_down(self, down_s: float) -> None:
        self.up_at = time.monotonic() + down_s

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if time.monotonic() < self.up_at:
            self.fail_next(1, 503)
        super()._handle(handler)


def attempts_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, object]]]:
    """delivery id → its attempts, as `energymon alerts list --json` shows them."""
    from typer.testing import CliRunner

    from energymon.cli import app

    monkeypatch.setenv("ENERGYMON_ALERTS__OUTBOX_FILE", str(tmp_path / "outbox.db"))
    result = CliRunner().invoke(app, ["alerts", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["alerts"]
    return {n["delivery_id"]: n["history"] for a in listed for n in a["notifications"]}


@pytest.mark.parametrize(
    ("outage", "down_s", "failure"),
    [
        ("503", 30.0, "HTTP 503"),  # the receiver answers 503 for 30 s
        ("refused", 6.0, "refused"),  # nothing listens on the port for 6 s after every first try
    ],
)
def test_a_channel_down_then_up_receives_each_notification_once(
    outage: str,
    down_s: float,
    failure: str,
    broker: str,
    topics: tuple[str, str],
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts = [make_alert(f"U{i}-{unique_name}") for i in range(3)]
    expected = ids(alerts, "raised")
    receiver = Outage(secret=SECRET, port=free_port())
    url = f"http://127.0.0.1:{receiver._port}/hook"
    s = settings(broker, tmp_path, routing_file(tmp_path, url), retry_max_s=2.0)
    produce(broker, topics[1], [(a.unit_id, unit(a.unit_id).to_json()) for a in alerts])
    if outage == "503":
        receiver.start()
        receiver.go_down(down_s)
    produce(broker, topics[0], [(a.unit_id, a.to_json()) for a in alerts])
    try:
        d = dispatcher(s, topics, unique_name)
        with running(d):
            if outage == "refused":  # every notification refused once, then down_s more
                deadline = time.monotonic() + 30
                while {n.notification.delivery_id for n in d.outbox.notifications() if n.attempts} < expected:
                    assert time.monotonic() < deadline, "the dispatcher never tried"
                    time.sleep(0.1)
                time.sleep(down_s)
                receiver.start()
            receiver.wait_for(len(expected), timeout_s=down_s + 30, accepted=True)
            time.sleep(1.0)  # a duplicate would arrive now
    finally:
        receiver.stop()
    accepted = [r.header("X-Energymon-Delivery") for r in receiver.requests if r.ok]
    assert sorted(accepted) == sorted(expected)  # each exactly once
    assert all(r.signature_ok for r in receiver.requests)
    history = attempts_listed(tmp_path, monkeypatch)
    assert set(history) == expected
    for attempts in history.values():  # retried while down, every try recorded, then delivered once
        outcomes = [a["outcome"] for a in attempts]
        assert len(outcomes) >= 3 and outcomes[-1] == "delivered" and set(outcomes[:-1]) == {"retry"}
        assert all(failure in str(a["detail"]) for a in attempts[:-1]), attempts


def test_sigkill_between_send_and_record_loses_nothing(broker: str, unique_name: str, tmp_path: Path) -> None:
    create_topics(broker, [ALERTS, REGISTRY], partitions=4)
    alerts = [make_alert(f"K{i}-{unique_name}") for i in range(2)]
    produce(broker, REGISTRY, [(a.unit_id, unit(a.unit_id).to_json()) for a in alerts])
    with WebhookReceiver(secret=SECRET) as receiver:
        receiver.stall_next(1, 20.0)  # the first request is received, then never answered in time
        routing = routing_file(tmp_path, receiver.url)
        env = {
            **os.environ,
            "ENERGYMON_KAFKA__BOOTSTRAP_SERVERS": broker,
            "ENERGYMON_KAFKA__TANSU": "true",
            "ENERGYMON_ALERTS__ROUTING_FILE": str(routing),
            "ENERGYMON_ALERTS__OUTBOX_FILE": str(tmp_path / "outbox.db"),
            "ENERGYMON_ALERTS__RETRY_INITIAL_S": "0.2",
        }
        command = [sys.executable, "-m", "energymon", "alerts", "run"]
        produce(broker, ALERTS, [(a.unit_id, a.to_json()) for a in alerts])
        first = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            [sent] = receiver.wait_for(1, timeout_s=40)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        second = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            expected = {notification_id(a, "raised", "hook", "duty") for a in alerts}
            deadline = time.monotonic() + 40
            while not expected <= {r.header("X-Energymon-Delivery") for r in receiver.accepted}:
                assert time.monotonic() < deadline, "not every notification arrived after the restart"
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=20)
        mine = [
            r.header("X-Energymon-Delivery")
            for r in receiver.requests
            if r.header("X-Energymon-Delivery") in expected
        ]
    assert set(mine) == expected  # nothing lost
    repeated = [i for i in mine if mine.count(i) > 1]
    assert set(repeated) <= {sent.header("X-Energymon-Delivery")}  # only the interrupted one, same id


def test_ack_through_the_api_stops_escalation(
    broker: str, topics: tuple[str, str], unique_name: str, tmp_path: Path
) -> None:
    import urllib.parse
    import urllib.request

    acked, unacked = make_alert(f"A-{unique_name}"), make_alert(f"B-{unique_name}")
    with WebhookReceiver(secret=SECRET) as receiver, WebhookReceiver(secret=SECRET) as esc:
        s = settings(
            broker,
            tmp_path,
            routing_file(tmp_path, receiver.url, esc.url),
            escalate_after_min=0.05,  # 3 s
            api_port=0,
            api_token="t0ken",
        )
        produce(broker, topics[1], [(a.unit_id, unit(a.unit_id).to_json()) for a in (acked, unacked)])
        d = dispatcher(s, topics, unique_name)
        with running(d):
            produce(broker, topics[0], [(a.unit_id, a.to_json()) for a in (acked, unacked)])
            receiver.wait_for(4, timeout_s=30)
            assert d.api is not None
            url = f"http://127.0.0.1:{d.api.port}/v1/alerts/{urllib.parse.quote(acked.key, safe='')}/ack"
            request = urllib.request.Request(
                url, data=b'{"by": "duty officer"}', headers={"Authorization": "Bearer t0ken"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                assert json.loads(answer.read())["acked_by"] == "duty officer"
            esc.wait_for(1, timeout_s=15)
            time.sleep(4)  # the acked alert's escalation time has passed too
        escalated = [r.header("X-Energymon-Delivery") for r in esc.requests]
    assert escalated == [notification_id(unacked, "escalated", "esc", None)]


def test_silence_from_the_cli_records_but_sends_nothing(
    broker: str, topics: tuple[str, str], unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from energymon.cli import app

    raised, worse = (
        make_alert(f"S-{unique_name}", 0, severity="yellow"),
        make_alert(f"S-{unique_name}", 1, "updated"),
    )
    with WebhookReceiver(secret=SECRET) as receiver:
        s = settings(broker, tmp_path, routing_file(tmp_path, receiver.url))
        monkeypatch.setenv("ENERGYMON_ALERTS__OUTBOX_FILE", str(tmp_path / "outbox.db"))
        produce(broker, topics[1], [(raised.unit_id, unit(raised.unit_id).to_json())])
        d = dispatcher(s, topics, unique_name)
        with running(d):
            produce(broker, topics[0], [(raised.unit_id, raised.to_json())])
            receiver.wait_for(1, timeout_s=30)
            result = CliRunner().invoke(app, ["alerts", "silence", raised.key, "--for", "2h"])
            assert result.exit_code == 0, result.output
            produce(broker, topics[0], [(worse.unit_id, worse.to_json())])
            deadline = time.monotonic() + 20
            while d.stats().changes < 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            time.sleep(1.0)
        listed = CliRunner().invoke(app, ["alerts", "list", "--json"])
    assert len(receiver.requests) == 1  # only the raise, before the silence
    [alert] = json.loads(listed.output)["alerts"]
    assert (alert["severity"], alert["silenced_until_ms"] is not None) == ("red", True)


def test_a_registry_topic_made_after_the_start_is_followed(
    broker: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alerts import units

    monkeypatch.setattr(units, "LOOK_AGAIN_S", 0.2)
    topic = f"registry_late_{unique_name}"
    directory = units.UnitDirectory(topic, KafkaSettings(bootstrap_servers=broker).kafka_python_options())
    try:
        directory.catch_up(timeout_s=5)
        assert directory.units == {} and not directory._partitions  # no topic yet
        create_topics(broker, [topic], partitions=2)
        produce(broker, topic, [("U1", unit("U1").to_json())])
        deadline = time.monotonic() + 20
        while "U1" not in directory.units:
            assert time.monotonic() < deadline, "the registry topic was never found"
            directory.poll(0.2)
    finally:
        directory.close()
    assert directory.units["U1"].name == "某钢铁"
