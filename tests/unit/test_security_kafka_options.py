"""Kafka security settings → the options of every client energymon makes, and secrets kept out of logs.

The client classes are replaced by recorders here (their construction is what is tested);
tests/integration/test_security_kafka.py runs the same clients over real TLS and SASL handshakes.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

import alerts.units
import energymon.live
import energymon.up
from alerts.channels.factory import channel_from_config
from alerts.channels.kafka_forward import KafkaForwardChannel
from alerts.dispatcher import Dispatcher
from collectors.forwarder import CollectorKafka
from collectors.publisher import Publisher
from collectors.site_config import ConfigError, load_site_config
from energymon import redact
from energymon.localstack.ports import free_port
from energymon.settings import MASK, InfluxSettings, KafkaSettings, Settings
from streams.app import broker_credentials, create_app
from tests.tls import KEY_PASSWORD, Certs, make_certs

PASSWORD = "sasl-pw-3e9d1c"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tls"))


def secured(certs: Certs, protocol: str, mechanism: str | None = None) -> KafkaSettings:
    """Settings of ``protocol`` on a port nobody listens on (the TLS check skips a refused server)."""
    options: dict[str, Any] = {"bootstrap_servers": f"127.0.0.1:{free_port()}", "security_protocol": protocol}
    if protocol.startswith("SASL_"):
        options.update(sasl_mechanism=mechanism, sasl_username="energymon", sasl_password=PASSWORD)
    if protocol in ("SSL", "SASL_SSL"):
        options.update(
            ssl_cafile=certs.ca,
            ssl_certfile=certs.client_cert,
            ssl_keyfile=certs.client_key_encrypted,
            ssl_password=KEY_PASSWORD,
        )
    return KafkaSettings.model_validate(options)


CASES = [
    ("PLAINTEXT", None),
    ("SSL", None),
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SASL_SSL", "SCRAM-SHA-512"),
    ("SASL_SSL", None),  # PLAIN when unset
]


def expected_security(protocol: str, mechanism: str | None) -> dict[str, Any]:
    """The security part of kafka-python's options for a case (the context checked apart)."""
    expected: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        expected.update(
            sasl_mechanism=mechanism or "PLAIN", sasl_plain_username="energymon", sasl_plain_password=PASSWORD
        )
    return expected


def check_context(context: Any, certs: Certs) -> None:
    """A verifying TLS 1.2+ context that trusts the test CA and holds the client certificate."""
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_kafka_python_options_carry_sasl_and_tls(certs: Certs, protocol: str, mechanism: str | None) -> None:
    kafka = secured(certs, protocol, mechanism)
    options = kafka.kafka_python_options()
    context = options.pop("ssl_context", None)
    servers = [kafka.bootstrap_servers]
    assert options == {"bootstrap_servers": servers, **expected_security(protocol, mechanism)}
    if kafka.tls:
        check_context(context, certs)
    else:
        assert context is None
    assert PASSWORD not in repr(options)  # the password is Redacted: a logged dict shows the mask


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_faust_credentials_give_aiokafka_the_same_security(
    certs: Certs, protocol: str, mechanism: str | None
) -> None:
    kafka = secured(certs, protocol, mechanism)
    auth = dict(credentials_to_aiokafka_auth(broker_credentials(kafka)))  # as Faust turns them into options
    context = auth.pop("ssl_context", None)
    assert auth == expected_security(protocol, mechanism)
    if kafka.tls:
        check_context(context, certs)
    else:
        assert context is None


def test_the_worker_app_gets_the_credentials(certs: Certs, tmp_path: Path) -> None:
    settings = Settings(
        kafka=secured(certs, "SASL_SSL", "SCRAM-SHA-256"),
        influx=InfluxSettings(url="http://127.0.0.1:1"),
        state_dir=tmp_path,
    )
    credentials = create_app(settings).conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("energymon", PASSWORD)
    assert credentials.mechanism.value == "SCRAM-SHA-256" and credentials.ssl_context is not None
    assert PASSWORD not in repr(credentials)


class Recorded(Exception):
    """Raised by a recording client class once it has its options."""


def recorder(seen: list[dict[str, Any]]) -> type:
    class Client:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            seen.append(kwargs)
            raise Recorded

    return Client


def build_publisher(kafka: KafkaSettings, tmp_path: Path) -> None:
    Publisher(kafka)


def build_collector_publisher(kafka: KafkaSettings, tmp_path: Path) -> None:
    Publisher(CollectorKafka.model_validate(kafka.model_dump()))  # as the forwarder makes it


def build_unit_directory(kafka: KafkaSettings, tmp_path: Path) -> None:
    alerts.units.UnitDirectory("registry", kafka.kafka_python_options())  # as the dispatcher does


def build_alert_tail(kafka: KafkaSettings, tmp_path: Path) -> None:
    energymon.live.AlertTail(Settings(kafka=kafka)).run()


def build_admin(kafka: KafkaSettings, tmp_path: Path) -> None:
    energymon.up.init_backends(Settings(kafka=kafka, influx=InfluxSettings(url="http://127.0.0.1:1")))


SITES = {
    "collectors.publisher.KafkaProducer": build_publisher,
    "collectors.publisher.KafkaProducer (forwarder)": build_collector_publisher,
    "alerts.units.KafkaConsumer": build_unit_directory,
    "energymon.live.KafkaConsumer": build_alert_tail,
    "kafka.KafkaAdminClient": build_admin,
}


@pytest.mark.parametrize("site", list(SITES))
def test_every_kafka_python_client_is_made_with_the_security_options(
    site: str, certs: Certs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(site.split(" ")[0], recorder(seen))
    kafka = secured(certs, "SASL_SSL", "SCRAM-SHA-512")
    with pytest.raises(Recorded):
        SITES[site](kafka, tmp_path)
    (options,) = seen
    assert {k: options[k] for k in expected_security("SASL_SSL", "SCRAM-SHA-512")} == expected_security(
        "SASL_SSL", "SCRAM-SHA-512"
    )
    check_context(options["ssl_context"], certs)


def test_the_dispatcher_consumer_is_made_with_the_security_options(certs: Certs, tmp_path: Path) -> None:
    settings = Settings(kafka=secured(certs, "SASL_PLAINTEXT", "PLAIN"), state_dir=tmp_path)
    dispatcher = Dispatcher(settings)
    try:
        config = dispatcher.consumer_config()
    finally:
        dispatcher.outbox.close()
    assert {k: config[k] for k in expected_security("SASL_PLAINTEXT", "PLAIN")} == expected_security(
        "SASL_PLAINTEXT", "PLAIN"
    )


def test_the_kafka_alert_channel_takes_its_secrets_from_files_only(tmp_path: Path) -> None:
    secret = tmp_path / "forward-password"
    secret.write_text("forward-pw-81b0\n")
    channel = channel_from_config(
        "kafka",
        {"bootstrap_servers": "h:1", "topic": "t", "producer_options": {"security_protocol": "SASL_SSL"}},
        {"sasl_plain_password": secret.read_text().strip()},
    )
    assert isinstance(channel, KafkaForwardChannel)
    assert channel._options == {"security_protocol": "SASL_SSL", "sasl_plain_password": "forward-pw-81b0"}
    with pytest.raises(ValueError, match="producer_options sasl_plain_password: give secrets as"):
        inline = {"bootstrap_servers": "h:1", "topic": "t", "producer_options": {"sasl_plain_password": "x"}}
        channel_from_config("kafka", inline, {})


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_username": "u"}, "SASL_SSL needs sasl_password"),
        ({"sasl_username": "u", "sasl_password": "p"}, "security_protocol is PLAINTEXT: the broker would"),
        ({"security_protocol": "SASL_PLAINTEXT", "ssl_cafile": "ca.pem", "sasl_username": "u",
          "sasl_password": "p"}, "ssl_cafile set but security_protocol is SASL_PLAINTEXT"),
        ({"security_protocol": "SSL", "ssl_keyfile": "k.pem"}, "ssl_keyfile and ssl_password need"),
    ],
)  # fmt: skip
def test_security_settings_that_would_be_ignored_are_errors(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        KafkaSettings.model_validate({"bootstrap_servers": "k:9092", **changes})


def test_unusable_tls_files_are_named(certs: Certs, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ssl_cafile .*missing\.pem"):
        KafkaSettings(
            bootstrap_servers="k:1", security_protocol="SSL", ssl_cafile=tmp_path / "missing.pem"
        ).ssl_context()
    wrong = secured(certs, "SSL").model_copy(update={"ssl_password": None})
    with pytest.raises(ValueError, match=r"ssl_keyfile .*client-encrypted\.key"):
        wrong.ssl_context()


def test_registered_secrets_are_masked_in_every_log_record(caplog: pytest.LogCaptureFixture) -> None:
    secret = "log-secret-\u00e9-42"
    redact.register([secret])
    redact.install()
    log = logging.getLogger("tests.redact")
    caplog.set_level(logging.DEBUG)
    log.debug("options %s", {"sasl_plain_password": secret})
    log.info("wire %r", b"\x00energymon\x00" + secret.encode())
    try:
        raise RuntimeError(f"auth failed for {secret}")
    except RuntimeError:
        log.exception("failed")
    text = caplog.text
    assert secret not in text and repr(secret.encode())[2:-1] not in text
    assert text.count(MASK) == 3  # in the dict, the bytes repr and the traceback


def test_a_site_config_takes_kafka_security_but_no_inline_secret(certs: Certs, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    head = "site: {id: js-01}\nsources: [{name: sim, type: simulator, units: 1}]\n"
    key_password = tmp_path / "key-password"
    key_password.write_text(KEY_PASSWORD)
    site.write_text(
        head + f"kafka: {{security_protocol: SSL, ssl_cafile: '{certs.ca}', "
        f"ssl_certfile: '{certs.client_cert}', ssl_keyfile: '{certs.client_key_encrypted}', "
        f"ssl_password_file: '{key_password}'}}\n"
    )
    kafka = load_site_config(site, KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")).kafka
    check_context(kafka.kafka_python_options()["ssl_context"], certs)
    site.write_text(head + "kafka: {security_protocol: SASL_SSL, sasl_username: u, sasl_password: inl1ne-pw}")
    with pytest.raises(ConfigError) as info:
        load_site_config(site, KafkaSettings(bootstrap_servers="k:9092"))
    [problem] = [str(p) for p in info.value.problems]
    assert "kafka.sasl_password: no secrets in the site config: use sasl_password_file" in problem
    assert "inl1ne-pw" not in problem
