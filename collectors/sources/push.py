"""What pushed sources (HTTP push, MQTT) share: readings messages as SourceReadings, secrets read
from config or a file, counters, and the ``read_once`` of a source that waits for data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from collectors.sources.base import Emit, ForwardedReading, SourceError, SourceReading
from energy.schema import ParsedMessage, Rejection

log = logging.getLogger("energymon.collect")


@dataclass
class PushCounters:
    """What a pushed source received since it started (counts, not bytes)."""

    payloads: int = 0  #: payloads (HTTP bodies, MQTT messages) received
    readings: int = 0  #: readings emitted to the agent
    rejected_payloads: int = 0  #: payloads rejected whole (not JSON, bad envelope, unauthorised)
    rejected_readings: int = 0  #: single readings rejected (their siblings went on)


def source_readings(parsed: ParsedMessage) -> tuple[list[SourceReading], list[Rejection]]:
    """A validated readings message's readings as SourceReadings (meter swaps and interval starts
    carried through), and the parser's rejections (rule ``bad_reading``)."""
    readings = [
        ForwardedReading(
            parsed.unit_id,
            r.meter_id,
            r.energy,
            r.kind,
            r.value,
            r.uom,
            r.ts_ms,
            r.quality,
            start_ms=r.start_ms,
            event=r.event,
            old_value=r.old_value,
        )
        if r.start_ms is not None or r.event is not None
        else SourceReading(parsed.unit_id, r.meter_id, r.energy, r.kind, r.value, r.uom, r.ts_ms, r.quality)
        for r in parsed.readings
    ]
    return readings, list(parsed.rejections)


def log_rejections(source: str, where: str, rejections: Iterable[Rejection]) -> None:
    """One warning per rejection, naming the source, where the data came from and the rule."""
    for r in rejections:
        log.warning("source %s: %s: rejected (%s): %s", source, where, r.rule, r.detail)


def check_secret_source(inline: SecretStr | None, file: Path | None, name: str) -> None:
    """Config check: ``name`` and ``name_file`` are not both given (ValueError)."""
    if inline is not None and file is not None:
        raise ValueError(f"give {name} or {name}_file, not both")


def read_secret(inline: SecretStr | None, file: Path | None) -> str | None:
    """The secret given inline or as the first line of ``file`` (None when neither); SourceError
    names the file (never the secret) when it cannot be read or is empty."""
    if inline is not None:
        return inline.get_secret_value()
    if file is None:
        return None
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read secret file {file}: {exc.strerror}") from None
    if not lines or not lines[0].strip():
        raise SourceError(f"secret file {file} is empty")
    return lines[0].strip()


async def first_payload(
    run: Callable[[Emit], Coroutine[Any, Any, None]], timeout_s: float, waiting_for: str
) -> list[SourceReading]:
    """Start ``run`` with an emit that keeps the first non-empty payload, and return that payload
    within ``timeout_s`` seconds (SourceError otherwise, or with ``run``'s own error); ``run`` is
    cancelled before returning."""
    got: asyncio.Future[list[SourceReading]] = asyncio.get_running_loop().create_future()

    async def keep_first(readings: list[SourceReading]) -> None:
        if readings and not got.done():
            got.set_result(readings)

    task = asyncio.create_task(run(keep_first))
    try:
        waits: set[asyncio.Future[Any]] = {got, task}
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if got.done():
            return got.result()
        exc = task.exception() if task.done() and not task.cancelled() else None
        if exc is not None:
            if isinstance(exc, SourceError):
                raise exc
            raise SourceError(f"{waiting_for}: {exc}") from exc
        raise SourceError(f"nothing received within {timeout_s:g} s ({waiting_for})")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
