"""Kafka security settings on real clients and a real broker.

tansu speaks neither TLS nor SASL. For TLS it sits behind :class:`tests.tls.TlsProxy`, a mutual-TLS
listener (client certificate required) that it advertises as its own address, so every client
reaches it only through TLS: a client that did not get the TLS settings cannot talk to it at all.
SASL cannot succeed against tansu; what is tested is that each client makes the SASL handshake (and
so fails), instead of connecting without credentials.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.structs import TopicPartition

from alerts.dispatcher import Dispatcher
from alerts.units import UnitDirectory
from collectors.forwarder import CollectorKafka
from collectors.publisher import Publisher
from energy import topics
from energy.registry import UnitInfo
from energymon.localstack.broker import TansuBroker
from energymon.localstack.ports import free_port, wait_for_port
from energymon.settings import InfluxSettings, KafkaSettings, KafkaTlsError, Settings
from energymon.up import init_backends
from streams.app import broker_credentials
from tests.tls import KEY_PASSWORD, Certs, TlsProxy, make_certs

pytestmark = pytest.mark.integration

UNIT = UnitInfo(unit_id="U-TLS", name="tls unit", region="江苏", grid_region="east_china", industry="steel")
MESSAGE = {
    "v": 1, "unit_id": "U-TLS", "source": "tls-test", "seq": 1,
    "readings": [{"meter_id": "M1", "energy": "electricity", "kind": "cumulative", "value": 1.0,
                  "uom": "kWh", "ts": 1767225600000}],
}  # fmt: skip


class TansuBehindProxy(TansuBroker):
    """A tansu broker that advertises ``advertised_port`` (the TLS proxy's) instead of its own."""

    def __init__(self, port: int, advertised_port: int, log_path: Path) -> None:
        super().__init__(port, log_path=log_path)
        self.advertised_port = advertised_port

    def argv(self) -> list[str]:
        argv = super().argv()
        argv[argv.index("--advertised-listener-url") + 1] = f"tcp://{self.host}:{self.advertised_port}"
        return argv

    def _ready(self, remaining_s: float) -> bool:
        wait_for_port(self.host, self.port, min(remaining_s, 0.5))  # metadata points at the proxy
        return True


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_broker(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsProxy]:
    """tansu reachable only through a mutual-TLS proxy; yields the proxy."""
    proxy_port = free_port()
    broker = TansuBehindProxy(free_port(), proxy_port, tmp_path_factory.mktemp("tansu-tls") / "tansu.log")
    broker.start()
    proxy = TlsProxy(proxy_port, (broker.host, broker.port), certs.server_context()).start()
    try:
        yield proxy
    finally:
        proxy.stop()
        broker.stop()


def tls_kafka(certs: Certs, bootstrap: str, tmp_path: Path, **changes: object) -> KafkaSettings:
    """SSL with the test CA, the client certificate and its encrypted key (password from a file)."""
    password_file = tmp_path / "client-key-password"
    password_file.write_text(KEY_PASSWORD + "\n")
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": certs.ca,
        "ssl_certfile": certs.client_cert,
        "ssl_keyfile": certs.client_key_encrypted,
        "ssl_password_file": password_file,
        "ssl_handshake_timeout_s": 2.0,
        "tansu": True,
        **changes,
    }
    return KafkaSettings.model_validate(options)


def test_every_client_reaches_the_broker_through_mutual_tls(
    certs: Certs, tls_broker: TlsProxy, influx: str, unique_name: str, tmp_path: Path
) -> None:
    kafka = tls_kafka(certs, tls_broker.bootstrap, tmp_path)
    settings = Settings(
        kafka=kafka, influx=InfluxSettings(url=influx, database=unique_name), state_dir=tmp_path / "state"
    )
    init_backends(settings)  # kafka-python admin client: creates the topics

    with Publisher(CollectorKafka.model_validate(kafka.model_dump())) as publisher:  # the collector's
        publisher.send_readings(MESSAGE)
        publisher.send(topics.REGISTRY, UNIT.unit_id, UNIT.to_json())
        publisher.flush(10)

    directory = UnitDirectory(topics.REGISTRY, kafka.kafka_python_options())  # the dispatcher's
    try:
        directory.catch_up(timeout_s=10)
        assert directory.get(UNIT.unit_id) == UNIT
    finally:
        directory.close()

    dispatcher = Dispatcher(settings, topic=topics.READINGS, group_id=unique_name)
    consumer = KafkaConsumer(**dispatcher.consumer_config())
    try:
        consumer.subscribe([topics.READINGS])
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            records = [r for batch in consumer.poll(500).values() for r in batch]
        assert [orjson.loads(r.value)["unit_id"] for r in records] == ["U-TLS"]
    finally:
        consumer.close()
        dispatcher.outbox.close()

    assert asyncio.run(faust_round_trip(kafka, unique_name)) == b"through aiokafka"


async def faust_round_trip(kafka: KafkaSettings, topic: str) -> bytes | None:
    """Send and read back one record with aiokafka clients made from the worker's Faust credentials
    as Faust makes its own (credentials_to_aiokafka_auth)."""
    auth = credentials_to_aiokafka_auth(broker_credentials(kafka))
    producer = AIOKafkaProducer(bootstrap_servers=kafka.servers(), **auth)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"through aiokafka", partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.servers(), enable_auto_commit=False, **auth)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        record = await asyncio.wait_for(consumer.getone(), 10)
        value: bytes | None = record.value
        return value
    finally:
        await consumer.stop()


def test_a_tls_client_against_a_plaintext_broker_fails_clearly(
    certs: Certs, broker: str, tmp_path: Path
) -> None:
    """kafka-python 3.0 would wait for ever on tansu's plaintext listener; the handshake check turns
    that into an error naming the likely cause, for kafka-python clients and the Faust worker."""
    kafka = tls_kafka(certs, broker, tmp_path, ssl_handshake_timeout_s=1.0)
    with pytest.raises(KafkaTlsError, match=r"no TLS handshake within 1 s: is it a TLS listener"):
        Publisher(kafka)
    with pytest.raises(KafkaTlsError, match=r"is it a TLS listener"):
        broker_credentials(kafka)


def test_an_untrusted_or_misnamed_broker_certificate_is_refused(
    certs: Certs, tls_broker: TlsProxy, tmp_path: Path
) -> None:
    with pytest.raises(KafkaTlsError, match="certificate is not accepted: self-signed certificate"):
        tls_kafka(certs, tls_broker.bootstrap, tmp_path, ssl_cafile=certs.other_ca).kafka_python_options()

    misnamed = TlsProxy(free_port(), ("127.0.0.1", 9), certs.server_context("wrong-name", False)).start()
    try:
        with pytest.raises(KafkaTlsError, match="IP address mismatch"):
            tls_kafka(certs, misnamed.bootstrap, tmp_path).check_tls()
        tls_kafka(certs, misnamed.bootstrap, tmp_path, ssl_check_hostname=False).check_tls()
    finally:
        misnamed.stop()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_sasl_settings_reach_the_broker_from_kafka_python_and_faust(
    mechanism: str, broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = f"sasl-{mechanism}-pw-5f2a"
    kafka = KafkaSettings(
        bootstrap_servers=broker,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="energymon",
        sasl_password=password,
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KafkaTimeoutError):
        KafkaProducer(**kafka.kafka_python_options(), bootstrap_timeout_ms=1000)
    assert "SaslHandshake failed: UnsupportedSaslMechanismError" in caplog.text

    async def start_aiokafka() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker, **credentials_to_aiokafka_auth(broker_credentials(kafka))
        )
        try:
            await producer.start()
        finally:
            await producer.stop()

    caplog.clear()
    with pytest.raises(KafkaConnectionError):
        asyncio.run(start_aiokafka())
    assert "UnsupportedSaslMechanismError" in caplog.text
