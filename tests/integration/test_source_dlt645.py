"""The dlt645 source against the meter emulator over a real TCP socket (and once through pyserial's
``socket://`` URL, which exercises the serial link's code; a real RS-485 line is not tested)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from collectors.sources.base import SourceError, SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.dlt645.emulator import MeterEmulator
from collectors.sources.dlt645.frame import DataFormat
from collectors.sources.dlt645.plugin import SOURCE_TYPES, Config, Dlt645Source, create

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

CASES = Path(__file__).parents[2] / "collectors/sources/dlt645/testcases"
NOW_S = 1_767_225_600.0  # 2026-01-01 00:00 UTC
A, B = "123456789012", "000000000042"


def context(clock_s: float = NOW_S) -> SourceContext:
    return SourceContext(site_id="site", state_dir=Path("/nonexistent"), clock=lambda: clock_s)


def energy_point(address: str, **extra: Any) -> dict[str, Any]:
    return {"address": address, "points": [energy(address), *extra.get("points", [])]}


def energy(address: str) -> dict[str, Any]:
    return {
        "di": "00010000",
        "unit_id": "U",
        "meter_id": f"M{address}",
        "energy": "electricity",
        "uom": "kWh",
    }


def config(port: int, meters: list[dict[str, Any]], **extra: Any) -> Config:
    fields = {"name": "gw", "type": "dlt645", "tcp": {"host": "127.0.0.1", "port": port}, "meters": meters}
    return Config.model_validate({"timeout_s": 0.3, "retries": 1, **fields, **extra})


def values(readings: list[SourceReading]) -> dict[str, float]:
    return {r.meter_id: r.value for r in readings}


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
async def test_testcase_reads_what_its_expected_json_says(case: str) -> None:
    folder = CASES / case
    raw = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    async with MeterEmulator(json.loads((folder / "meters.json").read_text(encoding="utf-8"))) as emulator:
        raw["tcp"]["port"] = emulator.port
        source = create(Config.model_validate(raw), context(expected["clock"]))
        try:
            readings = await source.read_once(timeout_s=10)
        finally:
            await source.close()
    assert [asdict(r) for r in readings] == expected["readings"]


async def test_reads_energy_from_two_meters_on_one_gateway_over_one_connection() -> None:
    meters = {A: {"00010000": 12345.67}, B: {"00010000": 7.5}}
    async with MeterEmulator(meters) as emulator:
        source = Dlt645Source(config(emulator.port, [energy_point(A), energy_point(B)]), context())
        first = await source.read_once()
        meters[A]["00010000"] = 12346.0
        second = await source.read_once()
        await source.close()
    assert values(first) == {f"M{A}": 12345.67, f"M{B}": 7.5}
    assert values(second) == {f"M{A}": 12346.0, f"M{B}": 7.5}
    assert {r.ts_ms for r in first} == {int(NOW_S * 1000)}
    assert emulator.requests == [(A, "00010000"), (B, "00010000")] * 2


async def test_an_unknown_di_is_reported_with_the_meters_error_and_the_rest_still_reads() -> None:
    voltage = {**energy(A), "di": "02010100", "meter_id": "MV", "kind": "rate", "uom": "V"}
    async with MeterEmulator({A: {"00010000": 1.0}}) as emulator:
        source = Dlt645Source(config(emulator.port, [energy_point(A, points=[voltage])]), context())
        readings = await source.read_once()
        await source.close()
    assert values(readings) == {f"M{A}": 1.0}
    assert len(source.last_errors) == 1
    assert "DI 02010100" in source.last_errors[0]
    assert "无请求数据" in source.last_errors[0]
    assert emulator.requests.count((A, "02010100")) == 1  # an error reply is an answer: no retry


async def test_a_silent_meter_times_out_after_its_retries_while_the_other_still_reads() -> None:
    second_di = {**energy(B), "di": "00020000", "meter_id": "reverse"}
    async with MeterEmulator({A: {"00010000": 3.0}}) as emulator:
        cfg = config(emulator.port, [energy_point(B, points=[second_di]), energy_point(A)], retries=2)
        source = Dlt645Source(cfg, context())
        started = time.monotonic()
        readings = await source.read_once()
        elapsed = time.monotonic() - started
        await source.close()
    assert values(readings) == {f"M{A}": 3.0}
    assert emulator.requests.count((B, "00010000")) == 3  # first attempt + 2 retries
    assert (B, "00020000") not in emulator.requests  # a silent meter's other DIs are not tried
    assert 0.9 <= elapsed < 3.0  # 3 attempts of 0.3 s
    assert source.last_errors == [
        f"meter {B} DI 00010000: no valid reply after 3 attempt(s): no reply within 0.3 s"
    ]


async def test_a_scan_that_reads_nothing_raises_source_error() -> None:
    async with MeterEmulator({}) as emulator:
        source = Dlt645Source(config(emulator.port, [energy_point(A)], retries=0), context())
        with pytest.raises(SourceError, match=f"gw: nothing read: meter {A}"):
            await source.read_once()
        await source.close()


async def test_an_unreachable_gateway_raises_source_error() -> None:
    async with MeterEmulator({}) as emulator:
        port = emulator.port
    source = Dlt645Source(config(port, [energy_point(A)], retries=1), context())
    with pytest.raises(SourceError, match="after 2 attempt"):
        await source.read_once()
    await source.close()


async def test_scan_budget_bounds_a_scan_of_silent_meters() -> None:
    async with MeterEmulator({}) as emulator:
        meters = [energy_point(f"{n:012d}") for n in range(1, 6)]
        source = Dlt645Source(config(emulator.port, meters, timeout_s=0.4, retries=3), context())
        started = time.monotonic()
        with pytest.raises(SourceError, match="scan time budget used up"):
            await source.read_once(timeout_s=1.0)
        assert time.monotonic() - started < 1.5
        await source.close()


async def test_gateway_echo_and_reply_preamble_are_skipped() -> None:
    async with MeterEmulator({A: {"00010000": 42.0}}, echo=True, preamble=4) as emulator:
        source = Dlt645Source(config(emulator.port, [energy_point(A)], preamble=0), context())
        readings = await source.read_once()
        await source.close()
    assert values(readings) == {f"M{A}": 42.0}


async def test_configured_format_overrides_the_known_one() -> None:
    power = {
        **energy(A),
        "di": "02030000",
        "length": 3,
        "decimals": 3,
        "meter_id": "P",
        "kind": "rate",
        "uom": "kW",
    }
    formats = {"02030000": DataFormat(3, 3)}
    async with MeterEmulator({A: {"00010000": 1.0, "02030000": 123.456}}, formats=formats) as emulator:
        source = Dlt645Source(config(emulator.port, [energy_point(A, points=[power])]), context())
        readings = await source.read_once()
        await source.close()
    assert values(readings)["P"] == 123.456


async def test_serial_link_reads_through_a_pyserial_url() -> None:
    async with MeterEmulator({A: {"00010000": 88.88}}) as emulator:
        raw = {"serial": {"port": f"socket://127.0.0.1:{emulator.port}"}}
        cfg = Config.model_validate({"name": "rs485", "type": "dlt645", "meters": [energy_point(A)], **raw})
        source = create(cfg, context())
        readings = await source.read_once()
        await source.close()
    assert values(readings) == {f"M{A}": 88.88}


async def test_run_emits_each_scan() -> None:
    emitted: list[list[SourceReading]] = []
    async with MeterEmulator({A: {"00010000": 5.0}}) as emulator:
        source = Dlt645Source(config(emulator.port, [energy_point(A)], interval_s=0.1), context())

        async def emit(readings: list[SourceReading]) -> None:
            emitted.append(readings)

        task = asyncio.create_task(source.run(emit))
        while len(emitted) < 2:
            await asyncio.sleep(0.02)
        task.cancel()
        await source.close()
    assert [values(scan) for scan in emitted[:2]] == [{f"M{A}": 5.0}] * 2


def test_config_wants_exactly_one_of_tcp_and_serial() -> None:
    base = {"name": "gw", "type": "dlt645", "meters": [energy_point(A)]}
    with pytest.raises(ValidationError, match="exactly one of tcp"):
        Config.model_validate(base)
    with pytest.raises(ValidationError, match="exactly one of tcp"):
        Config.model_validate({**base, "tcp": {"host": "h", "port": 1}, "serial": {"port": "/dev/ttyS0"}})
    assert SOURCE_TYPES == ("dlt645",)


def test_config_wants_a_format_for_an_unknown_di_and_12_digit_addresses() -> None:
    point = {**energy(A), "di": "04000401"}
    with pytest.raises(ValidationError, match="DI 04000401 has no known format"):
        config(1, [{"address": A, "points": [point]}])
    with pytest.raises(ValidationError, match="address"):
        config(1, [energy_point("12345")])
    assert config(1, [{"address": A, "points": [{**point, "length": 2, "decimals": 0}]}])


def test_serial_line_defaults_to_2400_8e1() -> None:
    cfg = Config.model_validate(
        {"name": "s", "type": "dlt645", "serial": {"port": "/dev/ttyUSB0"}, "meters": [energy_point(A)]}
    )
    assert cfg.serial is not None
    assert (cfg.serial.baudrate, cfg.serial.bytesize, cfg.serial.parity, cfg.serial.stopbits) == (
        2400,
        8,
        "E",
        1,
    )


def test_sample_validates_and_a_meter_unit_id_is_its_points_default() -> None:
    sample = yaml.safe_load((CASES.parent / "sample.yaml").read_text(encoding="utf-8"))
    configs = [Config.model_validate(entry) for entry in sample["sources"]]
    assert {p.unit_id for c in configs for m in c.meters for p in m.points} == {"91320500MA1XYZ0001"}
    assert configs[0].meters[1].points[1].format == DataFormat(4, 2)


def test_config_refuses_a_meter_point_read_twice() -> None:
    with pytest.raises(ValidationError, match=r"\(unit_id, meter_id\) is read twice"):
        config(1, [energy_point(A, points=[{**energy(A), "di": "00020000"}])])
