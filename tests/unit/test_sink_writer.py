"""The batching writer over a recording backend: batches, coalescing, retries, rejections, completion.

The real backends are tested against real servers in tests/integration/test_sink_*.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from streams.sinks.errors import InfluxUnavailable, InfluxWriteRejected
from streams.sinks.retention import _same_statement, duration_s
from streams.sinks.retry import Backoff
from streams.sinks.writer import InfluxWriter

pytestmark = pytest.mark.timeout(20)
NO_WAIT = Backoff(initial_s=0.0, max_s=0.0)


class Recorder:
    """A backend that records each request; ``failures`` are raised first, one per request;
    requests wait for ``gate`` when one is set."""

    def __init__(self, failures: Sequence[Exception] = (), gate: asyncio.Event | None = None) -> None:
        self.requests: list[list[str]] = []
        self.attempts = 0
        self.failures = list(failures)
        self.gate = gate
        self.closed = False

    async def send(self, lines: Sequence[str]) -> None:
        self.attempts += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        self.requests.append(list(lines))

    async def close(self) -> None:
        self.closed = True


def lines(n: int, start: int = 0) -> list[str]:
    return [f"m f={i}.0 {i}" for i in range(start, start + n)]


async def test_lines_go_in_batches_of_batch_size() -> None:
    backend = Recorder()
    writer = InfluxWriter(backend, batch_size=5000)
    await writer.write(lines(12_001))
    assert [len(r) for r in backend.requests] == [5000, 5000, 2001]
    assert [line for r in backend.requests for line in r] == lines(12_001)
    assert writer.points_written == 12_001


async def test_write_returns_only_when_its_lines_are_written() -> None:
    gate = asyncio.Event()
    backend = Recorder(gate=gate)
    writer = InfluxWriter(backend)
    task = asyncio.create_task(writer.write(lines(3)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done() and backend.attempts == 1 and backend.requests == []
    gate.set()
    await task
    assert backend.requests == [lines(3)]


async def test_writes_made_while_a_request_is_in_flight_go_together_in_the_next() -> None:
    gate = asyncio.Event()
    backend = Recorder(gate=gate)
    writer = InfluxWriter(backend, batch_size=100)
    first = asyncio.create_task(writer.write(lines(2)))
    await asyncio.sleep(0)
    others = [asyncio.create_task(writer.write(lines(3, 10 * k))) for k in range(1, 4)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *others)
    assert [len(r) for r in backend.requests] == [2, 9]


async def test_with_a_flush_interval_concurrent_writes_share_one_request() -> None:
    backend = Recorder()
    writer = InfluxWriter(backend, batch_size=100, flush_interval_s=0.05)
    await asyncio.gather(*(writer.write(lines(10, 10 * k)) for k in range(5)))
    assert [len(r) for r in backend.requests] == [50]


async def test_a_full_buffer_is_sent_without_waiting_for_the_flush_interval() -> None:
    backend = Recorder()
    writer = InfluxWriter(backend, batch_size=10, flush_interval_s=3600)
    await writer.write(lines(10))
    assert backend.requests == [lines(10)]


async def test_an_unavailable_influxdb_is_retried_until_the_write_lands() -> None:
    backend = Recorder(failures=[InfluxUnavailable("HTTP 503"), InfluxUnavailable("TimeoutError")])
    writer = InfluxWriter(backend, backoff=NO_WAIT)
    await writer.write(lines(4))
    assert backend.attempts == 3 and writer.retries == 2
    assert backend.requests == [lines(4)] and writer.points_written == 4


async def test_a_rejected_batch_raises_at_once_and_is_not_retried() -> None:
    backend = Recorder(failures=[InfluxWriteRejected(400, "field type conflict")])
    writer = InfluxWriter(backend, backoff=NO_WAIT)
    with pytest.raises(InfluxWriteRejected, match="field type conflict") as info:
        await writer.write(lines(4))
    assert info.value.status == 400
    assert backend.attempts == 1 and writer.retries == 0 and writer.points_written == 0
    await writer.write(lines(1))  # the writer goes on with the next batch
    assert backend.requests == [lines(1)]


async def test_a_limited_backoff_gives_up_with_the_last_error() -> None:
    backend = Recorder(failures=[InfluxUnavailable("a"), InfluxUnavailable("b"), InfluxUnavailable("c")])
    writer = InfluxWriter(backend, backoff=Backoff(initial_s=0.0, max_s=0.0, max_attempts=2))
    with pytest.raises(InfluxUnavailable, match="b"):
        await writer.write(lines(1))


async def test_close_writes_what_is_buffered_at_once_then_closes_the_backend() -> None:
    backend = Recorder()
    writer = InfluxWriter(backend, flush_interval_s=3600)
    pending = asyncio.create_task(writer.write(lines(2)))
    await asyncio.sleep(0)
    await writer.close()  # does not wait out the hour-long flush interval
    assert pending.done() and backend.requests == [lines(2)] and backend.closed


def test_backoff_doubles_up_to_its_maximum_with_jitter() -> None:
    backoff = Backoff(initial_s=1.0, max_s=8.0)
    for attempt, base in [(1, 1.0), (2, 2.0), (4, 8.0), (10, 8.0)]:
        assert 0.5 * base <= backoff.delay_s(attempt) < 1.5 * base


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("400d", 400 * 86400), ("9600h0m0s", 400 * 86400), ("52w", 52 * 604800), ("INF", 0), ("0s", 0)],
)
def test_retention_durations_as_written_and_as_influxdb_shows_them(text: str, seconds: int) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["400", "10m", "1 d", "forever"])
def test_durations_influxdb_would_refuse_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        duration_s(text)


def test_a_stored_continuous_query_matches_its_quoted_statement() -> None:
    assert _same_statement(
        'CREATE CONTINUOUS QUERY "q" ON "db"  BEGIN SELECT 1 END',
        "CREATE CONTINUOUS QUERY q ON db BEGIN SELECT 1 END",
    )
    assert not _same_statement("SELECT sum(a) FROM m", "SELECT last(a) FROM m")
