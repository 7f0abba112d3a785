"""The ``files`` source: a watched folder of CSV / XLSX exports (a pushed source).

Every ``interval_s`` it takes the settled files, oldest first. Each file is parsed, its readings
emitted in chunks of ``chunk_size``, and only after the last emit returned is it moved to ``done/``.
A file that can't be parsed goes to ``failed/`` with ``<name>.error.txt`` naming the line and the
reason. A bad row is skipped and logged with its line; its file still goes to ``done/``, with
``<name>.skipped.txt`` listing the skipped lines. When an emit raises, the file stays where it is
and is read again, whole, on the next poll (its first chunks may then be emitted twice).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from collectors.sources.base import Emit, SourceError, SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.files.config import Config
from collectors.sources.files.folder import move_into, ready_files, write_note
from collectors.sources.files.parse import ParsedFile, parse_file
from collectors.sources.files.tables import FileRejected

__all__ = ["SOURCE_TYPES", "Config", "FilesSource", "create"]

SOURCE_TYPES = ("files",)
log = logging.getLogger("energymon.collect.files")
READ_ONCE_POLL_S = 0.2


@dataclass
class FilesStats:
    """Counts since start: files moved to done/ and failed/, readings emitted, rows skipped."""

    files_done: int = 0
    files_failed: int = 0
    readings: int = 0
    rows_skipped: int = 0


class FilesSource:
    """See the module docstring."""

    def __init__(self, config: Config, context: SourceContext) -> None:
        self.name = config.name
        self.config = config
        self._clock = context.clock
        self.stats = FilesStats()
        self._stuck: set[Path] = set()  # emitted but could not be moved: never emit again

    def _ready(self) -> list[Path]:
        return [path for path in self._listing() if path not in self._stuck]

    def _listing(self) -> list[Path]:
        cfg = self.config
        try:
            return ready_files(cfg.path, cfg.pattern, cfg.settle_s, self._clock())
        except OSError as exc:
            raise SourceError(f"{self.name}: cannot list {cfg.path}: {exc}") from exc

    async def _parse(self, path: Path) -> ParsedFile:
        parsed = await asyncio.to_thread(parse_file, path, self.config, round(self._clock() * 1000))
        for line, reason in parsed.skipped:
            log.warning("source %s: %s line %d skipped: %s", self.name, path.name, line, reason)
        return parsed

    async def read_once(self, timeout_s: float = 10.0) -> list[SourceReading]:
        """The readings of the first settled file within ``timeout_s`` s (the file is not moved);
        [] when none came. SourceError when the file can't be parsed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (files := self._ready()):
            if loop.time() >= deadline:
                return []
            await asyncio.sleep(min(READ_ONCE_POLL_S, max(0.0, deadline - loop.time())))
        try:
            return (await self._parse(files[0])).readings
        except (FileRejected, OSError) as exc:
            raise SourceError(f"{self.name}: {files[0].name}: {exc}") from exc

    async def run(self, emit: Emit) -> None:
        """Poll the folder until cancelled."""
        while True:
            try:
                await self.poll(emit)
            except SourceError as exc:
                log.warning("source %s: %s", self.name, exc)
            await asyncio.sleep(self.config.interval_s)

    async def poll(self, emit: Emit) -> None:
        """Deal with every settled file once; stops at the first file whose emit raised."""
        for path in self._ready():
            if not await self._take(path, emit):
                return

    async def _take(self, path: Path, emit: Emit) -> bool:
        """Parse, emit and move one file; False when emit raised (the file stays)."""
        try:
            parsed = await self._parse(path)
        except FileRejected as exc:
            self._fail(path, exc)
            return True
        except OSError as exc:  # vanished or unreadable: leave it, try again next poll
            log.warning("source %s: cannot read %s: %s", self.name, path.name, exc)
            return True
        size = self.config.chunk_size
        try:
            for start in range(0, len(parsed.readings), size):
                await emit(parsed.readings[start : start + size])
        except Exception:
            log.exception("source %s: emit failed, %s stays for the next poll", self.name, path.name)
            return False
        try:
            done = move_into(path, self.config.done)
        except OSError as exc:
            self._stuck.add(path)
            log.error(
                "source %s: %s was emitted but can't be moved (%s): left alone until restart",
                self.name,
                path.name,
                exc,
            )
            return True
        if parsed.skipped:
            write_note(done, ".skipped.txt", "".join(f"line {n}: {why}\n" for n, why in parsed.skipped))
        self.stats.files_done += 1
        self.stats.readings += len(parsed.readings)
        self.stats.rows_skipped += len(parsed.skipped)
        log.info(
            "source %s: %s: %d readings, %d rows skipped",
            self.name,
            path.name,
            len(parsed.readings),
            len(parsed.skipped),
        )
        return True

    def _fail(self, path: Path, exc: FileRejected) -> None:
        failed = move_into(path, self.config.failed)
        write_note(failed, ".error.txt", f"{exc}\n")
        self.stats.files_failed += 1
        log.warning("source %s: %s moved to %s: %s", self.name, path.name, failed.parent, exc)

    async def close(self) -> None:
        """Nothing to release: files are opened and closed per parse."""


def create(config: Config, context: SourceContext) -> FilesSource:
    """The plugin's factory."""
    return FilesSource(config, context)
