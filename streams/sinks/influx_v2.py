"""The InfluxDB 2.x/3.x backend: influxdb-client's batching write API (token, org, bucket).

That API writes from its own thread and never raises to the caller: a failed batch is only logged
and handed to ``error_callback``. Both callbacks are wired here, so that :meth:`InfluxV2Transport.send`
returns when InfluxDB took the lines and raises when it did not (InfluxWriteRejected for a 4xx,
InfluxUnavailable otherwise, retried by :class:`~streams.sinks.writer.InfluxWriter`). The client's
own retries are off (one retry policy for both backends) and every ``send`` is handed over as one
record with a client batch size of 1, so it goes out at once as one gzip request: batching and the
flush interval are the writer's, as with the 1.x backend.

Callbacks arrive in the client's thread; they only count handled requests, on the event loop. A send
waits until every request submitted up to its own is handled (the client writes them in order, from
one thread), and fails when any request fails meanwhile (retrying a batch that was written is harmless: a
point is keyed by its series and time, so it is overwritten, not doubled).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import WriteOptions
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from streams.sinks.errors import InfluxUnavailable, InfluxWriteRejected
from streams.sinks.influx_v1 import is_rejection

#: Epoch milliseconds (the client declares its precision constants as plain strings).
_MS = cast(WritePrecision, WritePrecision.MS)


def classify(exc: BaseException) -> Exception:
    """The client's exception as InfluxWriteRejected (4xx other than 429) or InfluxUnavailable."""
    if isinstance(exc, ApiException) and exc.status and is_rejection(int(exc.status)):
        detail = (
            exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
        ) or exc.reason
        return InfluxWriteRejected(int(exc.status), str(detail)[:500])
    return InfluxUnavailable(f"{type(exc).__name__}: {exc}")


class InfluxV2Transport:
    """Writes to one bucket of an InfluxDB 2.x/3.x (or anything speaking ``/api/v2/write``)."""

    def __init__(
        self, url: str, token: str, org: str, bucket: str, timeout_s: float = 10.0, gzip: bool = True
    ) -> None:
        self.bucket = bucket
        self.org = org
        self.client = InfluxDBClient(
            url=url, token=token, org=org, timeout=int(timeout_s * 1000), enable_gzip=gzip
        )
        options = WriteOptions(batch_size=1, flush_interval=1000, jitter_interval=0, max_retries=0)
        self.write_api = self.client.write_api(
            write_options=options, success_callback=self._on_success, error_callback=self._on_error
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._submitted = 0  # requests handed to the client
        self._handled = 0  # requests the client reported on (written or failed)
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    async def send(self, lines: Sequence[str]) -> None:
        """Write ``lines`` as one request; returns when the client reported them written."""
        self._loop = asyncio.get_running_loop()
        self._submitted += 1
        done: asyncio.Future[None] = self._loop.create_future()
        self._waiting.append((self._submitted, done))
        self.write_api.write(self.bucket, self.org, "\n".join(lines), write_precision=_MS)
        await done

    # -- the client's thread --

    def _on_success(self, _conf: tuple[str, str, str], _data: bytes | str) -> None:
        self._report(None)

    def _on_error(self, _conf: tuple[str, str, str], _data: bytes | str, exc: Exception) -> None:
        self._report(exc)

    def _report(self, exc: Exception | None) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._handled_request, exc)

    # -- the event loop --

    def _handled_request(self, exc: Exception | None) -> None:
        self._handled += 1
        if exc is not None:
            failed, self._waiting = self._waiting, []
            for _, done in failed:
                if not done.done():
                    done.set_exception(classify(exc))
            return
        while self._waiting and self._waiting[0][0] <= self._handled:
            _, done = self._waiting.pop(0)
            if not done.done():
                done.set_result(None)

    async def close(self) -> None:
        """Stop the client's write thread and close its connections."""
        await asyncio.to_thread(self.write_api.close)
        await asyncio.to_thread(self.client.close)
