"""The HTTP push source plugin: an aiohttp server whose ``POST`` endpoint emits each accepted
readings message (README.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from collectors.sources.base import Emit, Source, SourceError, SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.http.config import MIN_TOKEN_CHARS, Config
from collectors.sources.http.endpoint import Grant, ReadingsEndpoint, healthz, json_errors
from collectors.sources.push import PushCounters, first_payload, read_secret
from energymon.httpguard import limit_connections

__all__ = ["SOURCE_TYPES", "Config", "HttpPushSource", "create"]

SOURCE_TYPES = ("http_push",)
#: seconds requests in progress get to finish when the source stops
SHUTDOWN_S = 5.0

log = logging.getLogger("energymon.collect")


def grants(config: Config) -> list[Grant]:
    """The configured tokens, read (token files too) and checked: SourceError names the site."""
    out = []
    for t in config.tokens:
        token = read_secret(t.token, t.token_file) or ""
        if len(token) < MIN_TOKEN_CHARS:
            raise SourceError(f"token of site {t.site}: shorter than {MIN_TOKEN_CHARS} characters")
        out.append(Grant(t.site, token.encode(), None if t.units is None else frozenset(t.units)))
    if len({g.token for g in out}) < len(out):
        raise SourceError("two sites have the same token")
    return out


class HttpPushSource:
    """Serves ``POST {path}`` and ``GET /healthz`` while :meth:`run` runs."""

    def __init__(self, config: Config) -> None:
        self.name = config.name
        self.counters = PushCounters()
        self._config = config
        self._grants = grants(config)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where devices post (with the configured host)."""
        return f"http://{self._config.host}:{self._config.port}{self._config.path}"

    def app(self, emit: Emit) -> web.Application:
        """The aiohttp application, emitting to ``emit``."""
        c = self._config
        endpoint = ReadingsEndpoint(c, self._grants, emit, self.counters)
        app = web.Application(client_max_size=c.max_body_bytes, middlewares=[json_errors])
        app.router.add_post(c.path, endpoint.post)
        app.router.add_get("/healthz", healthz)
        return app

    @asynccontextmanager
    async def _serving(self, emit: Emit) -> AsyncIterator[None]:
        c = self._config
        runner = web.AppRunner(
            self.app(emit),
            access_log=None,
            keepalive_timeout=c.keepalive_timeout_s,
            shutdown_timeout=SHUTDOWN_S,
        )
        await runner.setup()
        limit_connections(runner, c.max_connections, f"source {self.name}")
        self._runner = runner
        try:
            try:
                await web.TCPSite(runner, c.host, c.port, reuse_address=True).start()
            except OSError as exc:
                raise SourceError(f"source {self.name}: cannot listen on {c.host}:{c.port}: {exc}") from exc
            log.info("source %s: listening on %s", self.name, self.url)
            yield
        finally:
            self._runner = None
            await runner.cleanup()

    async def run(self, emit: Emit) -> None:
        """Serve until cancelled."""
        async with self._serving(emit):
            await asyncio.Event().wait()

    async def read_once(self, timeout_s: float = 10.0) -> list[SourceReading]:
        """Serve until the first accepted message (at most ``timeout_s`` seconds) and return it."""
        return await first_payload(self.run, timeout_s, f"waiting for a POST to {self.url}")

    async def close(self) -> None:
        """Stop serving (also done when :meth:`run` is cancelled)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def create(config: Config, context: SourceContext) -> Source:
    """The plugin entry point (the context is not needed: messages carry their own times)."""
    return HttpPushSource(config)
