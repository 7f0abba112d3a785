"""Bad input through the collector's real sockets (hypothesis, derandomized, a few hundred cases):
HTTP POSTs to the push endpoint served on a free port, and MQTT payloads published to the machine's
Mosquitto (127.0.0.1:1883) for the MQTT source subscribed to it. The pure doors behind them are
tested with thousands of cases in test_bad_input_readings.py and test_bad_input_collectors.py.

* HTTP: a message refused whole is a 400 whose ``error`` is the rule; a message with bad readings is
  a 202 listing each refused reading's rule (or a 400 ``no_valid_reading`` when none is good), and
  exactly its good readings are emitted;
* MQTT: every payload is counted, a bad one as rejected, and exactly the good readings are emitted;
  the source keeps its subscription throughout.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from paho.mqtt.enums import CallbackAPIVersion

from collectors.sources.base import Emit, SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.http.plugin import Config as HttpConfig
from collectors.sources.http.plugin import HttpPushSource
from collectors.sources.mqtt.plugin import Config as MqttConfig
from collectors.sources.mqtt.plugin import MqttSource
from energymon.localstack.ports import free_port
from tests.property.bad_input import NOW_MS, UNIT_ID, Case, any_bad_message, bad_json_payloads, profile

TOKEN = "bad-input-token-0123456789"
MOSQUITTO = ("127.0.0.1", 1883)


def sent_now(case: Case) -> bool:
    """Whether ``case`` means the same to a receiver whose clock is now as to one at NOW_MS (it has
    no reading refused for being ahead of NOW_MS, which is in the past)."""
    return all("ts_in_future" not in e.checks for e in case.bad_expectations)


class Running:
    """A source's ``run`` in a thread with its own event loop; what it emitted in ``emits``."""

    def __init__(self, run: Callable[[Emit], Coroutine[Any, Any, None]]) -> None:
        self.emits: list[list[SourceReading]] = []
        self._run = run
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._main, name="source", daemon=True)
        self._thread.start()

    async def _emit(self, readings: list[SourceReading]) -> None:
        self.emits.append(readings)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self._run(self._emit))
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    def settle(self) -> None:
        """Wait until the source's loop has finished what it is doing now (a callback queued after it
        runs once the source awaits its next message)."""
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self._loop).result(10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


# --- HTTP ------------------------------------------------------------------------------------------------


class Http:
    """The HTTP push source on a free port, and a keep-alive client connection to it."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        config = HttpConfig.model_validate(
            {
                "name": "push",
                "type": "http_push",
                "host": "127.0.0.1",
                "port": self.port,
                "tokens": [{"site": "plant-a", "token": TOKEN}],
                "max_body_bytes": 4 * 1024 * 1024,
            }
        )
        self.source = HttpPushSource(config)
        self.running = Running(self.source.run)
        self.client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        wait_for("/healthz", self._healthy)

    def _healthy(self) -> bool:
        try:
            return self.post_raw("GET", "/healthz", b"")[0] == 200
        except OSError:
            self.client.close()
            return False

    def post_raw(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        self.client.request(method, path, body=body, headers=headers)
        response = self.client.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def post(self, body: bytes) -> tuple[int, Any]:
        return self.post_raw("POST", "/v1/readings", body)


@pytest.fixture(scope="module")
def http_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    served = Http(tmp_path_factory.mktemp("http"))
    try:
        yield served
    finally:
        served.client.close()
        served.running.stop()


@profile(300)
@given(case=any_bad_message().filter(sent_now))
def test_http_push_answers_bad_input_with_4xx_and_the_rule_and_emits_only_good_readings(
    case: Case, http_source: Http
) -> None:
    emitted = len(http_source.running.emits)
    status, body = http_source.post(case.raw)
    if case.whole is not None:
        assert (status, body["error"]) == (400, case.whole.rule), body
        assert body["detail"]
        assert len(http_source.running.emits) == emitted
        return
    rules = [r["rule"] for r in body["rejected"]]
    assert rules == ["bad_reading"] * len(case.bad_expectations)
    assert all(r["detail"] for r in body["rejected"])
    if not case.good_meter_ids:
        assert (status, body["error"]) == (400, "no_valid_reading")
        assert len(http_source.running.emits) == emitted
        return
    assert (status, body["accepted"]) == (202, len(case.good_meter_ids))
    (readings,) = http_source.running.emits[emitted:]
    assert [r.meter_id for r in readings] == case.good_meter_ids
    assert {r.unit_id for r in readings} == {UNIT_ID}


# --- MQTT ------------------------------------------------------------------------------------------------


class Mqtt:
    """The MQTT source subscribed (under a prefix of its own) on the machine's Mosquitto, and a
    publishing client."""

    def __init__(self, folder: Path) -> None:
        self.prefix = f"bad-input-{uuid.uuid4().hex[:8]}"
        json_sub = {
            "format": "json",
            "unit_id": "{1}",
            "meter_id": "{2}",
            "energy": "electricity",
            "uom": "kWh",
        }
        config = MqttConfig.model_validate(
            {
                "name": "mqtt-bad",
                "type": "mqtt",
                "host": MOSQUITTO[0],
                "port": MOSQUITTO[1],
                "clean_session": True,
                "qos": 1,
                "subscriptions": [
                    {"topic": f"{self.prefix}/gw/+/readings", "format": "readings_message"},
                    *(
                        {
                            **json_sub,
                            "topic": f"{self.prefix}/meters/+/+/{f}",
                            "value": "data.v",
                            "ts": "data.t",
                            "ts_format": f,
                        }
                        for f in ("epoch_ms", "epoch_s", "iso8601")
                    ),
                ],
            }
        )
        context = SourceContext("site-t", folder, clock=lambda: NOW_MS / 1000)
        self.source = MqttSource(config, context)
        self.running = Running(self.source.run)
        wait_for("the MQTT subscription", self.source.subscribed.is_set)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.prefix}-pub")
        self.client.connect(*MOSQUITTO)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish (QoS 1) and wait until the source has counted the payload."""
        before = self.source.counters.payloads
        self.client.publish(f"{self.prefix}/{topic}", payload, qos=1).wait_for_publish(10)
        wait_for(f"the source to count {topic}", lambda: self.source.counters.payloads > before)
        self.running.settle()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.running.stop()


@pytest.fixture(scope="module")
def mqtt_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mqtt]:
    try:
        served = Mqtt(tmp_path_factory.mktemp("mqtt"))
    except (OSError, AssertionError) as exc:
        pytest.fail(f"no MQTT broker on 127.0.0.1:1883 ({exc}): mosquitto -d", pytrace=False)
    try:
        yield served
    finally:
        served.close()


def counters(source: MqttSource) -> tuple[int, int, int, int]:
    c = source.counters
    return c.payloads, c.readings, c.rejected_payloads, c.rejected_readings


def mqtt_topic_ok(case: tuple[str, bytes, str]) -> bool:
    """Topics a broker takes: no control characters (Mosquitto drops a client that sends one)."""
    return all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in case[0])


@profile(150)
@given(case=bad_json_payloads().filter(mqtt_topic_ok))
def test_mqtt_bad_json_payloads_are_counted_as_rejected_and_emit_nothing(
    case: tuple[str, bytes, str], mqtt_source: Mqtt
) -> None:
    topic, payload, _rule = case
    before, emitted = counters(mqtt_source.source), len(mqtt_source.running.emits)
    mqtt_source.publish(topic, payload)
    after = counters(mqtt_source.source)
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 0, 1, 0]
    assert len(mqtt_source.running.emits) == emitted
    assert mqtt_source.running.alive and mqtt_source.source.subscribed.is_set()


@profile(150)
@given(case=any_bad_message())
def test_mqtt_readings_messages_emit_only_their_good_readings(case: Case, mqtt_source: Mqtt) -> None:
    before, emitted = counters(mqtt_source.source), len(mqtt_source.running.emits)
    mqtt_source.publish("gw/gw7/readings", case.raw)
    delta = [a - b for a, b in zip(counters(mqtt_source.source), before, strict=True)]
    good, bad = case.good_meter_ids, case.bad_expectations
    if case.whole is not None or not good:
        assert delta == [1, 0, 1, 0]
        assert len(mqtt_source.running.emits) == emitted
    else:
        assert delta == [1, len(good), 0, len(bad)]
        (readings,) = mqtt_source.running.emits[emitted:]
        assert [r.meter_id for r in readings] == good
    assert mqtt_source.running.alive and mqtt_source.source.subscribed.is_set()


def test_a_good_json_payload_after_all_that_is_emitted(mqtt_source: Mqtt) -> None:
    """The source still works after the bad payloads above (same module: same source)."""
    emitted = len(mqtt_source.running.emits)
    mqtt_source.publish(
        f"meters/{UNIT_ID}/EL01/epoch_ms", json.dumps({"data": {"v": 12.5, "t": NOW_MS}}).encode()
    )
    (readings,) = mqtt_source.running.emits[emitted:]
    assert [(r.unit_id, r.meter_id, r.value, r.ts_ms) for r in readings] == [(UNIT_ID, "EL01", 12.5, NOW_MS)]
