"""Exponential backoff with jitter, for retrying writes until InfluxDB takes them."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streams.sinks.errors import InfluxUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``initial_s`` doubling up to ``max_s`` (seconds), each scaled by a
    random factor in [0.5, 1.5) so that several writers do not retry in step. ``max_attempts`` None
    retries for as long as it takes (the worker's choice: an outage delays data and loses none)."""

    initial_s: float = 0.2
    max_s: float = 30.0
    max_attempts: int | None = None

    def delay_s(self, attempt: int) -> float:
        """The wait (s) after failed attempt number ``attempt`` (1-based)."""
        base: float = min(self.initial_s * 2.0 ** (attempt - 1), self.max_s)
        return base * (0.5 + random.random())


async def retrying(
    attempt: Callable[[], Awaitable[None]],
    backoff: Backoff,
    on_retry: Callable[[int, InfluxUnavailable], None] | None = None,
) -> None:
    """Await ``attempt()`` until it succeeds; :class:`InfluxUnavailable` is retried after a backoff,
    any other exception (:class:`~streams.sinks.errors.InfluxWriteRejected` …) is raised at once, and
    so is the last InfluxUnavailable when ``max_attempts`` is reached."""
    tries = 0
    while True:
        tries += 1
        try:
            await attempt()
            return
        except InfluxUnavailable as exc:
            if backoff.max_attempts is not None and tries >= backoff.max_attempts:
                raise
            delay = backoff.delay_s(tries)
            log.warning("InfluxDB write failed (attempt %d, %s); retrying in %.1f s", tries, exc, delay)
            if on_retry is not None:
                on_retry(tries, exc)
            await asyncio.sleep(delay)
