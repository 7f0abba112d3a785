"""Delivery channels: how a notification travels (log, webhook, DingTalk, WeCom, e-mail, Kafka).

``channel_from_config(kind, options, secrets)`` makes one from the routing file's entry;
``channels_from_settings`` gives the first cut's list from the old settings (log + webhook_url).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Channel, DeliveryError
from .dingtalk import DingTalkChannel
from .email import EmailChannel
from .factory import channel_from_config
from .kafka_forward import KafkaForwardChannel
from .log import LogChannel
from .payload import notification_json
from .webhook import WebhookChannel, delivery_id, sign, verify
from .wecom import WeComChannel

if TYPE_CHECKING:  # alerts/ imports only energy/ at run time (ARCHITECTURE.md)
    from energymon.settings import AlertSettings

__all__ = [
    "Channel",
    "DeliveryError",
    "DingTalkChannel",
    "EmailChannel",
    "KafkaForwardChannel",
    "LogChannel",
    "WeComChannel",
    "WebhookChannel",
    "channel_from_config",
    "channels_from_settings",
    "delivery_id",
    "notification_json",
    "sign",
    "verify",
]


def channels_from_settings(settings: AlertSettings) -> list[Channel]:
    """The configured channels: the log always, the webhook when ``webhook_url`` is set."""
    channels: list[Channel] = [LogChannel()]
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        channels.append(WebhookChannel(settings.webhook_url, secret, settings.webhook_timeout_s))
    return channels
