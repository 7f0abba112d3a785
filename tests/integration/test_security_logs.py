"""No secret in any log: a pipeline run at DEBUG with every secret set to a distinctive value and
every one of them used.

A site collector (HTTP push source, bearer token from a file) forwards two readings messages to
the Kafka broker; the Faust worker (InfluxDB user and password, an InfluxDB token and a Grafana token
set) turns them into an `hourly_ceiling` alert; the dispatcher (API token from a file, routing file
with a signed webhook, a signed DingTalk robot whose URL carries its token, e-mail with SMTP AUTH, and
a forwarding Kafka channel with a SASL password) delivers it to real receivers. Then the alerts API is
asked with its token and `energymon config` is run. Every byte the processes wrote (stdout and stderr,
where their Python logging goes, DEBUG included) and every log file under their state directories is
searched for each secret, as text and in the encodings it travels in.

The main Kafka connection's SASL and key passwords are not set here: tansu speaks neither SASL nor
TLS (tests/integration/test_security_kafka.py, and tests/unit/test_security_kafka_options.py for their
masking); the forwarding channel's SASL password stands in for them, making failed SASL attempts.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from energy import topics
from energy.registry import UnitInfo
from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.influxdb import create_database
from energymon.localstack.ports import free_port
from energymon.localstack.process import ManagedProcess
from streams.status import STATUS_FILE, read_status
from tests.integration.pipeline_helpers import energymon_argv, wait_until, worker_env
from tests.receivers import DingTalkReceiver, WebhookReceiver
from tests.unit.test_channels_email import PASSWORD as SMTP_PASSWORD
from tests.unit.test_channels_email import USER as SMTP_USER
from tests.unit.test_channels_email import Mailbox, smtp_server

pytestmark = pytest.mark.integration

INFLUX_USER = "energymon-writer"
SECRETS = {
    "influx_password": "Infl-pw-9a7c3e",
    "influx_token": "Infl-tok-51d2f8",
    "grafana_token": "Graf-tok-0c4b6a",
    "webhook_secret": "Hook-sec-7e19d0",
    "api_token": "Api-tok-33f8b2c1",
    "push_token": "Push-tok-a84d1e6b2c",
    "dingtalk_secret": "Ding-sec-f2c07e",
    "dingtalk_token": "Ding-tok-6b9e41",
    "smtp_password": SMTP_PASSWORD,
    "forward_sasl_password": "Fwd-sasl-pw-4d0a9c",
}
UNIT = UnitInfo(
    unit_id="U-SEC", name="secret test works", region="江苏", grid_region="华东", industry="steel",
    hourly_tce_ceiling=0.01,
)  # fmt: skip


def forms(secret: str) -> set[str]:
    """A secret as it would show in a log: as text, URL-quoted, base64 (alone and as Basic auth)."""
    b64 = base64.b64encode(secret.encode()).decode()
    basic = base64.b64encode(f"{INFLUX_USER}:{secret}".encode()).decode()
    return {secret, urllib.parse.quote(secret, safe=""), b64.rstrip("="), basic.rstrip("=")}


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[str]:
    server = TansuBroker(free_port(), log_path=tmp_path / "tansu.log")
    server.start()
    try:
        yield server.bootstrap
    finally:
        server.stop()


def write_files(tmp_path: Path, hook: WebhookReceiver, smtp_port: int, broker: str, push_port: int) -> None:
    (tmp_path / "api.token").write_text(SECRETS["api_token"] + "\n")
    (tmp_path / "push.token").write_text(SECRETS["push_token"] + "\n")
    (tmp_path / "ding.secret").write_text(SECRETS["dingtalk_secret"] + "\n")
    routing = {
        "channels": {
            "hook": {"kind": "webhook", "options": {"url": hook.url, "secret_env": "TEST_HOOK_SECRET"}},
            "ding": {"kind": "dingtalk",
                     "options": {"url_env": "TEST_DING_URL", "secret_file": str(tmp_path / "ding.secret")}},
            "mail": {"kind": "email", "options": {
                "host": "127.0.0.1", "port": smtp_port, "security": "none", "sender": "alerts@example.cn",
                "username": SMTP_USER, "password_env": "TEST_SMTP_PASSWORD"}},
            "forward": {"kind": "kafka", "options": {
                "bootstrap_servers": broker, "topic": "alerts-forwarded", "timeout_s": 2,
                "producer_options": {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                                     "sasl_plain_username": "forwarder"},
                "sasl_plain_password_env": "TEST_FORWARD_PASSWORD"}},
        },
        "always": [
            {"name": "ops", "channel": "hook"},
            {"name": "duty", "channel": "ding"},
            {"name": "boss", "channel": "mail", "recipient": "boss@example.cn"},
            {"name": "bus", "channel": "forward"},
        ],
    }  # fmt: skip
    (tmp_path / "routing.yaml").write_bytes(orjson.dumps(routing))  # JSON is YAML
    site = {
        "site": {"id": "sec-site"},
        "state_dir": str(tmp_path / "collector"),
        "sources": [{"name": "push", "type": "http_push", "host": "127.0.0.1", "port": push_port,
                     "tokens": [{"site": "gateway", "token_file": str(tmp_path / "push.token")}]}],
    }  # fmt: skip
    (tmp_path / "site.yaml").write_bytes(orjson.dumps(site))


def post_readings(port: int, seq: int, ts_ms: int, kwh: float) -> int:
    message = {"v": 1, "unit_id": UNIT.unit_id, "source": "gw", "seq": seq, "readings": [
        {"meter_id": "EL1", "energy": "electricity", "kind": "cumulative", "value": kwh, "uom": "kWh",
         "ts": ts_ms}]}  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/readings",
        data=orjson.dumps(message),
        headers={"Authorization": f"Bearer {SECRETS['push_token']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        status: int = answer.status
        return status


def get_json(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        status: int = answer.status
        return status


def test_no_secret_reaches_any_log(own_broker: str, influx: str, unique_name: str, tmp_path: Path) -> None:
    create_topics(own_broker, [topics.READINGS, topics.READINGS_REJECTED, topics.ALERTS, topics.REGISTRY], 4)
    create_database(influx, unique_name)
    producer = KafkaProducer(bootstrap_servers=own_broker)
    producer.send(topics.REGISTRY, key=UNIT.unit_id.encode(), value=UNIT.to_json()).get(timeout=10)
    producer.close()
    push_port, api_port = free_port(), free_port()
    mailbox = Mailbox()
    state = tmp_path / "state"
    with (
        WebhookReceiver(secret=SECRETS["webhook_secret"]) as hook,
        DingTalkReceiver(token=SECRETS["dingtalk_token"], secret=SECRETS["dingtalk_secret"]) as ding,
        smtp_server(mailbox) as smtp_port,
    ):
        write_files(tmp_path, hook, smtp_port, own_broker, push_port)
        env = worker_env(
            own_broker, influx, unique_name, state,
            ENERGYMON_LOG_LEVEL="DEBUG",
            ENERGYMON_INFLUX__USERNAME=INFLUX_USER,
            ENERGYMON_INFLUX__PASSWORD=SECRETS["influx_password"],
            ENERGYMON_INFLUX__TOKEN=SECRETS["influx_token"],
            ENERGYMON_GRAFANA__TOKEN=SECRETS["grafana_token"],
            ENERGYMON_ALERTS__WEBHOOK_SECRET=SECRETS["webhook_secret"],
            ENERGYMON_ALERTS__API_PORT=str(api_port),
            ENERGYMON_ALERTS__API_TOKEN_FILE=str(tmp_path / "api.token"),
            ENERGYMON_ALERTS__ROUTING_FILE=str(tmp_path / "routing.yaml"),
            TEST_HOOK_SECRET=SECRETS["webhook_secret"],
            TEST_DING_URL=ding.url,
            TEST_SMTP_PASSWORD=SECRETS["smtp_password"],
            TEST_FORWARD_PASSWORD=SECRETS["forward_sasl_password"],
        )  # fmt: skip
        children = [
            ManagedProcess(name, energymon_argv(*argv), tmp_path / f"{name}.out", env=env)
            for name, argv in (
                ("worker", ["worker"]),
                ("dispatcher", ["alerts", "run"]),
                ("collector", ["collect", "-c", str(tmp_path / "site.yaml")]),
            )
        ]
        for child in children:
            child.start()
        try:
            wait_until(
                "the worker to know the unit",
                lambda: (read_status(state / STATUS_FILE) or {}).get("units_known", 0) >= 1,
                60, children,
            )  # fmt: skip
            now_quarter = int(time.time() // 900) * 900_000
            assert wait_until("the push source", lambda: _posted(push_port, 1, now_quarter - 1_800_000, 0.0),
                              20, children) == 202  # fmt: skip
            assert post_readings(push_port, 2, now_quarter - 900_000, 1000.0) == 202
            [hooked] = hook.wait_for(1, 40)
            [dinged] = ding.wait_for(1, 20)
            wait_until("the e-mail", lambda: mailbox.mails, 20, children)
            assert hooked.signature_ok and dinged.signature_ok and not dinged.problems
            assert mailbox.logins == [SMTP_USER]
            assert get_json(f"http://127.0.0.1:{api_port}/v1/alerts", SECRETS["api_token"]) == 200
            time.sleep(2)  # a forwarding attempt or two (SASL against tansu: refused)
        finally:
            for child in children:
                child.stop(15)
    config = subprocess.run(energymon_argv("config"), env=env, capture_output=True, text=True, timeout=60)
    assert config.returncode == 0, config.stderr

    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.out")}
    logs |= {str(p): p.read_text(errors="replace") for p in tmp_path.rglob("*.log") if p.name != "tansu.log"}
    logs["energymon config"] = config.stdout + config.stderr
    print({name: len(text) for name, text in logs.items()})
    assert all(re.search(r"\bDEBUG\b", logs[f"{name}.out"]) for name in ("worker", "dispatcher", "collector"))
    assert "UnsupportedSaslMechanism" in logs["dispatcher.out"]  # the forwarding channel tried SASL
    leaks = [
        f"{which} in {name}"
        for which, secret in SECRETS.items()
        for form in forms(secret)
        for name, text in logs.items()
        if form in text
    ]
    assert not leaks


def _posted(port: int, seq: int, ts_ms: int, kwh: float) -> int | None:
    """The status of a post, None while the source does not listen yet."""
    try:
        return post_readings(port, seq, ts_ms, kwh)
    except OSError:
        return None
