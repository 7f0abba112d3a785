"""What chat robots (DingTalk, WeCom) have in common: a JSON answer ``{"errcode": 0, "errmsg": "ok"}``
even with HTTP 200, and byte limits on the message."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from .base import DeliveryError

_ERRMSG_CHARS = 200


def check_errcode(answer: bytes, where: str, retry_after_s: Mapping[int, float | None]) -> None:
    """Return if the robot answered ``errcode`` 0, else raise :class:`DeliveryError`.

    ``retry_after_s`` maps the codes worth retrying (busy, rate-limited) to a wait hint (None: the
    dispatcher's backoff); any other code is a rejection of the request itself (bad token, signature,
    keyword or content): retrying the same request would fail the same way. An answer that is not
    such JSON is not retried either (something other than the robot answered)."""
    try:
        parsed = orjson.loads(answer)
    except orjson.JSONDecodeError:
        parsed = None
    code = parsed.get("errcode") if isinstance(parsed, dict) else None
    if not isinstance(code, int):
        raise DeliveryError(False, f"{where}: not a robot answer: {answer[:_ERRMSG_CHARS]!r}")
    if code == 0:
        return
    message = str(parsed.get("errmsg", ""))[:_ERRMSG_CHARS] if isinstance(parsed, dict) else ""
    detail = f"{where}: errcode {code}: {message}"
    if code in retry_after_s:
        raise DeliveryError(True, detail, retry_after_s=retry_after_s[code])
    raise DeliveryError(False, detail)


def truncate_utf8(text: str, max_bytes: int, marker: str = "…") -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8, on a character boundary, ending with ``marker``
    when it was cut."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    room = max_bytes - len(marker.encode("utf-8"))
    return raw[: max(room, 0)].decode("utf-8", "ignore") + marker
