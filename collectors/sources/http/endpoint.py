"""The request handling of the HTTP push source: bearer token (every configured token compared in
constant time), body size and time limits (energymon/httpguard.py: 413, 408), the readings message,
and the JSON answers (every error names its rule)."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from collectors.sources.base import Emit
from collectors.sources.http.config import Config
from collectors.sources.push import PushCounters, log_rejections, source_readings
from energy.schema import MessageRejected, Rejection, parse_message
from energymon.httpguard import BodyTimeout, BodyTooLarge, read_body

log = logging.getLogger("energymon.collect")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: aiohttp's own errors (routing) as rules
_HTTP_RULES = {404: "not_found", 405: "method_not_allowed"}


@dataclass(frozen=True)
class Grant:
    """A bearer token (bytes, compared in constant time), its holder and the units it may push for
    (None: any)."""

    site: str
    token: bytes
    units: frozenset[str] | None


def error(status: int, rule: str, detail: str, **extra: Any) -> web.Response:
    """A JSON error answer: ``{"error": rule, "detail": detail, ...}``."""
    return web.json_response({"error": rule, "detail": detail, **extra}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own 4xx answers (404, 405) as JSON errors, with their headers (``Allow``)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error(exc.status, _HTTP_RULES.get(exc.status, "http_error"), exc.reason)
        response.headers.update({k: v for k, v in exc.headers.items() if k == "Allow"})
        return response


def closing(response: web.Response) -> web.Response:
    """``response`` with the connection closed after it (the rest of the body is not read)."""
    response.force_close()
    return response


def _rejection_json(r: Rejection) -> dict[str, Any]:
    return {"rule": r.rule, "detail": r.detail, "reading": r.payload}


class ReadingsEndpoint:
    """``POST`` of one readings message; accepted readings are emitted before the 202 answer, so a
    202 means the agent has them."""

    def __init__(
        self,
        config: Config,
        grants: Sequence[Grant],
        emit: Emit,
        counters: PushCounters,
    ) -> None:
        self._source = config.name
        self._grants = tuple(grants)
        self._max_body_bytes = config.max_body_bytes
        self._body_timeout_s = config.body_timeout_s
        self._emit = emit
        self._counters = counters

    def authorize(self, header: str | None) -> Grant | None:
        """The grant of ``Authorization: Bearer <token>``, None if missing or unknown. Every token is
        compared, in constant time, whatever matched first."""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        given = token.strip().encode()
        found = None
        for grant in self._grants:
            if hmac.compare_digest(given, grant.token) and found is None:
                found = grant
        return found

    async def post(self, request: web.Request) -> web.Response:
        """The request handler (see the module docstring for the answers)."""
        self._counters.payloads += 1
        response = await self._answer(request)
        if response.status >= 400:
            self._counters.rejected_payloads += 1
        return response

    async def _answer(self, request: web.Request) -> web.Response:
        peer = request.remote or "?"
        grant = self.authorize(request.headers.get("Authorization"))
        if grant is None:
            log.warning("source %s: %s: missing or unknown bearer token", self._source, peer)
            response = error(401, "unauthorized", "missing or unknown bearer token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="energymon"'
            return response
        where = f"{grant.site} ({peer})"
        try:
            body = await read_body(request, self._max_body_bytes, self._body_timeout_s)
        except BodyTooLarge:
            return closing(error(413, "body_too_large", f"body over {self._max_body_bytes} bytes"))
        except BodyTimeout:
            detail = f"body not received within {self._body_timeout_s:g} s"
            log.warning("source %s: %s: %s", self._source, where, detail)
            return closing(error(408, "body_timeout", detail))
        try:
            parsed = parse_message(body, round(time.time() * 1000))  # refuses readings from the future
        except MessageRejected as exc:
            log_rejections(self._source, where, [exc.rejection])
            return error(400, exc.rejection.rule, exc.rejection.detail)
        if grant.units is not None and parsed.unit_id not in grant.units:
            log.warning("source %s: %s: not allowed to push for unit %s", self._source, where, parsed.unit_id)
            return error(403, "unit_not_allowed", f"this token may not push for unit {parsed.unit_id}")
        readings, rejections = source_readings(parsed)
        log_rejections(self._source, f"{where} unit {parsed.unit_id}", rejections)
        self._counters.rejected_readings += len(rejections)
        rejected = [_rejection_json(r) for r in rejections]
        if not readings:
            return error(400, "no_valid_reading", "no reading of the message is usable", rejected=rejected)
        await self._emit(readings)
        self._counters.readings += len(readings)
        log.debug("source %s: %s: %d readings of unit %s", self._source, where, len(readings), parsed.unit_id)
        return web.json_response({"accepted": len(readings), "rejected": rejected}, status=202)


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 while the server runs."""
    return web.json_response({"status": "ok"})
