"""Limits every energymon HTTP server applies (the collectors' push endpoint, the alerts API), so that
slow, large or many requests cannot tie it up:

- a request head must arrive within the server's ``keepalive_timeout`` (aiohttp ≥ 3.10 closes a
  connection that has not sent a whole head that long after it opened or after its last answer,
  however slowly bytes trickle in; tests/integration/test_security_http.py holds it to that);
- a body is capped (:class:`BodyTooLarge`, answered 413) and must arrive within a time limit
  (:class:`BodyTimeout`, answered 408): :func:`read_body`;
- at most ``most`` connections are open at once; one more is answered 503 and closed:
  :func:`limit_connections`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

log = logging.getLogger("energymon.http")

_BUSY_BODY = b'{"error": "too_many_connections", "detail": "too many connections open: retry later"}'
#: The whole answer to a connection over the bound.
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 1\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)
#: How long a refused connection stays open after its answer, for the client to read it (seconds).
LINGER_S = 1.0
#: Least time between two warnings about refused connections (seconds).
WARN_EVERY_S = 10.0


class BodyTooLarge(Exception):
    """The body is over the cap (answer 413 and close: the rest is not read)."""


class BodyTimeout(Exception):
    """The body did not arrive within the time limit (answer 408 and close)."""


async def read_body(request: web.Request, max_bytes: int, timeout_s: float) -> bytes:
    """The request body, at most ``max_bytes`` long (the application's ``client_max_size`` must be the
    same), read within ``timeout_s`` seconds; BodyTooLarge / BodyTimeout otherwise."""
    if (request.content_length or 0) > max_bytes:
        raise BodyTooLarge
    try:
        async with asyncio.timeout(timeout_s):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge from None
    except TimeoutError:
        raise BodyTimeout from None


def limit_connections(runner: web.BaseRunner, most: int, name: str) -> None:
    """Answer 503 and close every connection beyond ``most`` open ones of ``runner``'s server (call
    after ``runner.setup()``); warn about refusals at most every WARN_EVERY_S seconds."""
    server = runner.server
    if server is None:
        raise RuntimeError("limit_connections needs a runner that is set up")
    made = server.connection_made
    refused: set[asyncio.Transport] = set()  # answered 503, closing soon: not counted
    last_warning = [0.0, 0]  # monotonic time of the last warning, refusals since

    def close(transport: asyncio.Transport) -> None:
        refused.discard(transport)
        transport.close()

    def connection_made(handler: Any, transport: asyncio.Transport) -> None:
        made(handler, transport)
        if len(server.connections) - len(refused) <= most:
            return
        # Answer without reading the request (paused), end our side, and close a little later: closing
        # at once with the request unread would reset the connection before the client reads the 503.
        refused.add(transport)
        transport.pause_reading()
        transport.write(BUSY)
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, close, transport)
        last_warning[1] += 1
        now = time.monotonic()
        if now - last_warning[0] >= WARN_EVERY_S:
            log.warning("%s: %d connection(s) refused: over %d open at once", name, last_warning[1], most)
            last_warning[:] = [now, 0]

    server.connection_made = connection_made  # type: ignore[method-assign]
