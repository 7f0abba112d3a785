"""A channel that POSTs each alert as JSON to an HTTP(S) endpoint (stdlib ``urllib`` only).

Request: ``POST <url>`` with body ``alert.to_json()`` (``Content-Type: application/json``) and headers

- ``X-Energymon-Alert-Key``: the alert's key (``unit_id|rule``), percent-encoded UTF-8;
- ``X-Energymon-Delivery``: ``sha256("key|state|ts_ms")`` in hex. The same alert change always gets
  the same id (across retries and dispatcher restarts): delivery is at-least-once, so a receiver
  drops a request whose id it has already seen;
- ``X-Energymon-Signature: sha256=<hex>`` when a secret is configured: HMAC-SHA256 of the exact body
  bytes, keyed with the secret. There is no timestamp header: a receiver that fears replays checks
  the delivery id (and the ``ts_ms`` inside the signed body).

A 2xx answer means delivered. 5xx, 429 and 408 answers, timeouts and connection errors are retryable;
any other answer (other 4xx, a 3xx: redirects are not followed, since that would drop the body) is not.
The secret and the signature are never logged, and the URL appears in errors without its query string
or credentials (chat webhooks carry their token there).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import string
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from energy.alert import Alert

from .base import DeliveryError

USER_AGENT = "energymon-alerts/1"
RETRYABLE_STATUS = frozenset({408, 429})
_KEY_SAFE = "".join(c for c in string.punctuation if c != "%")
_ERROR_BODY_CHARS = 200


def delivery_id(alert: Alert) -> str:
    """The idempotency id of one alert change: ``sha256(key|state|ts_ms)`` in hex."""
    return hashlib.sha256(f"{alert.key}|{alert.state}|{alert.ts_ms}".encode()).hexdigest()


def sign(body: bytes, secret: str) -> str:
    """The ``X-Energymon-Signature`` value for a body: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str | None) -> bool:
    """Whether ``signature`` (a header value) is the body's signature with ``secret`` (for receivers)."""
    return signature is not None and hmac.compare_digest(sign(body, secret), signature)


def redact_url(url: str) -> str:
    """The URL without credentials, query string or fragment, fit for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turn a redirect into an HTTPError: following it would resend the POST as a bodiless GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP-date: ignored, the dispatcher's own backoff applies
    return seconds if seconds >= 0 else None


class WebhookChannel:
    """POSTs every alert as JSON to ``url``, signed with ``secret`` when one is given."""

    name = "webhook"

    def __init__(self, url: str, secret: str | None, timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http(s)://host/...: {redact_url(url)!r}")
        if timeout_s <= 0:
            raise ValueError("webhook timeout must be positive")
        self.url = url
        self._secret = secret or None
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._where = f"POST {redact_url(url)}"

    def __repr__(self) -> str:
        signed = "signed" if self._secret else "unsigned"
        return f"WebhookChannel({redact_url(self.url)!r}, {signed}, timeout_s={self.timeout_s})"

    def headers(self, alert: Alert, body: bytes) -> dict[str, str]:
        """The request headers for an alert whose JSON body is ``body``."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Energymon-Alert-Key": urllib.parse.quote(alert.key, safe=_KEY_SAFE),
            "X-Energymon-Delivery": delivery_id(alert),
        }
        if self._secret:
            headers["X-Energymon-Signature"] = sign(body, self._secret)
        return headers

    def deliver(self, alert: Alert) -> None:
        """POST the alert; raise :class:`DeliveryError` unless the receiver answers 2xx."""
        body = alert.to_json()
        request = urllib.request.Request(
            self.url, data=body, headers=self.headers(alert, body), method="POST"
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                status = response.status
                response.read(65536)
        except urllib.error.HTTPError as exc:
            with exc:
                raise self._status_error(exc.code, exc.reason, exc) from None
        except urllib.error.URLError as exc:
            raise DeliveryError(True, f"{self._where}: {_describe(exc.reason)}") from None
        except (OSError, http.client.HTTPException) as exc:
            # timeouts while reading the answer, resets, malformed answers: the peer's trouble
            raise DeliveryError(True, f"{self._where}: {_describe(exc)}") from None
        if not 200 <= status < 300:
            raise DeliveryError(False, f"{self._where}: unexpected HTTP {status}")

    def _status_error(self, status: int, reason: object, exc: urllib.error.HTTPError) -> DeliveryError:
        try:
            text = exc.read(4096).decode("utf-8", "replace")[:_ERROR_BODY_CHARS]
        except (OSError, http.client.HTTPException):
            text = ""
        detail = f"{self._where}: HTTP {status} {reason}"
        if text:
            detail += f": {text!r}"
        if 300 <= status < 400:
            return DeliveryError(False, detail + " (redirects are not followed)")
        retryable = status >= 500 or status in RETRYABLE_STATUS
        retry_after = _retry_after(exc.headers.get("Retry-After")) if retryable else None
        return DeliveryError(retryable, detail, retry_after_s=retry_after)


def _describe(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}"
    return str(reason)
