"""Writes line protocol to InfluxDB 1.x (`/write`, precision ms, gzip) and retries until it lands.

Timeouts, connection errors and 5xx answers are retried with exponential backoff and jitter for as
long as it takes: an InfluxDB outage delays data and loses none, because the caller does not move
on (and so does not commit its Kafka offsets) until :meth:`InfluxV1Writer.write` returns.
A 4xx answer means the request itself is wrong; it is not retried and raises
:class:`InfluxWriteRejected` with InfluxDB's own message.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
from collections.abc import Sequence

import aiohttp

log = logging.getLogger(__name__)


class InfluxWriteRejected(RuntimeError):
    """InfluxDB refused a batch (4xx); ``status`` and InfluxDB's ``detail`` say why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"InfluxDB rejected the write ({status}): {detail}")
        self.status = status
        self.detail = detail


class InfluxV1Writer:
    """Batched, gzip-compressed writes to one InfluxDB 1.x database."""

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        batch_size: int = 5000,
        timeout_s: float = 10.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/") + "/write"
        self.params = {"db": database, "precision": "ms"}
        self.auth = aiohttp.BasicAuth(username, password or "") if username else None
        self.batch_size = batch_size
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_backoff_s = max_backoff_s
        self.points_written = 0
        self.retries = 0
        self._session: aiohttp.ClientSession | None = None

    async def write(self, lines: Sequence[str]) -> None:
        """Write every line, ``batch_size`` lines per request; returns once all were accepted."""
        for i in range(0, len(lines), self.batch_size):
            chunk = lines[i : i + self.batch_size]
            await self._post(gzip.compress("\n".join(chunk).encode("utf-8"), compresslevel=1))
            self.points_written += len(chunk)

    async def _post(self, body: bytes) -> None:
        backoff = 0.2
        attempt = 0
        while True:
            attempt += 1
            try:
                session = self._session_or_new()
                async with session.post(
                    self.url,
                    params=self.params,
                    data=body,
                    headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
                    auth=self.auth,
                ) as resp:
                    if resp.status < 300:
                        return
                    text = (await resp.text())[:500]
                    if 400 <= resp.status < 500:
                        raise InfluxWriteRejected(resp.status, text)
                    reason = f"HTTP {resp.status}: {text}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.retries += 1
            delay = min(backoff, self.max_backoff_s) * (0.5 + random.random())
            log.warning("InfluxDB write failed (attempt %d, %s); retrying in %.1f s", attempt, reason, delay)
            await asyncio.sleep(delay)
            backoff *= 2

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
