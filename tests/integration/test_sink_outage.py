"""An InfluxDB stopped for 30 s in the middle of a stream of writes, then restarted on the same port
and data directory: the writer retried, and exactly the expected points are there (none lost, none
doubled)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from energymon.localstack.influxdb import LocalInfluxDB, create_database, query
from energymon.localstack.ports import free_port
from energymon.settings import InfluxSettings
from streams.sinks.backends import build_writer
from streams.sinks.measurements import encode_unit_energy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
OUTAGE_S = 30.0
BATCHES, PER_BATCH = 40, 500


async def test_a_30_s_outage_delays_points_and_loses_none(tmp_path: Path) -> None:
    server = LocalInfluxDB(tmp_path / "influxdb", free_port())
    server.start()
    try:
        create_database(server.url, "outage")
        writer = build_writer(
            InfluxSettings(url=server.url, database="outage", timeout_s=2.0, retry_max_backoff_s=2.0)
        )
        start_ms = (int(time.time()) - 86_400) * 1000
        written = 0

        async def stream() -> None:
            nonlocal written
            for b in range(BATCHES):
                batch = [
                    encode_unit_energy(
                        f"U{i % 50}", "江苏", "C30", 0.5, 0.25, start_ms + (b * PER_BATCH + i) * 1000
                    )
                    for i in range(PER_BATCH)
                ]
                await writer.write([line for line in batch if line])
                written = b + 1
                await asyncio.sleep(0.05)

        task = asyncio.create_task(stream())
        while written < BATCHES // 4:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.stop)
        stopped_at = written
        await asyncio.sleep(OUTAGE_S)
        assert not task.done() and written <= stopped_at + 1  # blocked in write(), not moving on
        retries_during_outage = writer.retries
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(task, 60)
        await writer.close()
        [series] = query(server.url, "outage", "SELECT count(tce), sum(tce), sum(co2_t) FROM unit_energy")
    finally:
        server.stop()
    total = BATCHES * PER_BATCH
    assert retries_during_outage > 0
    assert series["values"][0][1:] == [total, 0.5 * total, 0.25 * total]
