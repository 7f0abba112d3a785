"""A channel to a DingTalk (钉钉) custom robot: a markdown message, signed when the robot has a secret.

``POST <url>`` (``https://oapi.dingtalk.com/robot/send?access_token=…``) with
``{"msgtype": "markdown", "markdown": {"title": …, "text": …}}``. With a secret ("加签"), the URL also
gets ``timestamp`` (epoch ms, now) and ``sign`` = base64(HMAC-SHA256(secret, ``timestamp + "\\n" +
secret``)), URL-encoded; the robot refuses a timestamp more than an hour off.

The answer is ``{"errcode": 0, "errmsg": "ok"}`` when posted. Retried: ``-1`` (system busy) and the
rate limit (``130101``/``410100`` "send too fast": 20 messages a minute, after which the robot is
throttled for 10 minutes, hence the 600 s hint). Not retried: ``310000`` (the robot's security
settings refused it: signature, timestamp, keyword or IP whitelist — a configuration error that
the same request hits again), an invalid or removed token (``300001``, ``300005``, ``400102``) and any
other code. HTTP-level failures as in :mod:`alerts.channels.http`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

import orjson

from ..notification import Notification
from ..templates import render
from .http import HttpPoster, redact_url
from .robot import check_errcode

RATE_LIMIT_WAIT_S = 600.0
RETRYABLE: dict[int, float | None] = {-1: None, 130101: RATE_LIMIT_WAIT_S, 410100: RATE_LIMIT_WAIT_S}


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """The ``sign`` parameter (before URL encoding): base64 HMAC-SHA256 of ``timestamp\\nsecret``."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


class DingTalkChannel:
    """Posts each notification to a DingTalk custom robot as markdown."""

    name = "dingtalk"

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        timeout_s: float = 5.0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = HttpPoster(url, timeout_s, "DingTalk robot")
        self._secret = secret or None
        self._clock = clock

    def __repr__(self) -> str:
        signed = "signed" if self._secret else "unsigned"
        return f"DingTalkChannel({redact_url(self._http.url)!r}, {signed})"

    def deliver(self, notification: Notification) -> None:
        """Post the markdown message; raise :class:`DeliveryError` unless the robot answers errcode 0."""
        texts = render(notification)
        markdown = {"title": texts.title, "text": texts.markdown}
        body = orjson.dumps({"msgtype": "markdown", "markdown": markdown})
        query: dict[str, str] = {}
        if self._secret:
            timestamp = round(self._clock() * 1000)
            query = {"timestamp": str(timestamp), "sign": dingtalk_sign(timestamp, self._secret)}
        headers = {"Content-Type": "application/json; charset=utf-8"}
        answer = self._http.post(body, headers, query)
        check_errcode(answer, self._http.where, RETRYABLE)
