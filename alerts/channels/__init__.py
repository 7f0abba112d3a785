"""Delivery channels: where alerts go (the log and a signed webhook in this first cut)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Channel, DeliveryError
from .log import LogChannel
from .webhook import WebhookChannel, delivery_id, sign, verify

if TYPE_CHECKING:  # alerts/ imports only energy/ at run time (ARCHITECTURE.md)
    from energymon.settings import AlertSettings

__all__ = [
    "Channel",
    "DeliveryError",
    "LogChannel",
    "WebhookChannel",
    "channels_from_settings",
    "delivery_id",
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
