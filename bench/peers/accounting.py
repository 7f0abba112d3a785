"""The peers' job, identical to ours on the benchmark's data: a reading's counter delta (cumulative
registers) or quantity (interval meters), converted by the kernel's :class:`Accountant` into the
energy's canonical uom, tce and tCO₂ on the reading's day, becomes one `energy` point at the
reading's own time with the unit's region and industry tags — what the worker writes for readings
one minute apart. The peers keep the meters' last registers in a plain dict.

Only what the generated fleet sends is handled (epoch-ms times, no meter swaps, roll-overs or late
readings): a peer shows what a framework and its sink idiom cost, not a second accounting kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from energy.accounting import Accountant, AccountingOptions
from energy.intervals import interval_start, local_day


@dataclass(frozen=True, slots=True)
class PeerPoint:
    """One `energy` point: tags, time (epoch ms), and quantities (canonical uom, tce, tCO₂)."""

    unit_id: str
    meter_id: str
    energy: str
    region: str
    industry: str
    ts_ms: int
    qty: float
    tce: float
    co2_t: float


@dataclass(frozen=True)
class UnitTags:
    """What a peer knows of a unit from the registry: province, grid region, industry."""

    region: str
    grid_region: str
    industry: str


class PeerAccounting:
    """Readings messages (decoded JSON) in, `energy` points out; state: each meter's last register."""

    def __init__(self, units: Mapping[str, UnitTags], options: AccountingOptions | None = None) -> None:
        self.units = dict(units)
        self.accountant = Accountant(options=options or AccountingOptions())
        self._last: dict[tuple[str, str], float] = {}

    def apply(self, doc: Mapping[str, Any]) -> list[PeerPoint]:
        """The points of one readings message (none for anything that is not one)."""
        readings = doc.get("readings")
        if not readings:
            return []
        unit_id = doc["unit_id"]
        tags = self.units[unit_id]
        accountant = self.accountant
        points = []
        for r in readings:
            energy, ts = r["energy"], r["ts"]
            qty = accountant.quantity(energy, r["value"], r["uom"])
            if r["kind"] == "cumulative":
                key = (unit_id, r["meter_id"])
                previous = self._last.get(key)
                self._last[key] = qty
                if previous is None:  # a meter's first register only sets its baseline
                    continue
                qty -= previous
            tce, co2 = accountant.tce_co2(
                energy, qty, local_day(interval_start(ts)), tags.grid_region, tags.region
            )
            points.append(
                PeerPoint(unit_id, r["meter_id"], energy, tags.region, tags.industry, ts, qty, tce, co2)
            )
        return points


_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


def line(p: PeerPoint) -> str:
    """The point as a hand-built line of InfluxDB line protocol (ms precision)."""
    tags = (
        f"energy={p.energy.translate(_TAG_ESCAPES)},industry={p.industry.translate(_TAG_ESCAPES)},"
        f"meter_id={p.meter_id.translate(_TAG_ESCAPES)},region={p.region.translate(_TAG_ESCAPES)},"
        f"unit_id={p.unit_id.translate(_TAG_ESCAPES)}"
    )
    return f"energy,{tags} qty={p.qty!r},tce={p.tce!r},co2_t={p.co2_t!r},estimated=false {p.ts_ms}"
