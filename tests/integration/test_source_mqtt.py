"""The MQTT source against real Mosquitto brokers: the machine's (127.0.0.1:1883, anonymous; every
test uses its own topic prefix) and, for passwords, TLS and broker restarts, a private one started by
this module on free ports (password file; a TLS listener with certificates made by openssl)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import pwd
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
import yaml
from pydantic import ValidationError

from collectors.sources.base import SourceError, SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.mqtt.plugin import Config, MqttSource, create
from energymon.localstack.ports import free_port, wait_for_port

SYSTEM_BROKER = ("127.0.0.1", 1883)
CLOCK_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TESTCASES = Path(__file__).parents[2] / "collectors/sources/mqtt/testcases"
USER, PASSWORD = "meter-gw", "s3cret-Passw0rd"


@pytest.fixture(scope="module")
def system_broker() -> tuple[str, int]:
    """The machine's Mosquitto; fails (not skips) with how to start it."""
    try:
        socket.create_connection(SYSTEM_BROKER, timeout=2).close()
    except OSError as exc:
        pytest.fail(
            f"no MQTT broker on 127.0.0.1:1883 ({exc}); "
            "start it: mosquitto -d -c /etc/mosquitto/mosquitto.conf",
            pytrace=False,
        )
    return SYSTEM_BROKER


class PrivateMosquitto:
    """A mosquitto with a password file on ``port`` and TLS (server cert for 127.0.0.1) on ``tls_port``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, self.tls_port = free_port(), free_port()
        self.ca_file = folder / "ca.crt"
        self._process: subprocess.Popen[bytes] | None = None
        self._make_files()

    def _make_files(self) -> None:
        f = self.folder
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        (f / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for cmd in (
            [
                "openssl",
                "req",
                "-x509",
                *ec,
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=t-ca",
            ],
            ["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
            ["mosquitto_passwd", "-b", "-c", "passwd", USER, PASSWORD],
        ):
            subprocess.run(cmd, cwd=f, check=True, capture_output=True)
        (f / "mosquitto.conf").write_text(
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\npersistence false\nlog_dest file {f}/mosquitto.log\n"
            f"allow_anonymous false\npassword_file {f}/passwd\n"
            f"listener {self.port} 127.0.0.1\n"
            f"listener {self.tls_port} 127.0.0.1\n"
            f"cafile {f}/ca.crt\ncertfile {f}/server.crt\nkeyfile {f}/server.key\n"
        )

    def start(self) -> None:
        self._process = subprocess.Popen(["mosquitto", "-c", str(self.folder / "mosquitto.conf")])
        wait_for_port("127.0.0.1", self.port, 5)
        wait_for_port("127.0.0.1", self.tls_port, 5)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(5)
            self._process = None


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def prefix() -> str:
    return f"energymon-test/{uuid.uuid4().hex[:10]}"


def make_source(tmp_path: Path, prefix: str, source: dict[str, Any], **overrides: Any) -> MqttSource:
    """The plugin's source for a config dict whose topics get ``prefix``; the clock is fixed."""
    doc = {**source, **overrides}
    doc["subscriptions"] = [{**s, "topic": f"{prefix}/{s['topic']}"} for s in doc["subscriptions"]]
    source_ = create(Config.model_validate(doc), SourceContext("site-t", tmp_path, clock=lambda: CLOCK_S))
    assert isinstance(source_, MqttSource)
    return source_


def json_source(**overrides: Any) -> dict[str, Any]:
    """A one-subscription JSON source config: meter ``{1}`` of ``meters/+``, value ``v``."""
    sub = {
        "topic": "meters/+",
        "format": "json",
        "unit_id": "U1",
        "meter_id": "{1}",
        "energy": "electricity",
        "uom": "kWh",
        "value": "v",
    }
    return {
        "name": "m",
        "type": "mqtt",
        "host": "127.0.0.1",
        "clean_session": True,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "subscriptions": [sub],
        **overrides,
    }


class Received:
    """An ``emit`` that keeps each payload's readings."""

    def __init__(self) -> None:
        self.emits: list[list[SourceReading]] = []
        self._changed = asyncio.Event()

    async def emit(self, readings: list[SourceReading]) -> None:
        self.emits.append(readings)
        self._changed.set()

    async def wait_for(self, n: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.emits) < n:
                self._changed.clear()
                await self._changed.wait()


@asynccontextmanager
async def running(source: MqttSource) -> AsyncIterator[Received]:
    """``source.run`` in a task, once subscribed."""
    received = Received()
    task = asyncio.create_task(source.run(received.emit))
    try:
        async with asyncio.timeout(5):
            await source.subscribed.wait()
        yield received
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def publish(port: int, messages: list[tuple[str, bytes]], **client: Any) -> None:
    async with aiomqtt.Client("127.0.0.1", port, **client) as c:
        for topic, payload in messages:
            await c.publish(topic, payload, qos=1)


def payload_bytes(message: dict[str, Any]) -> bytes:
    return message["payload_text"].encode() if "payload_text" in message else orjson.dumps(message["payload"])


@pytest.mark.parametrize("case", sorted(p.name for p in TESTCASES.iterdir()))
async def test_testcase_emits_expected_readings(
    case: str, system_broker: tuple[str, int], prefix: str, tmp_path: Path
) -> None:
    doc = yaml.safe_load((TESTCASES / case / "config.yaml").read_text())
    expected = json.loads((TESTCASES / case / "expected.json").read_text())
    source = make_source(tmp_path, prefix, doc["source"], port=system_broker[1])
    async with running(source) as received:
        await publish(
            system_broker[1], [(f"{prefix}/{m['topic']}", payload_bytes(m)) for m in doc["messages"]]
        )
        await received.wait_for(len(expected["emits"]))
        got = [[dataclasses.asdict(r) for r in emit] for emit in received.emits]
        assert got == expected["emits"]
        assert dataclasses.asdict(source.counters) == expected["counters"]


async def test_read_once_returns_the_first_payload(
    system_broker: tuple[str, int], prefix: str, tmp_path: Path
) -> None:
    source = make_source(tmp_path, prefix, json_source(port=system_broker[1]))

    async def keep_publishing() -> None:
        while True:
            await publish(system_broker[1], [(f"{prefix}/meters/EL07", b'{"v": 42}')])
            await asyncio.sleep(0.1)

    publisher = asyncio.create_task(keep_publishing())
    try:
        readings = await source.read_once(timeout_s=5)
    finally:
        publisher.cancel()
    assert readings == [
        SourceReading("U1", "EL07", "electricity", "cumulative", 42.0, "kWh", 1_767_225_600_000)
    ]


async def test_read_once_without_a_broker_raises_source_error(prefix: str, tmp_path: Path) -> None:
    source = make_source(tmp_path, prefix, json_source(port=free_port()))
    with pytest.raises(SourceError, match=r"MQTT broker 127\.0\.0\.1:"):
        await source.read_once(timeout_s=5)


async def test_username_and_password_connect_and_receive(
    private_broker: PrivateMosquitto, prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    config = json_source(port=private_broker.port, username=USER, password_file=str(tmp_path / "pw"))
    source = make_source(tmp_path, prefix, config)
    async with running(source) as received:
        await publish(
            private_broker.port, [(f"{prefix}/meters/EL01", b'{"v": 1.5}')], username=USER, password=PASSWORD
        )
        await received.wait_for(1)
    assert [r.value for r in received.emits[0]] == [1.5]


async def test_wrong_password_is_retried_and_logged_without_the_password(
    private_broker: PrivateMosquitto, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = json_source(port=private_broker.port, username=USER, password="wrong-Passw0rd")
    source = make_source(tmp_path, prefix, config)
    with caplog.at_level(logging.DEBUG):
        task = asyncio.create_task(source.run(Received().emit))
        await asyncio.sleep(0.8)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    retries = [r.getMessage() for r in caplog.records if "reconnecting in" in r.getMessage()]
    assert len(retries) >= 2, caplog.text
    assert "authori" in retries[0].lower()  # "Not authorized"
    assert not source.subscribed.is_set()
    assert "wrong-Passw0rd" not in caplog.text


async def test_tls_with_ca_file_connects_and_receives(
    private_broker: PrivateMosquitto, prefix: str, tmp_path: Path
) -> None:
    config = json_source(
        port=private_broker.tls_port,
        username=USER,
        password=PASSWORD,
        tls={"ca_file": str(private_broker.ca_file)},
    )
    source = make_source(tmp_path, prefix, config)
    async with running(source) as received:
        await publish(
            private_broker.port, [(f"{prefix}/meters/EL02", b'{"v": 2}')], username=USER, password=PASSWORD
        )
        await received.wait_for(1)
    assert received.emits[0][0].meter_id == "EL02"


async def test_tls_without_the_broker_ca_is_refused(
    private_broker: PrivateMosquitto, prefix: str, tmp_path: Path
) -> None:
    config = json_source(port=private_broker.tls_port, username=USER, password=PASSWORD, tls={})
    source = make_source(tmp_path, prefix, config)
    with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED"):
        await source.read_once(timeout_s=5)


def test_tls_config_is_checked_at_load_and_create(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        Config.model_validate(json_source(tls={"cert_file": str(cert)}))
    missing_ca = Config.model_validate(json_source(tls={"ca_file": str(tmp_path / "missing.pem")}))
    with pytest.raises(SourceError, match=r"source m: tls\.ca_file: .*No such file"):
        create(missing_ca, SourceContext("site-t", tmp_path))
    assert Config.model_validate(json_source(tls={})).broker_port == 8883


async def test_reconnects_after_the_broker_restarts(
    private_broker: PrivateMosquitto, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = json_source(port=private_broker.port, username=USER, password=PASSWORD)
    source = make_source(tmp_path, prefix, config)
    auth = {"username": USER, "password": PASSWORD}
    with caplog.at_level(logging.INFO):
        async with running(source) as received:
            private_broker.stop()
            async with asyncio.timeout(5):
                while source.subscribed.is_set():
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # a failed attempt or two with the broker down
            private_broker.start()
            async with asyncio.timeout(5):
                await source.subscribed.wait()
            await publish(private_broker.port, [(f"{prefix}/meters/EL03", b'{"v": 3}')], **auth)
            await received.wait_for(1)
    assert received.emits[0][0].value == 3.0
    assert "reconnecting in" in caplog.text
    assert f"reconnected to 127.0.0.1:{private_broker.port}" in caplog.text
