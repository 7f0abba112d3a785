"""POST a body to an HTTP(S) endpoint (stdlib ``urllib``) and turn every failure into a DeliveryError.

Shared by the webhook and the chat robots. 5xx, 429 and 408 answers, timeouts and connection errors
are retryable (a ``Retry-After`` in seconds is passed on); any other non-2xx answer is not, a 3xx
included: redirects are not followed (that would resend the POST as a bodiless GET). URLs appear in
errors without credentials, query string or fragment (chat robots carry their token in the query).
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from .base import DeliveryError

USER_AGENT = "energymon-alerts/1"
RETRYABLE_STATUS = frozenset({408, 429})
MAX_ANSWER_BYTES = 65536
_ERROR_BODY_CHARS = 200


def redact_url(url: str) -> str:
    """The URL without credentials, query string or fragment, fit for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` appended to its query string (URL-encoded)."""
    if not params:
        return url
    parts = urllib.parse.urlsplit(url)
    extra = urllib.parse.urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urllib.parse.urlunsplit(parts._replace(query=query))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turn a redirect into an HTTPError: following it would resend the POST as a bodiless GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpPoster:
    """POSTs bodies to one ``url`` within ``timeout_s``; ``what`` names the peer in errors."""

    def __init__(self, url: str, timeout_s: float, what: str = "webhook") -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{what} URL must be http(s)://host/...: {redact_url(url)!r}")
        if timeout_s <= 0:
            raise ValueError(f"{what} timeout must be positive")
        self.url = url
        self.timeout_s = timeout_s
        self.where = f"POST {redact_url(url)}"
        self._opener = urllib.request.build_opener(_NoRedirect)

    def post(
        self,
        body: bytes,
        headers: Mapping[str, str],
        query: Mapping[str, str] | None = None,
    ) -> bytes:
        """POST ``body`` (``query`` added to the URL); the answer's body (at most 64 KiB) on a 2xx,
        else :class:`DeliveryError`."""
        request = urllib.request.Request(
            with_query(self.url, query or {}),
            data=body,
            headers={"User-Agent": USER_AGENT, **headers},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                status: int = response.status
                answer: bytes = response.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            with exc:
                raise self._status_error(exc) from None
        except urllib.error.URLError as exc:
            raise DeliveryError(True, f"{self.where}: {describe(exc.reason)}") from None
        except (OSError, http.client.HTTPException) as exc:
            # timeouts while reading the answer, resets, malformed answers: the peer's trouble
            raise DeliveryError(True, f"{self.where}: {describe(exc)}") from None
        if not 200 <= status < 300:
            raise DeliveryError(False, f"{self.where}: unexpected HTTP {status}")
        return answer

    def _status_error(self, exc: urllib.error.HTTPError) -> DeliveryError:
        try:
            text = exc.read(4096).decode("utf-8", "replace")[:_ERROR_BODY_CHARS]
        except (OSError, http.client.HTTPException):
            text = ""
        status = exc.code
        detail = f"{self.where}: HTTP {status} {exc.reason}"
        if text:
            detail += f": {text!r}"
        if 300 <= status < 400:
            return DeliveryError(False, detail + " (redirects are not followed)")
        retryable = status >= 500 or status in RETRYABLE_STATUS
        retry_after = _retry_after(exc.headers.get("Retry-After")) if retryable else None
        return DeliveryError(retryable, detail, retry_after_s=retry_after)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP-date: ignored, the dispatcher's own backoff applies
    return seconds if seconds >= 0 else None


def describe(reason: object) -> str:
    """A short text for an exception or a URLError's reason (``timed out``, ``OSError: …``)."""
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}"
    return str(reason)
