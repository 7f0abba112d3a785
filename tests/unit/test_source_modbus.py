"""The Modbus source: config validation, request planning and decoding, then reading from pymodbus's
own server (TCP and RTU framing over TCP) started per test on a free port. Register contents are
written out by hand (hex) so that every decoded value is checked against an independently computed
expectation."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import ValidationError
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.sources.base import SourceError, SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.modbus.config import Device
from collectors.sources.modbus.plan import plan
from collectors.sources.modbus.plugin import SOURCE_TYPES, Config, ModbusSource, ScanError
from collectors.sources.modbus.registers import RegisterType, decode, width
from energymon.localstack.ports import free_port

PACKAGE = Path(__file__).parents[2] / "collectors/sources/modbus"
SAMPLE = PACKAGE / "sample.yaml"


def point(meter_id: str = "M", address: int = 0, **fields: Any) -> dict[str, Any]:
    """A point config with test defaults for the reading's labels."""
    labels = {"unit_id": "U1", "meter_id": meter_id, "energy": "electricity", "uom": "kWh"}
    return {**labels, "address": address, **fields}


def tcp_config(*points: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A modbus_tcp source config with one device holding ``points``."""
    devices = [{"unit": 1, "points": list(points) or [point()]}]
    return {"name": "gw", "type": "modbus_tcp", "host": "10.0.0.5", "devices": devices, **fields}


def error_of(data: dict[str, Any]) -> str:
    """The validation error message ``data`` gets."""
    with pytest.raises(ValidationError) as caught:
        Config.model_validate(data)
    return str(caught.value)


def test_the_sample_config_validates_for_every_source_type() -> None:
    sources = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))["sources"]
    configs = [Config.model_validate(s) for s in sources]
    assert sorted(c.type for c in configs) == sorted(SOURCE_TYPES)
    assert configs[2].serial is not None and configs[2].serial.parity == "N"


def test_defaults_are_holding_u16_big_endian_unscaled_with_a_timeout_and_retries() -> None:
    config = Config.model_validate(tcp_config())
    device, p = config.devices[0], config.devices[0].points[0]
    expected = ("holding", "u16", "big", "big", 1.0, 0.0)
    assert (p.function, p.type, p.byte_order, p.word_order, p.scale, p.offset) == expected
    assert (config.port, device.timeout_s, device.retries, p.kind) == (502, 1.0, 2, "cumulative")


def test_a_value_running_past_the_last_register_is_refused_with_its_width() -> None:
    message = error_of(tcp_config(point(address=65535, type="float32")))
    assert "a float32 needs 2 registers (65535…65536), past the last address 65535" in message


def test_an_address_out_of_range_is_refused() -> None:
    assert "less than or equal to 65535" in error_of(tcp_config(point(address=65536)))


@pytest.mark.parametrize(("given", "table"), [(3, "holding"), (4, "input"), ("input", "input")])
def test_function_codes_3_and_4_name_the_register_tables(given: Any, table: str) -> None:
    assert Config.model_validate(tcp_config(point(function=given))).devices[0].points[0].function == table


def test_other_function_codes_are_refused() -> None:
    assert "function" in error_of(tcp_config(point(function=1)))


def test_tcp_types_need_a_host_and_rtu_needs_a_serial_line() -> None:
    no_host = {k: v for k, v in tcp_config().items() if k != "host"}
    assert "give `host` and `port`" in error_of(no_host)
    assert "give `host` and `port`" in error_of({**no_host, "type": "modbus_rtu_over_tcp"})
    assert "give `serial`" in error_of({**tcp_config(), "type": "modbus_rtu"})
    rtu = Config.model_validate({**no_host, "type": "modbus_rtu", "serial": {"port": "/dev/ttyUSB0"}})
    line = rtu.serial
    assert line is not None and (line.baudrate, line.parity, line.stopbits, line.bytesize) == (
        19200,
        "E",
        1,
        8,
    )
    assert rtu.gateway == "rtu /dev/ttyUSB0"


def test_unit_ids_and_meter_ids_must_be_unique_within_a_source() -> None:
    twice = tcp_config(point("M", 0), point("M", 1))
    assert "meter_id ('U1', 'M') is configured twice" in error_of(twice)
    same_unit = tcp_config()
    same_unit["devices"] = [{"unit": 1, "points": [point("A")]}, {"unit": 1, "points": [point("B")]}]
    assert "unit 1 is configured twice" in error_of(same_unit)


def test_unknown_fields_are_refused() -> None:
    assert "byteorder" in error_of(tcp_config(point(byteorder="little")))


def test_a_device_unit_id_is_the_default_of_its_points() -> None:
    data = tcp_config()
    own, inherited = {**point("A"), "unit_id": "P"}, point("B")
    del inherited["unit_id"]
    data["devices"] = [{"unit": 1, "unit_id": "D", "points": [own, inherited]}]
    points = Config.model_validate(data).devices[0].points
    assert [p.unit_id for p in points] == ["P", "D"]


def device_config(*points: dict[str, Any], max_registers: int = 125) -> Device:
    """A device of ``points``."""
    return Device.model_validate({"unit": 1, "max_registers": max_registers, "points": list(points)})


def test_points_that_touch_or_overlap_are_one_request_and_a_gap_starts_another() -> None:
    d = device_config(
        point("a", 10, type="u32"), point("b", 12), point("c", 11), point("d", 14), point("e", 0)
    )
    assert [(r.function, r.address, r.count, [p.meter_id for p in r.points]) for r in plan(d)] == [
        ("holding", 0, 1, ["e"]),
        ("holding", 10, 3, ["a", "c", "b"]),
        ("holding", 14, 1, ["d"]),
    ]


def test_holding_and_input_points_are_separate_requests() -> None:
    d = device_config(point("h", 0), point("i", 1, function="input"))
    assert [(r.function, r.address, r.count) for r in plan(d)] == [("holding", 0, 1), ("input", 1, 1)]


def test_a_block_never_exceeds_the_device_request_size() -> None:
    d = device_config(*(point(f"m{i}", 2 * i, type="float32") for i in range(5)), max_registers=4)
    assert [(r.address, r.count) for r in plan(d)] == [(0, 4), (4, 4), (8, 2)]


def test_request_values_slice_decode_and_scale_each_point() -> None:
    d = device_config(point("a", 0, type="u32", scale=0.1), point("b", 2, type="i16", offset=1))
    (request,) = plan(d)
    got = [(p.meter_id, v) for p, v in request.values([0x0001, 0x0000, 0xFFFF])]
    assert got == [("a", 6553.6), ("b", 0.0)]


def test_widths_and_a_wrong_register_count() -> None:
    assert [width(t) for t in get_args(RegisterType)] == [1, 1, 2, 2, 4, 4, 2, 4]
    with pytest.raises(ValueError, match="float32 needs 2 registers, got 1"):
        decode([0x4640], "float32", "big", "big")


# --- against pymodbus's server -----------------------------------------------------------------

CLOCK_S = 1767225600.123  # the collector's clock in these tests: 2026-01-01 00:00:00.123 UTC
TESTCASES = PACKAGE / "testcases"
CONTEXT = SourceContext("site-1", Path("."), clock=lambda: CLOCK_S)

Table = Mapping[int, list[int]]  # first address → registers


def sim_device(
    unit: int, holding: Table | None = None, input_: Table | None = None, action: Any = None
) -> SimDevice:
    """A server device with separate holding and input register tables (addresses not listed are
    invalid and answered with ILLEGAL_ADDRESS); ``action`` is pymodbus's per-request hook."""

    def blocks(table: Table | None) -> list[SimData]:
        if not table:  # pymodbus wants at least one block per table
            return [SimData(0xFFFF, values=0, datatype=DataType.REGISTERS)]
        return [
            SimData(a, values=list(regs), datatype=DataType.REGISTERS) for a, regs in sorted(table.items())
        ]

    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    return SimDevice(unit, simdata=(bits, bits, blocks(holding), blocks(input_)), action=action)


@asynccontextmanager
async def serving(
    devices: list[SimDevice], framer: FramerType = FramerType.SOCKET, requests: list[ModbusPDU] | None = None
) -> AsyncIterator[int]:
    """pymodbus's TCP server for ``devices`` on a free port (yielded); the requests it receives are
    appended to ``requests`` when given."""

    def trace(sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending and requests is not None:
            requests.append(pdu)
        return pdu

    port = free_port()
    server = ModbusTcpServer(devices, framer=framer, address=("127.0.0.1", port), trace_pdu=trace)
    await server.serve_forever(background=True)
    try:
        yield port
    finally:
        await server.shutdown()


def make_source(
    port: int, devices: list[dict[str, Any]], type_: str = "modbus_tcp", **extra: Any
) -> ModbusSource:
    """A source for the server on ``port``."""
    config = Config.model_validate(
        {
            "name": "gw",
            "type": type_,
            "host": "127.0.0.1",
            "port": port,
            "devices": devices,
            **extra,
        }
    )
    return ModbusSource(config, CONTEXT)


async def scan(port: int, devices: list[dict[str, Any]], type_: str = "modbus_tcp") -> list[SourceReading]:
    """One scan of a fresh source (closed afterwards)."""
    source = make_source(port, devices, type_)
    try:
        return await source.read_once()
    finally:
        await source.close()


def values(readings: list[SourceReading]) -> dict[str, float]:
    """meter_id → value."""
    return {r.meter_id: r.value for r in readings}


# (type, byte_order, word_order, registers as sent, value): 0x4640E6B6 is float32 12345.678 (nearest:
# 12345.677734375), 0x4132D687E4189375 float64 1234567.891, 0xF8A432EB i32 -123456789.
TYPE_CASES = [
    ("u16", "big", "big", [0xFFFE], 65534),
    ("u16", "little", "big", [0xFEFF], 65534),
    ("u16", "big", "little", [0xFFFE], 65534),  # word order means nothing for one register
    ("i16", "big", "big", [0xFFFE], -2),
    ("i16", "little", "big", [0xFEFF], -2),
    ("u32", "big", "big", [0x1234, 0x5678], 0x12345678),
    ("u32", "big", "little", [0x5678, 0x1234], 0x12345678),
    ("u32", "little", "big", [0x3412, 0x7856], 0x12345678),
    ("u32", "little", "little", [0x7856, 0x3412], 0x12345678),
    ("i32", "big", "big", [0xF8A4, 0x32EB], -123456789),
    ("i32", "big", "little", [0x32EB, 0xF8A4], -123456789),
    ("i32", "little", "big", [0xA4F8, 0xEB32], -123456789),
    ("i32", "little", "little", [0xEB32, 0xA4F8], -123456789),
    ("float32", "big", "big", [0x4640, 0xE6B6], 12345.677734375),
    ("float32", "big", "little", [0xE6B6, 0x4640], 12345.677734375),
    ("float32", "little", "big", [0x4046, 0xB6E6], 12345.677734375),
    ("float32", "little", "little", [0xB6E6, 0x4046], 12345.677734375),
    ("u64", "big", "big", [0x0001, 0x0002, 0x0003, 0x0004], 281483566841860),
    ("u64", "big", "little", [0x0004, 0x0003, 0x0002, 0x0001], 281483566841860),
    ("u64", "little", "big", [0x0100, 0x0200, 0x0300, 0x0400], 281483566841860),
    ("u64", "little", "little", [0x0400, 0x0300, 0x0200, 0x0100], 281483566841860),
    ("i64", "big", "big", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], -2),
    ("i64", "big", "little", [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF], -2),
    ("i64", "little", "big", [0xFFFF, 0xFFFF, 0xFFFF, 0xFEFF], -2),
    ("i64", "little", "little", [0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF], -2),
    ("float64", "big", "big", [0x4132, 0xD687, 0xE418, 0x9375], 1234567.891),
    ("float64", "big", "little", [0x9375, 0xE418, 0xD687, 0x4132], 1234567.891),
    ("float64", "little", "big", [0x3241, 0x87D6, 0x18E4, 0x7593], 1234567.891),
    ("float64", "little", "little", [0x7593, 0x18E4, 0x87D6, 0x3241], 1234567.891),
]


@pytest.mark.parametrize(
    ("type_", "byte_order", "word_order", "registers", "expected"),
    TYPE_CASES,
    ids=[f"{t}-bytes_{b}-words_{w}" for t, b, w, _, _ in TYPE_CASES],
)
async def test_every_type_decodes_in_every_byte_and_word_order(
    type_: str, byte_order: str, word_order: str, registers: list[int], expected: float
) -> None:
    async with serving([sim_device(1, holding={40: registers})]) as port:
        fields = {"type": type_, "byte_order": byte_order, "word_order": word_order}
        readings = await scan(port, [{"unit": 1, "points": [point("M", 40, **fields)]}])
    assert values(readings) == {"M": expected}


async def test_scale_and_offset_apply_to_the_raw_value() -> None:
    async with serving([sim_device(1, holding={0: [0x0001, 0xE240, 0xFFFE]})]) as port:
        points = [
            point("energy", 0, type="u32", scale=0.01, offset=5),  # 123456 × 0.01 + 5
            point("temp", 2, type="i16", scale=0.5, offset=100),  # -2 × 0.5 + 100
        ]
        readings = await scan(port, [{"unit": 1, "points": points}])
    assert values(readings) == pytest.approx({"energy": 1239.56, "temp": 99.0})


async def test_readings_carry_the_point_labels_and_the_collector_clock_in_ms() -> None:
    async with serving([sim_device(1, input_={7: [42]})]) as port:
        p = point("ST01", 7, function=4, energy="steam", uom="GJ", kind="interval", unit_id="U9")
        readings = await scan(port, [{"unit": 1, "points": [p]}])
    assert readings == [SourceReading("U9", "ST01", "steam", "interval", 42.0, "GJ", 1767225600123)]


async def test_holding_and_input_registers_are_read_from_their_own_tables() -> None:
    async with serving([sim_device(1, holding={0: [11]}, input_={0: [22]})]) as port:
        points = [point("h", 0, function="holding"), point("i", 0, function="input")]
        readings = await scan(port, [{"unit": 1, "points": points}])
    assert values(readings) == {"h": 11, "i": 22}


async def test_contiguous_points_are_read_in_one_request_per_block() -> None:
    requests: list[ModbusPDU] = []
    server_devices = [sim_device(1, holding={0: [1, 2, 3, 4], 100: [5]}, input_={0: [6]})]
    async with serving(server_devices, requests=requests) as port:
        points = [
            point("a", 0, type="u32"),
            point("b", 2),
            point("c", 3),
            point("d", 100),
            point("e", 0, function="input"),
        ]
        readings = await scan(port, [{"unit": 1, "points": points}])
    assert values(readings) == {"a": 0x00010002, "b": 3, "c": 4, "d": 5, "e": 6}
    asked = sorted((r.function_code, r.address, r.count) for r in requests)
    assert asked == [(3, 0, 4), (3, 100, 1), (4, 0, 1)]


async def test_two_devices_on_one_gateway_are_read_by_their_unit_ids() -> None:
    async with serving([sim_device(1, holding={0: [100]}), sim_device(2, holding={0: [200]})]) as port:
        devices = [{"unit": 1, "points": [point("m1", 0)]}, {"unit": 2, "points": [point("m2", 0)]}]
        readings = await scan(port, devices)
    assert values(readings) == {"m1": 100, "m2": 200}


async def _never_answer(calls: list[int], *_request: object) -> ExcCodes | None:
    """pymodbus device action: count the request and never let the server answer it."""
    calls.append(1)
    await asyncio.Event().wait()
    return None


async def _busy_once(calls: list[int], *_request: object) -> ExcCodes | None:
    """pymodbus device action: answer DEVICE_BUSY to the first request, normally afterwards."""
    calls.append(1)
    return ExcCodes.DEVICE_BUSY if len(calls) == 1 else None


@pytest.mark.parametrize("framer", [FramerType.SOCKET, FramerType.RTU], ids=["tcp", "rtu_over_tcp"])
async def test_a_device_that_does_not_answer_fails_after_its_retries_and_the_others_still_read(
    framer: FramerType,
) -> None:
    calls: list[int] = []
    silent = sim_device(7, holding={0: [1]}, action=partial(_never_answer, calls))
    type_ = "modbus_tcp" if framer == FramerType.SOCKET else "modbus_rtu_over_tcp"
    server_devices = [sim_device(1, holding={0: [100]}), silent, sim_device(2, holding={0: [200]})]
    async with serving(server_devices, framer) as port:
        devices = [
            {"unit": 1, "points": [point("m1", 0)]},
            {"unit": 7, "name": "dead-meter", "timeout_s": 0.2, "retries": 2, "points": [point("m7", 0)]},
            {"unit": 2, "points": [point("m2", 0)]},
        ]
        started = time.monotonic()
        with pytest.raises(ScanError) as caught:
            await scan(port, devices, type_)
        elapsed = time.monotonic() - started
    gateway = ("tcp" if framer == FramerType.SOCKET else "rtu-over-tcp") + f" 127.0.0.1:{port}"
    assert str(caught.value).startswith(f"{gateway}: unit 7 (dead-meter): holding registers 0…0: no answer")
    assert "3 attempts" in str(caught.value)
    assert len(calls) == 3  # the first request and its 2 retries reached the device
    assert 0.6 <= elapsed < 2.0
    assert values(caught.value.readings) == {"m1": 100, "m2": 200}


async def test_a_unit_id_the_gateway_does_not_serve_is_reported_and_the_others_still_read() -> None:
    async with serving([sim_device(1, holding={0: [100]})]) as port:
        devices = [{"unit": 9, "points": [point("m9", 0)]}, {"unit": 1, "points": [point("m1", 0)]}]
        failure = rf"^tcp 127\.0\.0\.1:{port}: unit 9: holding registers 0…0: "
        with pytest.raises(ScanError, match=failure) as caught:
            await scan(port, devices)
    assert values(caught.value.readings) == {"m1": 100}


async def test_an_address_the_device_does_not_have_is_not_retried() -> None:
    requests: list[ModbusPDU] = []
    async with serving([sim_device(1, holding={0: [100]})], requests=requests) as port:
        points = [point("ok", 0), point("missing", 50)]
        failure = r"holding registers 50…50: exception 0x02 \(ILLEGAL_ADDRESS\)"
        with pytest.raises(ScanError, match=failure) as caught:
            await scan(port, [{"unit": 1, "retries": 3, "points": points}])
    assert values(caught.value.readings) == {"ok": 100}
    assert [r.address for r in requests] == [0, 50]


async def test_a_busy_device_is_asked_again() -> None:
    calls: list[int] = []
    async with serving([sim_device(1, holding={0: [100]}, action=partial(_busy_once, calls))]) as port:
        readings = await scan(port, [{"unit": 1, "retries": 1, "points": [point("m", 0)]}])
    assert values(readings) == {"m": 100}
    assert len(calls) == 2


async def test_rtu_framing_over_tcp_reads_two_devices() -> None:
    server_devices = [sim_device(1, holding={0: [0x4640, 0xE6B6]}), sim_device(2, input_={5: [0x0102]})]
    async with serving(server_devices, FramerType.RTU) as port:
        devices = [
            {"unit": 1, "points": [point("f", 0, type="float32")]},
            {"unit": 2, "points": [point("u", 5, function="input", byte_order="little")]},
        ]
        readings = await scan(port, devices, "modbus_rtu_over_tcp")
    assert values(readings) == {"f": 12345.677734375, "u": 0x0201}


@contextmanager
def serial_line(loop: asyncio.AbstractEventLoop) -> Iterator[tuple[str, str]]:
    """Two pseudo-terminals joined like the two ends of a serial cable (a null modem); yields their
    device paths, which pyserial opens as serial ports."""
    (master_a, slave_a), (master_b, slave_b) = os.openpty(), os.openpty()

    def forward(src: int, dst: int) -> None:
        os.write(dst, os.read(src, 4096))

    loop.add_reader(master_a, forward, master_a, master_b)
    loop.add_reader(master_b, forward, master_b, master_a)
    try:
        yield os.ttyname(slave_a), os.ttyname(slave_b)
    finally:
        loop.remove_reader(master_a)
        loop.remove_reader(master_b)
        for fd in (master_a, slave_a, master_b, slave_b):
            os.close(fd)


async def test_rtu_over_a_serial_line_reads_through_pyserial() -> None:
    # 8N1: this machine's pseudo-terminals refuse parity settings (a real RS-485 line takes 8E1)
    line: dict[str, Any] = {"baudrate": 9600, "parity": "N", "stopbits": 1, "bytesize": 8}
    with serial_line(asyncio.get_running_loop()) as (ours, peers):
        server_devices = [sim_device(1, holding={0: [0x4640, 0xE6B6]}), sim_device(2, input_={3: [7]})]
        server = ModbusSerialServer(server_devices, port=peers, **line)
        await server.serve_forever(background=True)
        config = Config.model_validate(
            {
                "name": "bus",
                "type": "modbus_rtu",
                "serial": {"port": ours, **line},
                "devices": [
                    {"unit": 1, "points": [point("f", 0, type="float32")]},
                    {"unit": 2, "points": [point("i", 3, function="input")]},
                ],
            }
        )
        source = ModbusSource(config, CONTEXT)
        try:
            readings = await source.read_once()
        finally:
            await source.close()
            await server.shutdown()
    assert values(readings) == {"f": 12345.677734375, "i": 7}


async def test_an_unreachable_gateway_raises_a_source_error_naming_it() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(SourceError, match=rf"^tcp 127\.0\.0\.1:{port}: cannot connect"):
        await scan(port, [{"unit": 1, "points": [point("m", 0)]}])


async def test_the_source_reconnects_when_the_gateway_comes_back() -> None:
    servers = [sim_device(1, holding={0: [100]})]
    async with serving(servers) as port:
        source = make_source(port, [{"unit": 1, "timeout_s": 0.3, "retries": 0, "points": [point("m", 0)]}])
        assert values(await source.read_once()) == {"m": 100}
    try:
        with pytest.raises(SourceError):
            await source.read_once()
        server = ModbusTcpServer(servers, address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        try:
            assert values(await source.read_once()) == {"m": 100}
        finally:
            await server.shutdown()
    finally:
        await source.close()


async def test_when_no_device_answers_the_next_scan_opens_a_new_connection() -> None:
    calls: list[int] = []
    connects: list[bool] = []
    port = free_port()
    silent = sim_device(1, holding={0: [1]}, action=partial(_never_answer, calls))
    server = ModbusTcpServer([silent], address=("127.0.0.1", port), trace_connect=connects.append)
    await server.serve_forever(background=True)
    source = make_source(port, [{"unit": 1, "timeout_s": 0.1, "retries": 0, "points": [point("m", 0)]}])
    try:
        for _ in range(2):
            with pytest.raises(ScanError, match="no answer"):
                await source.read_once()
    finally:
        await source.close()
        await server.shutdown()
    assert len(calls) == 2
    assert connects.count(True) == 2


async def test_run_emits_every_scan_including_the_readings_of_a_partial_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    silent = sim_device(7, holding={0: [1]}, action=partial(_never_answer, calls))
    async with serving([sim_device(1, holding={0: [100]}), silent]) as port:
        devices = [
            {"unit": 1, "points": [point("m1", 0)]},
            {"unit": 7, "timeout_s": 0.1, "retries": 0, "points": [point("m7", 0)]},
        ]
        source = make_source(port, devices, interval_s=0.3)
        emitted: list[list[SourceReading]] = []
        two_scans = asyncio.Event()

        async def emit(readings: list[SourceReading]) -> None:
            emitted.append(readings)
            if len(emitted) == 2:
                two_scans.set()

        task = asyncio.create_task(source.run(emit))
        try:
            await asyncio.wait_for(two_scans.wait(), timeout=5)
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            await source.close()
    assert [values(r) for r in emitted[:2]] == [{"m1": 100}, {"m1": 100}]
    assert len(calls) >= 2
    assert f"source gw: tcp 127.0.0.1:{port}: unit 7: holding registers 0…0: no answer" in caplog.text


@pytest.mark.parametrize("case", sorted(p.name for p in TESTCASES.iterdir() if p.is_dir()))
async def test_testcase(case: str) -> None:
    """``testcases/<case>/config.yaml`` (``server``: what pymodbus serves, ``source``: the sources
    entry) scanned once gives ``expected.json``'s readings (ts = the test clock) and error."""
    spec = yaml.safe_load((TESTCASES / case / "config.yaml").read_text(encoding="utf-8"))
    expected = json.loads((TESTCASES / case / "expected.json").read_text(encoding="utf-8"))
    server_devices = [
        sim_device(unit, holding=tables.get("holding"), input_=tables.get("input"))
        for unit, tables in spec["server"].items()
    ]
    framer = FramerType.SOCKET if spec["source"]["type"] == "modbus_tcp" else FramerType.RTU
    async with serving(server_devices, framer) as port:
        config = Config.model_validate({**spec["source"], "host": "127.0.0.1", "port": port})
        source = ModbusSource(config, CONTEXT)
        try:
            readings, error = await source.read_once(), None
        except ScanError as exc:
            readings, error = exc.readings, str(exc)
        finally:
            await source.close()
    want = [SourceReading(**r, ts_ms=round(CLOCK_S * 1000)) for r in expected["readings"]]
    assert [replace(r, value=0.0) for r in readings] == [replace(r, value=0.0) for r in want]
    assert [r.value for r in readings] == pytest.approx([r.value for r in want], rel=1e-12)
    if expected["error"] is None:
        assert error is None
    else:
        assert error is not None and expected["error"] in error
