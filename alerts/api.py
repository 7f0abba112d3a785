"""A small authenticated HTTP API over the outbox (aiohttp, in a thread of ``alerts run``).

- ``GET /v1/alerts?open=1&unit=U&limit=N`` — alerts with their notifications and attempts;
- ``POST /v1/alerts/{key}/ack`` — body ``{"by": "name"}`` (optional);
- ``POST /v1/alerts/{key}/silence`` — body ``{"for": "2h"}``.

Every request needs ``Authorization: Bearer <alerts.api_token>`` (compared in constant time).
Errors are JSON ``{"error": "..."}``: 401 (no or wrong token), 404 (no such alert), 400 (bad body or
query), 413 (body over :data:`MAX_BODY_BYTES`), 408 (body not received within
:data:`BODY_TIMEOUT_S`). A connection that has not sent a whole request head :data:`HEAD_TIMEOUT_S`
after it opened (or after its last answer) is closed, and connections beyond
:data:`MAX_CONNECTIONS` open at once are answered 503 (energymon/httpguard.py). ``{key}`` is the
alert key, percent-encoded.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from energymon.httpguard import BodyTimeout, BodyTooLarge, limit_connections, read_body

from . import actions
from .lifecycle import parse_duration_ms
from .outbox import Outbox

if TYPE_CHECKING:  # alerts/ imports only energy/ at run time (ARCHITECTURE.md)
    from energymon.settings import AlertSettings

log = logging.getLogger("energymon.alerts.api")

MAX_BODY_BYTES = 16 * 1024
#: Longest wait for a request head (and idle keep-alive), and for a body (seconds).
HEAD_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
#: Most connections open at once.
MAX_CONNECTIONS = 32
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str) -> web.Response:
    """A JSON error answer."""
    return web.json_response({"error": message}, status=status)


def make_app(outbox: Outbox, token: str) -> web.Application:
    """The API application on ``outbox``, requiring bearer ``token``."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return error(401, "missing or wrong bearer token")
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"request body over {MAX_BODY_BYTES} bytes")

    async def list_alerts(request: web.Request) -> web.Response:
        q = request.query
        try:
            limit = int(q.get("limit", "50"))
            if not 1 <= limit <= 1000:
                raise ValueError
        except ValueError:
            return error(400, "limit must be a whole number from 1 to 1000")
        views = outbox.alerts(open_only=q.get("open") in ("1", "true"), unit=q.get("unit"), limit=limit)
        return web.json_response({"alerts": [actions.alert_json(v) for v in views]})

    async def ack(request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        by = body.get("by")
        if by is not None and not isinstance(by, str):
            return error(400, "`by` must be text")
        key = request.match_info["key"]
        if not actions.acknowledge(outbox, key, by):
            return error(404, f"no alert {key!r}")
        return web.json_response({"key": key, "acked_by": by})

    async def silence(request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        try:
            duration_ms = parse_duration_ms(str(body["for"]))
        except (KeyError, ValueError) as exc:
            return error(400, f"`for` must be a duration such as 2h or 30m ({exc})")
        key = request.match_info["key"]
        until = actions.silence(outbox, key, duration_ms)
        if until is None:
            return error(404, f"no alert {key!r}")
        return web.json_response({"key": key, "silenced_until_ms": until})

    app = web.Application(middlewares=[auth], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/v1/alerts", list_alerts)
    app.router.add_post("/v1/alerts/{key}/ack", ack)
    app.router.add_post("/v1/alerts/{key}/silence", silence)
    return app


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    """The JSON object of the body ({} when empty), or a 400/408/413 answer."""
    try:
        raw = await read_body(request, MAX_BODY_BYTES, BODY_TIMEOUT_S)
    except BodyTooLarge:
        return _closing(error(413, f"request body over {MAX_BODY_BYTES} bytes"))
    except BodyTimeout:
        return _closing(error(408, f"request body not received within {BODY_TIMEOUT_S:g} s"))
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return error(400, "body is not JSON")
    return data if isinstance(data, dict) else error(400, "body must be a JSON object")


def _closing(response: web.Response) -> web.Response:
    response.force_close()  # the rest of the body is not read: no keep-alive
    return response


class ApiServer:
    """Runs :func:`make_app` on ``alerts.api_host:api_port`` in a daemon thread with its own loop."""

    def __init__(self, outbox: Outbox, settings: AlertSettings) -> None:
        if settings.api_token is None:
            raise ValueError("alerts.api_port is set but no alerts.api_token (or api_token_file)")
        self.app = make_app(outbox, settings.api_token.get_secret_value())
        self.host = settings.api_host
        self.port = settings.api_port or 0
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=HEAD_TIMEOUT_S)
        self._thread = threading.Thread(target=self._loop.run_forever, name="alerts-api", daemon=True)

    def start(self) -> None:
        """Listen (``port`` becomes the real port when 0 was asked for)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        log.info("alerts API on http://%s:%d/v1/alerts", self.host, self.port)

    async def _start(self) -> None:
        await self._runner.setup()
        limit_connections(self._runner, MAX_CONNECTIONS, "alerts API")
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop listening and end the thread."""
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
