"""A restarted worker's stream partitions, put right after table recovery: seek before resume, and
fetch again what was fetched and never delivered.

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

Faust drops records it fetched for a partition that is not active when they are handed out (as
between that seek and the resume), then takes the jump to its next record for a gap in the log and
commits over it. :func:`getmany_refetching`, installed by the table manager, seeks such a partition
back so that the records are fetched again.

Even so, under load a restarted worker can fetch its `readings` partitions to their end and hand
none of it to the agent. :class:`FetchWatchdog`, run from a timer, notices and seeks back to the
committed offsets.

Recovery reads each changelog up to its end as ListOffsets reports it. On tansu with ``s3://``
storage that answer is the base offset + 1 of the first batch written in the partition's newest
second (``tests/integration/test_faults_broker.py``), so a worker restarted after a burst of writes
restored a few records of each changelog and counted again what it had counted before (found by
``tests/integration/test_faults.py``). Fetch responses carry the true end (the high watermark):
:func:`fetched_log_ends` asks for it, and :func:`tansu_table_manager` gives the app a table manager
whose recovery takes the larger of the two. If the fetch fails, recovery fails with it: a worker that
stops is better than one that counts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import types
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP

log = logging.getLogger("energymon.streams")


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


async def getmany_refetching(self: Any, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
    """faust-streaming 0.15.3's ``Consumer.getmany``, except that records it fetched and does not
    hand out are fetched again. Install with :func:`install_refetching_getmany`.

    Faust's own drops them: the records of a partition that is not active when they are handed out
    (paused, or not yet resumed after a rebalance), and the rest of a fetch when the flow stops or
    the generation changes. aiokafka's position has moved past them, and Faust takes the jump to the
    next record it hands out for a gap in the log (as transaction markers leave) and commits over it:
    the records are skipped for good. Found by ``tests/integration/test_faults.py``: a worker
    restarted after a SIGKILL fetched 17 records of each `readings` partition in the 0.15 s between
    recovery's seek and the resume of its partitions, dropped them, and committed past them (3 of 5
    runs). Here each such partition is sought back to the first record not handed out (and none of
    its later records is handed out before it), so it is fetched again once the partition is active.
    """
    records, active_partitions = await self._wait_next_records(timeout)
    generation_id = self.app.consumer_generation_id
    if records is None or self.should_stop:
        return
    if not self.flow_active:  # as Faust does: back to the committed offsets
        with contextlib.suppress(Exception):
            await self.perform_seek()
        return
    held_back: dict[TP, int] = {}  # partition → offset of its first record not handed out
    for tp, record in self.scheduler.iterate(records):
        if tp in held_back:
            continue
        if (
            not self.flow_active
            or self.app.consumer_generation_id != generation_id
            or not (active_partitions is None or tp in active_partitions or tp in self._buffered_partitions)
        ):
            held_back[tp] = record.offset
            continue
        self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        yield tp, self._to_message(tp, record)
    assigned = self.assignment()
    for tp, offset in held_back.items():
        if tp in assigned:
            await self.seek(tp, offset)


def install_refetching_getmany(consumer: Any) -> None:
    """Make the app's consumer use :func:`getmany_refetching` (before its fetcher starts)."""
    if getattr(consumer, "_energymon_refetching", False):
        return
    consumer.getmany = types.MethodType(getmany_refetching, consumer)
    consumer._energymon_refetching = True


LogEnds = Callable[[Mapping[TP, int]], dict[TP, int]]
"""Partition → an offset at or before its end in, partition → its true end offset out."""


def fetched_log_ends(
    options: Mapping[str, Any], starts: Mapping[TP, int], timeout_s: float = 10.0
) -> dict[TP, int]:
    """Each partition's end offset as a Fetch response from ``starts[tp]`` reports it (its high
    watermark), read with a kafka-python consumer of ``options`` outside any group. Blocking; about
    one fetch round trip (100 ms when a partition has nothing after its start)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        **options,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        client_id="energymon-log-ends",
    )
    try:
        wanted = {TopicPartition(tp.topic, tp.partition): max(start, 0) for tp, start in starts.items()}
        consumer.assign(list(wanted))
        for tp, start in wanted.items():
            consumer.seek(tp, start)
        deadline = time.monotonic() + timeout_s
        while any(consumer.highwater(tp) is None for tp in wanted):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no fetch response for {sorted(wanted)} within {timeout_s:g} s")
            consumer.poll(timeout_ms=100, max_records=1)
        return {TP(tp.topic, tp.partition): int(consumer.highwater(tp)) for tp in wanted}
    finally:
        consumer.close(autocommit=False)


class SeekFirstRecovery(Recovery):
    """Faust's recovery with the end-of-recovery order fixed (see the module docstring), and with
    the changelogs' ends taken from a fetch too when the table manager has ``log_ends``."""

    async def _build_highwaters(self, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        await super()._build_highwaters(consumer, tps, destination, title)
        log_ends: LogEnds | None = getattr(self.tables, "log_ends", None)
        if log_ends is None or not tps:
            return
        # Faust keeps "highwater" as the end offset - 1.
        ends = await asyncio.to_thread(log_ends, {tp: destination[tp] + 1 for tp in tps})
        short = {tp: end - 1 for tp, end in ends.items() if end - 1 > destination[tp]}
        if short:
            log.warning(
                "the broker reported changelog ends short of the fetched ones; recovering to %s",
                ", ".join(f"{tp.topic}[{tp.partition}] {end + 1} (not {destination[tp] + 1})"
                          for tp, end in sorted(short.items())),
            )  # fmt: skip
            for tp, highwater in short.items():  # (a Counter: update() would add)
                destination[tp] = highwater

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        async with seek_before_resume(self.app.consumer):
            await super().on_recovery_completed(generation_id)

    async def _resume_streams(self, generation_id: int = 0) -> None:
        async with seek_before_resume(self.app.consumer):
            await super()._resume_streams(generation_id)


class SeekFirstTableManager(TableManager):
    """Faust's table manager, recovering with :class:`SeekFirstRecovery`; ``log_ends`` (None: trust
    ListOffsets) is how that recovery checks the changelogs' ends."""

    log_ends: LogEnds | None = None

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            install_refetching_getmany(self.app.consumer)
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


def tansu_table_manager(options: Mapping[str, Any]) -> type[SeekFirstTableManager]:
    """A :class:`SeekFirstTableManager` whose recovery fetches the changelogs' ends with a
    kafka-python consumer of ``options`` (for tansu, whose ListOffsets can fall short)."""

    def log_ends(starts: Mapping[TP, int]) -> dict[TP, int]:
        return fetched_log_ends(options, starts)

    return type("TansuTableManager", (SeekFirstTableManager,), {"log_ends": staticmethod(log_ends)})


def undelivered(
    positions: dict[Any, int], delivered: dict[Any, int | None], committed: dict[Any, int | None]
) -> dict[Any, tuple[int, int | None]]:
    """Partitions whose fetch ``positions`` (the next offset the consumer will fetch) are ahead of
    the next offset to deliver: one past the last ``delivered``, or the ``committed`` offset when
    nothing was delivered since the last seek (Faust then keeps the committed offset as delivered).
    Returns ``partition → (position, delivered)``."""
    found: dict[Any, tuple[int, int | None]] = {}
    for tp, position in positions.items():
        got = delivered.get(tp)
        next_expected = got + 1 if got is not None else (committed.get(tp) or 0)
        if position > next_expected:
            found[tp] = (position, got)
    return found


class FetchWatchdog:
    """Finds records the consumer fetched but never handed to the agent, and fetches them again.

    Seen with faust-streaming 0.15.3 on a worker restarted after a crash, under load (3 of 4 runs of
    the crash test while the machine was busy): after table recovery the `readings` partitions were
    fetched to their end, yet no record reached the agent and none was acknowledged, so the worker
    sat idle with the group's offsets where the crashed worker had left them. Each :meth:`check`
    compares, per stream partition, the fetch position of the underlying aiokafka consumer with the
    offset Faust last delivered; when the position is ahead, nothing is in flight (no message waits
    for its acknowledgement) and nothing has moved since the previous check, the consumer is sought
    back to the committed offsets, which fetches the lost records again (a record processed twice is
    absorbed by the ledgers' memory). Call it every few seconds; it never acts during a rebalance.
    """

    def __init__(self, app: Any, topics: Iterable[str]) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.seeks = 0
        self._last: dict[Any, tuple[int, int | None]] | None = None
        self._sought: set[tuple[Any, int]] = set()

    def lost(self) -> dict[Any, tuple[int, int | None]]:
        """Stream partitions whose fetch position is ahead of what was delivered:
        ``tp → (position, delivered offset or None)``. Empty while messages are in flight."""
        consumer = self.app.consumer
        if consumer._unacked_messages:
            return {}
        fetcher: Any = consumer._thread._consumer
        subscription = fetcher._subscription.subscription
        if subscription is None or subscription.assignment is None:
            return {}
        positions = {
            (tp.topic, tp.partition): state.position
            for tp, state in list(subscription.assignment._tp_state.items())
            if tp.topic in self.topics and state.has_valid_position
        }
        return undelivered(
            positions,
            {(tp.topic, tp.partition): o for tp, o in consumer._read_offset.items()},
            {(tp.topic, tp.partition): o for tp, o in consumer._committed_offset.items()},
        )

    async def check(self) -> bool:
        """Seek back to the committed offsets if records were lost since the previous check (True)."""
        if self.app.rebalancing or not self.app.tables.recovery.completed.is_set():
            self._last = None
            return False
        try:
            lost = self.lost()
        except AttributeError:  # consumer not started (or another transport): nothing to watch
            return False
        if not lost or lost != self._last:
            self._last = lost or None
            return False
        # Once per position: a gap the broker leaves in a log (transaction markers, compaction) looks
        # the same after the seek, and must not be fetched again and again.
        fresh = {tp: seen for tp, seen in lost.items() if (tp, seen[0]) not in self._sought}
        self._last = None
        if not fresh:
            return False
        self._sought.update((tp, seen[0]) for tp, seen in fresh.items())
        lost = fresh
        log.warning(
            "records fetched but never delivered on %s (faust-streaming after recovery): "
            "seeking back to the committed offsets",
            ", ".join(
                f"{topic}[{partition}] position {pos} delivered {got}"
                for (topic, partition), (pos, got) in sorted(lost.items())
            ),
        )
        self.seeks += 1
        await self.app.consumer.perform_seek()
        return True
