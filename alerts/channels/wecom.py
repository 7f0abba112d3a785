"""A channel to a WeCom (企业微信) group robot: a markdown message.

``POST <url>`` (``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``) with
``{"msgtype": "markdown", "markdown": {"content": …}}``; the content may hold at most 4096 bytes of
UTF-8, so a longer one is cut on a character boundary (ending with "…").

The answer is ``{"errcode": 0, "errmsg": "ok"}`` when posted. Retried: ``-1`` (system busy) and
``45009`` (api freq out of limit: 20 messages a minute, hence the 60 s hint). Not retried: ``93000``
(invalid webhook URL / key), ``40058`` (content too long) and any other code. HTTP-level failures as
in :mod:`alerts.channels.http`.
"""

from __future__ import annotations

import orjson

from ..notification import Notification
from ..templates import render
from .http import HttpPoster, redact_url
from .robot import check_errcode, truncate_utf8

MAX_CONTENT_BYTES = 4096
RETRYABLE: dict[int, float | None] = {-1: None, 45009: 60.0}


class WeComChannel:
    """Posts each notification to a WeCom group robot as markdown."""

    name = "wecom"

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self._http = HttpPoster(url, timeout_s, "WeCom robot")

    def __repr__(self) -> str:
        return f"WeComChannel({redact_url(self._http.url)!r})"

    def deliver(self, notification: Notification) -> None:
        """Post the markdown message; raise :class:`DeliveryError` unless the robot answers errcode 0."""
        content = truncate_utf8(render(notification).markdown, MAX_CONTENT_BYTES)
        body = orjson.dumps({"msgtype": "markdown", "markdown": {"content": content}})
        answer = self._http.post(body, {"Content-Type": "application/json; charset=utf-8"})
        check_errcode(answer, self._http.where, RETRYABLE)
