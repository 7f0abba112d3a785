"""The simulator source plugin (collectors/sources/simulator/plugin.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from collectors.simulator import Fleet
from collectors.sources.base import SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.simulator import plugin

T0 = 1_780_000_000.0  # 2026-05-28


def make(tmp_path: Path, clock: list[float], **fields: object) -> plugin.SimulatorSource:
    config = plugin.Config.model_validate({"name": "sim", "type": "simulator", "interval_s": 60, **fields})
    return plugin.create(config, SourceContext("site", tmp_path, lambda: clock[0]))


def test_one_scan_reads_every_meter_of_every_unit_at_the_clock_time(tmp_path: Path) -> None:
    clock = [T0]
    readings = asyncio.run(make(tmp_path, clock, units=2).read_once())
    fleet = Fleet.generate(units=2)
    assert [r.meter_id for r in readings] == [m.meter_id for u in fleet.units for m in u.meters]
    assert {r.ts_ms for r in readings} == {int(T0 * 1000)}
    assert all(isinstance(r, SourceReading) for r in readings)


def test_interval_meters_report_the_consumption_since_the_previous_scan(tmp_path: Path) -> None:
    clock = [T0]
    source = make(tmp_path, clock, unit_ids=["sim-steel-001"])
    asyncio.run(source.read_once())
    clock[0] = T0 + 900
    coal = next(r for r in asyncio.run(source.read_once()) if r.meter_id == "sim-steel-001.CO01")
    fleet = Fleet.generate(units=1)
    meter = next(m for m in fleet.unit("sim-steel-001").meters if m.meter_id == coal.meter_id)
    assert coal.value == pytest.approx(
        fleet.quantity(meter, int(T0 * 1000), int((T0 + 900) * 1000)), abs=1e-3
    )


def test_an_unknown_unit_id_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no unit 'sim-steel-099'"):
        make(tmp_path, [T0], units=4, unit_ids=["sim-steel-099"])


def test_run_emits_one_scan_per_interval(tmp_path: Path) -> None:
    source = make(tmp_path, [T0], units=1, interval_s=0.01)
    scans: list[list[SourceReading]] = []

    async def emit(readings: list[SourceReading]) -> None:
        scans.append(readings)
        if len(scans) == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(source.run(emit))
    assert len(scans) == 3 and all(len(s) == 7 for s in scans)
