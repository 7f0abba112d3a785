"""Which read requests one device's scan needs: its points merged into contiguous blocks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collectors.sources.modbus.config import Device, Function, RegisterPoint
from collectors.sources.modbus.registers import decode


@dataclass(frozen=True, slots=True)
class Request:
    """One read of ``count`` registers from ``address`` of the ``function`` table, and the points
    whose registers lie inside it."""

    function: Function
    address: int
    count: int
    points: tuple[RegisterPoint, ...]

    def values(self, registers: Sequence[int]) -> list[tuple[RegisterPoint, float]]:
        """Each point's value (raw × scale + offset, in the point's uom) from this request's answer."""
        out = []
        for p in self.points:
            start = p.address - self.address
            raw = decode(registers[start : p.end - self.address], p.type, p.byte_order, p.word_order)
            out.append((p, raw * p.scale + p.offset))
        return out


def plan(device: Device) -> list[Request]:
    """``device``'s points as read requests: points of one table whose registers touch or overlap
    are read together while the block stays within ``device.max_registers``; holding before input,
    each by address."""
    requests: list[Request] = []
    for function in ("holding", "input"):
        points = sorted((p for p in device.points if p.function == function), key=lambda p: p.address)
        block: list[RegisterPoint] = []
        start = end = 0
        for p in points:
            if block and (p.address > end or max(end, p.end) - start > device.max_registers):
                requests.append(Request(function, start, end - start, tuple(block)))
                block = []
            if not block:
                start, end = p.address, p.end
            block.append(p)
            end = max(end, p.end)
        if block:
            requests.append(Request(function, start, end - start, tuple(block)))
    return requests
