"""The InfluxDB 1.x backend: ``POST /write`` (precision ms, gzip), user and password.

InfluxDB 1.6.7 takes ``Content-Encoding: gzip`` bodies (tests/integration/test_sink_v1.py). One
:meth:`InfluxV1Transport.send` is one request; :class:`~streams.sinks.writer.InfluxWriter` batches
and retries. Timeouts, connection errors, 5xx and 429 raise InfluxUnavailable (retried); any other
4xx raises InfluxWriteRejected with InfluxDB's own message (not retried).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence

import aiohttp

from streams.sinks.errors import InfluxUnavailable, InfluxWriteRejected


def is_rejection(status: int) -> bool:
    """Whether an HTTP status means the request itself is wrong (4xx other than 429)."""
    return 400 <= status < 500 and status != 429


class InfluxV1Transport:
    """Writes to one database (its default retention policy) of an InfluxDB 1.x.

    ``gzip_level`` None sends plain bodies."""

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        gzip_level: int | None = 1,
    ) -> None:
        self.url = url.rstrip("/") + "/write"
        self.params = {"db": database, "precision": "ms"}
        self.auth = aiohttp.BasicAuth(username, password or "") if username else None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.gzip_level = gzip_level
        self.headers = {"Content-Type": "text/plain; charset=utf-8"}
        if gzip_level is not None:
            self.headers["Content-Encoding"] = "gzip"
        self._session: aiohttp.ClientSession | None = None

    def body(self, lines: Sequence[str]) -> bytes:
        """The request body: the lines, newline-separated, UTF-8, gzip-compressed unless disabled."""
        raw = "\n".join(lines).encode("utf-8")
        return raw if self.gzip_level is None else gzip.compress(raw, compresslevel=self.gzip_level)

    async def send(self, lines: Sequence[str]) -> None:
        """One ``POST /write`` of ``lines``."""
        try:
            async with self._session_or_new().post(
                self.url, params=self.params, data=self.body(lines), headers=self.headers, auth=self.auth
            ) as resp:
                if resp.status < 300:
                    return
                text = (await resp.text())[:500]
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if is_rejection(resp.status):
            raise InfluxWriteRejected(resp.status, text)
        raise InfluxUnavailable(f"HTTP {resp.status}: {text}")

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
