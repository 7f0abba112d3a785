"""A channel that POSTs each notification as JSON to an HTTP(S) endpoint, signed with a shared secret.

Request: ``POST <url>`` with body :func:`~alerts.channels.payload.notification_json` (the alert's
fields, then ``kind`` and ``delivery_id``; ``Content-Type: application/json``) and headers

- ``X-Energymon-Alert-Key``: the alert's key (``unit_id|rule…``), percent-encoded UTF-8;
- ``X-Energymon-Delivery``: the notification's ``delivery_id``, the same on every try and after every
  dispatcher restart: delivery is at-least-once, so a receiver drops a request whose id it has seen
  (the id is in the signed body too);
- ``X-Energymon-Signature: sha256=<hex>`` when a secret is configured: HMAC-SHA256 of the exact body
  bytes, keyed with the secret.

A 2xx answer means delivered; other answers and failures as in :mod:`alerts.channels.http`. The
secret and the signature are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import string
import urllib.parse

from energy.alert import Alert

from ..notification import Notification
from .http import HttpPoster, redact_url
from .payload import notification_json

SIGNATURE_HEADER = "X-Energymon-Signature"
DELIVERY_HEADER = "X-Energymon-Delivery"
KEY_HEADER = "X-Energymon-Alert-Key"
_KEY_SAFE = "".join(c for c in string.punctuation if c != "%")


def delivery_id(alert: Alert) -> str:
    """The first cut's idempotency id of an alert change, ``sha256(key|state|ts_ms)`` in hex (kept for
    callers of the old contract; notifications carry their own ``delivery_id``)."""
    return hashlib.sha256(f"{alert.key}|{alert.state}|{alert.ts_ms}".encode()).hexdigest()


def sign(body: bytes, secret: str) -> str:
    """The ``X-Energymon-Signature`` value for a body: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str | None) -> bool:
    """Whether ``signature`` (a header value) is the body's signature with ``secret`` (for receivers)."""
    return signature is not None and hmac.compare_digest(sign(body, secret), signature)


class WebhookChannel:
    """POSTs every notification as JSON to ``url``, signed with ``secret`` when one is given."""

    name = "webhook"

    def __init__(self, url: str, secret: str | None, timeout_s: float) -> None:
        self._http = HttpPoster(url, timeout_s, "webhook")
        self._secret = secret or None

    @property
    def url(self) -> str:
        return self._http.url

    @property
    def timeout_s(self) -> float:
        return self._http.timeout_s

    def __repr__(self) -> str:
        signed = "signed" if self._secret else "unsigned"
        return f"WebhookChannel({redact_url(self.url)!r}, {signed}, timeout_s={self.timeout_s})"

    def headers(self, n: Notification, body: bytes) -> dict[str, str]:
        """The request headers for notification ``n`` whose JSON body is ``body``."""
        headers = {
            "Content-Type": "application/json",
            KEY_HEADER: urllib.parse.quote(n.alert.key, safe=_KEY_SAFE),
            DELIVERY_HEADER: n.delivery_id,
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
        return headers

    def deliver(self, notification: Notification) -> None:
        """POST the notification; raise :class:`DeliveryError` unless the receiver answers 2xx."""
        body = notification_json(notification)
        self._http.post(body, self.headers(notification, body))
