"""channel_from_config (the routing file's channel entries), channels_from_settings and LogChannel."""

from __future__ import annotations

import logging
import re

import pytest
from pydantic import SecretStr

from alerts.channels import (
    DingTalkChannel,
    EmailChannel,
    KafkaForwardChannel,
    LogChannel,
    WebhookChannel,
    WeComChannel,
    channel_from_config,
    channels_from_settings,
)
from alerts.notification import NotificationKind
from energymon.settings import AlertSettings
from tests.notifications import make_alert, make_notification
from tests.receivers import DingTalkReceiver


@pytest.mark.parametrize(
    ("kind", "options", "secrets", "cls"),
    [
        ("log", {}, {}, LogChannel),
        ("webhook", {"url": "https://h.example/hook", "timeout_s": 3}, {"secret": "s"}, WebhookChannel),
        ("dingtalk", {}, {"url": "https://oapi.dingtalk.com/robot/send?access_token=t"}, DingTalkChannel),
        ("wecom", {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}, {}, WeComChannel),
        (
            "email",
            {"host": "smtp.example.cn", "sender": "a@example.cn", "security": "tls", "username": "a"},
            {"password": "p"},
            EmailChannel,
        ),
        ("kafka", {"bootstrap_servers": "127.0.0.1:9092", "topic": "alerts-out"}, {}, KafkaForwardChannel),
    ],
)
def test_every_kind_is_made_from_its_options(
    kind: str, options: dict[str, object], secrets: dict[str, str], cls: type
) -> None:
    assert isinstance(channel_from_config(kind, options, secrets), cls)


def test_email_port_follows_security() -> None:
    ports = []
    for security in ("starttls", "tls", "none"):
        channel = channel_from_config("email", {"host": "h", "sender": "a@b.cn", "security": security}, {})
        assert isinstance(channel, EmailChannel)
        ports.append(channel.port)
    assert ports == [587, 465, 25]


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("pager", {}, "unknown channel kind"),
        ("webhook", {}, "'url' is required"),
        ("webhook", {"url": "https://h/x", "timeut_s": 1}, "unknown option(s): timeut_s"),
        ("webhook", {"url": "https://h/x", "timeout_s": "5"}, "'timeout_s' has the wrong type"),
        ("email", {"host": "h", "sender": "a@b.cn", "security": "ssl"}, "security must be one of"),
        ("email", {"host": "h", "sender": "a@b.cn", "username": "u"}, "without a password"),
        ("kafka", {"bootstrap_servers": "h:1"}, "'topic' is required"),
    ],
)
def test_bad_entries_are_refused_naming_the_problem(
    kind: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        channel_from_config(kind, options, {})


def test_dingtalk_secret_from_secrets_signs_requests() -> None:
    with DingTalkReceiver(secret="sec-1") as robot:
        channel_from_config("dingtalk", {"url": robot.url}, {"secret": "sec-1"}).deliver(make_notification())
        [req] = robot.wait_for(1)
    assert req.signature_ok is True


def test_old_settings_still_give_log_and_webhook() -> None:
    settings = AlertSettings(webhook_url="https://h.example/hook", webhook_secret=SecretStr("s"))
    log, hook = channels_from_settings(settings)
    assert isinstance(log, LogChannel) and isinstance(hook, WebhookChannel)
    assert [type(c) for c in channels_from_settings(AlertSettings())] == [LogChannel]


@pytest.mark.parametrize(
    ("severity", "kind", "level"),
    [
        ("red", "raised", logging.WARNING),
        ("red", "updated", logging.WARNING),
        ("red", "escalated", logging.WARNING),
        ("red", "resolved", logging.INFO),
        ("yellow", "raised", logging.INFO),
    ],
)
def test_log_channel_levels(
    caplog: pytest.LogCaptureFixture, severity: str, kind: NotificationKind, level: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="energymon.alerts")
    alert = make_alert(severity=severity, state="resolved" if kind == "resolved" else "raised")
    LogChannel().deliver(make_notification(alert, kind=kind))
    [record] = caplog.records
    assert record.levelno == level
    line = record.getMessage()
    assert kind in line and alert.unit_id in line and "112.5" in line and alert.message in line
    assert "\n" not in line
