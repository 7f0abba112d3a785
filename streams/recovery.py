"""Table recovery that seeks the stream partitions *before* it resumes them.

faust-streaming 0.15.3 ends table recovery (``Recovery.on_recovery_completed`` and
``Recovery._resume_streams``) by resuming the `readings` partitions and only then seeking them to
the group's committed offsets. In between, the fetcher — already running for the changelogs — may
fetch `readings` records; a batch of them still being handed out after the seek makes the consumer
believe the offsets between the committed one and that batch are a gap in the log, commits past
them and drops them when they are fetched again. A worker restarted after a crash then skips
messages (found by ``tests/integration/test_restart.py``; upstream faust-streaming#216 fixed the
same order once, in 2021, and it came back).

:class:`SeekFirstTableManager` makes recovery seek while the partitions are still paused and
resume them after the seek, the order faust-streaming#217 set. Give it to the app as
``TableManager=SeekFirstTableManager``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP


@asynccontextmanager
async def seek_before_resume(consumer: Any) -> AsyncIterator[None]:
    """Inside the block, ``consumer.resume_partitions`` only notes the partitions, and
    ``consumer.perform_seek`` seeks first and then resumes what was noted; both are restored after.
    Partitions noted but never followed by a seek (an empty assignment) are resumed on the way out.
    """
    resume, seek = consumer.resume_partitions, consumer.perform_seek
    noted: set[TP] = set()

    def note(tps: Iterable[TP]) -> None:
        noted.update(tps)

    def resume_noted() -> None:
        if noted:
            resume(set(noted))
            noted.clear()

    async def seek_then_resume() -> None:
        await seek()
        resume_noted()

    consumer.resume_partitions, consumer.perform_seek = note, seek_then_resume
    try:
        yield
    finally:
        consumer.resume_partitions, consumer.perform_seek = resume, seek
        resume_noted()


class SeekFirstRecovery(Recovery):
    """Faust's recovery with the end-of-recovery order fixed (see the module docstring)."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        async with seek_before_resume(self.app.consumer):
            await super().on_recovery_completed(generation_id)

    async def _resume_streams(self, generation_id: int = 0) -> None:
        async with seek_before_resume(self.app.consumer):
            await super()._resume_streams(generation_id)


class SeekFirstTableManager(TableManager):
    """Faust's table manager, recovering with :class:`SeekFirstRecovery`."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
