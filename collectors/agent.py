"""The site collector agent behind ``energymon collect``: runs every source of a site config
concurrently, turns what each scan or payload gives into one readings message per unit, writes them
to the store-and-forward buffer, and lets the :class:`~collectors.forwarder.Forwarder` send them.

A message's ``source`` is ``<site id>/<source name>`` and its ``seq`` the source's counter kept in
the buffer file (it continues across restarts), so (source, seq) identifies a message for ever.
Every ``status_every_s`` a JSON status file (``status.json`` in the state dir) is rewritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from collectors.buffer import Buffer, BufferFull, Record
from collectors.forwarder import ClockCheck, Forwarder
from collectors.site_config import SiteConfig, create_source
from collectors.sources.base import Source, SourceReading
from collectors.sources.base import log as source_log
from collectors.sources.context import SourceContext
from energy.topics import READINGS

log = logging.getLogger("energymon.collect.agent")

STATUS_FILE = "status.json"
#: Longest wait between two restarts of a source whose ``run`` failed, seconds.
MAX_RESTART_S = 60.0


def group_by_unit(readings: Sequence[SourceReading]) -> dict[str, list[SourceReading]]:
    """The readings per unit, units in order of first appearance, readings in their order."""
    groups: dict[str, list[SourceReading]] = {}
    for r in readings:
        groups.setdefault(r.unit_id, []).append(r)
    return groups


def readings_message(
    unit_id: str, source: str, seq: int, readings: Sequence[SourceReading]
) -> dict[str, Any]:
    """One readings message (ARCHITECTURE.md, v=1) of ``unit_id``'s ``readings``."""
    return {
        "v": 1,
        "unit_id": unit_id,
        "source": source,
        "seq": seq,
        "readings": [r.to_message_reading() for r in readings],
    }


@dataclass
class SourceStatus:
    """Per source: warnings/errors logged for it, the last one, messages refused by a full buffer."""

    errors: int = 0
    last_error: str | None = None
    refused: int = 0


class _SourceErrors(logging.Handler):
    """Counts the warnings and errors sources log as ``log.warning("source %s: …", name, …)``."""

    def __init__(self, status: dict[str, SourceStatus]) -> None:
        super().__init__(logging.WARNING)
        self._status = status

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        name = args[0] if isinstance(args, tuple) and args else None
        if isinstance(name, str) and name in self._status:
            self._status[name].errors += 1
            self._status[name].last_error = record.getMessage()


class Agent:
    """One site's collector (see the module docstring). ``sources`` default to the config's, built
    by their plugins; ``clock`` (epoch s) stamps buffer rows and success times."""

    def __init__(
        self,
        config: SiteConfig,
        sources: Sequence[Source] | None = None,
        clock: Callable[[], float] = time.time,
        status_every_s: float = 5.0,
        drain_s: float = 5.0,
    ) -> None:
        self.config = config
        self._clock = clock
        self.status_every_s = status_every_s
        self.drain_s = drain_s
        config.state_dir.mkdir(parents=True, exist_ok=True)
        context = SourceContext(config.site.id, config.state_dir, clock)
        self.sources = (
            list(sources) if sources is not None else [create_source(c, context) for c in config.sources]
        )
        self.buffer = Buffer(config.buffer.path, config.buffer.max_mb, config.buffer.warn_pct, clock=clock)
        self.forwarder = Forwarder(
            self.buffer, config.kafka, ClockCheck(config.clock.max_drift_s),
            client_id=f"energymon-collector-{config.site.id}", max_backoff_s=config.buffer.retry_max_s,
            clock=clock,
        )  # fmt: skip
        self.status = {s.name: SourceStatus() for s in self.sources}
        self._seqs = {s.name: self.buffer.last_seq(s.name) for s in self.sources}
        self._locks = {s.name: asyncio.Lock() for s in self.sources}

    @property
    def status_path(self) -> Path:
        """The JSON status file."""
        return self.config.state_dir / STATUS_FILE

    # -- running -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then stop the sources, send what can be sent within
        ``drain_s`` seconds (the rest stays buffered) and close the buffer."""
        handler = _SourceErrors(self.status)
        source_log.addHandler(handler)
        log.info(
            "collector %s: %d source(s), buffer %s, broker %s",
            self.config.site.id, len(self.sources), self.buffer.path, self.config.kafka.bootstrap_servers,
        )  # fmt: skip
        forwarder = asyncio.create_task(self.forwarder.run(), name="forwarder")
        status = asyncio.create_task(self._write_status_every(), name="status")
        tasks = [asyncio.create_task(self._run_source(s), name=f"source {s.name}") for s in self.sources]
        try:
            await stop.wait()
        finally:
            log.info("collector %s: stopping", self.config.site.id)
            await _cancel(*tasks)
            for source in self.sources:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(source.close(), 2.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.forwarder.until_empty(), self.drain_s)
            await _cancel(forwarder, status)
            await self.forwarder.close(timeout_s=1.0)
            self.write_status()
            self.buffer.close()
            source_log.removeHandler(handler)
            log.info("collector %s: stopped", self.config.site.id)

    async def _run_source(self, source: Source) -> None:
        """Run one source; restart it (backoff up to :data:`MAX_RESTART_S`) when its ``run`` fails."""
        wait = 1.0
        while True:
            try:
                await source.run(lambda readings: self.emit(source.name, readings))
                return
            except Exception as exc:
                self.status[source.name].errors += 1
                self.status[source.name].last_error = repr(exc)
                log.error("source %s failed: %r; restarting it in %.0f s", source.name, exc, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, MAX_RESTART_S)

    async def emit(self, name: str, readings: list[SourceReading]) -> None:
        """Buffer what one scan or payload of source ``name`` gave: one message per unit, each with
        the source's next seq, all in one transaction (refused as a whole when the buffer is full)."""
        if not readings:
            return
        source_id = self.config.source_id(name)
        async with self._locks[name]:
            seq = self._seqs[name]
            records: list[Record] = []
            for unit_id, items in group_by_unit(readings).items():
                seq += 1
                value = orjson.dumps(readings_message(unit_id, source_id, seq, items))
                records.append(Record(READINGS, unit_id, value, unit_id, name, seq))
            try:
                await asyncio.to_thread(self.buffer.put_many, records, self._clock())
            except BufferFull:
                self.status[name].refused += len(records)  # logged by the buffer
                return
            self._seqs[name] = seq
        self.forwarder.wake()

    # -- status --------------------------------------------------------------------------------

    async def _write_status_every(self) -> None:
        while True:
            await asyncio.to_thread(self.write_status)
            await asyncio.sleep(self.status_every_s)

    def write_status(self) -> None:
        """Rewrite the status file (atomically: a reader sees the old or the new one)."""
        stats = self.buffer.stats()
        now = self._clock()
        stored = {s.source: s for s in self.buffer.sources()}
        sources: dict[str, Any] = {}
        for name, st in self.status.items():
            kept = stored.get(name)
            sources[name] = {
                "last_success": kept.last_success if kept else None,
                "last_sent": kept.last_sent if kept else None,
                "last_seq": kept.last_seq if kept else 0,
                "refused_total": kept.refused if kept else 0,
                **asdict(st),
            }
        data = {
            "site": self.config.site.id,
            "written_at": now,
            "pid": os.getpid(),
            "backlog": {
                "messages": stats.messages,
                "value_bytes": stats.value_bytes,
                "used_pct": round(stats.used_pct, 3),
                "oldest_unsent": stats.oldest_created_at,
                "oldest_unsent_age_s": now - stats.oldest_created_at if stats.oldest_created_at else None,
            },
            "refused": sum(st.refused for st in self.status.values()),
            "forwarder": asdict(self.forwarder.state),
            "clock_drift_s": self.forwarder.clock_check.drift_s,
            "sources": sources,
        }
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.status_path)


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    """Cancel tasks and wait until they finished (their errors are logged, not raised)."""
    for task in tasks:
        task.cancel()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, Exception):
            log.error("task ended with %r", result)


async def run_agent(config: SiteConfig, stop: asyncio.Event) -> None:
    """Run the collector of ``config`` until ``stop`` is set."""
    await Agent(config).run(stop)
