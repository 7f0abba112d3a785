"""Dead letters and alerts of a batch (``streams.app.send_records``): the records of a key are queued
in order, one after the other (the alert lifecycle reads a key's records in order); different keys
are queued side by side instead of each waiting for the one before; the call returns once the
broker has every record."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import faust

from streams.app import send_records


class SlowTopic:
    """A topic whose queueing takes a while (a full producer batch waits for the one in flight, as
    with tansu's one-record batches) and whose delivery comes later still."""

    def __init__(self, name: str, log: list[tuple[str, str, bytes | None, bytes]]) -> None:
        self.name = name
        self.log = log
        self.in_queue = 0
        self.most_in_queue = 0
        self.delivered: list[bytes] = []

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, *, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        self.log.append(("queue", self.name, key, value))
        self.in_queue += 1
        self.most_in_queue = max(self.most_in_queue, self.in_queue)
        await asyncio.sleep(0.01)
        self.in_queue -= 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def deliver() -> None:
            self.delivered.append(value)
            done.set_result(None)

        asyncio.get_running_loop().call_later(0.01, deliver)
        return done


async def test_a_keys_records_in_order_keys_side_by_side_all_delivered() -> None:
    log: list[tuple[str, str, bytes | None, bytes]] = []
    alerts, rejected = SlowTopic("alerts", log), SlowTopic("readings.rejected", log)
    records: list[tuple[Any, bytes | None, bytes]] = [
        (alerts, b"U1", b"raised"),
        (alerts, b"U2", b"raised"),
        (rejected, None, b"bad 1"),
        (alerts, b"U1", b"resolved"),
        (rejected, b"U1", b"bad 2"),
        (rejected, None, b"bad 3"),
        (alerts, b"U1", b"raised again"),
    ]
    await send_records(cast("list[tuple[faust.TopicT, bytes | None, bytes]]", records))
    for topic, key in ((alerts, b"U1"), (rejected, None)):
        queued = [value for _, name, k, value in log if name == topic.name and k == key]
        assert queued == [value for t, k, value in records if t is topic and k == key]
    assert sorted(alerts.delivered + rejected.delivered) == sorted(value for _, _, value in records)
    assert alerts.most_in_queue > 1  # U1 and U2 were queued side by side
