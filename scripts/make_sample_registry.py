"""Write deploy/registry/simulator.yaml: the registry of the simulator's default fleet.

The fleet is ``Fleet.generate(20, 2026)`` (the simulator's defaults). Every unit gets its meters as
the simulator reads them, products with the 标杆/基准 values of ../shared/reference/domain.md §5
where its industry has one, targets for 2025 and 2026 sized from the unit's simulated consumption,
and the default warning thresholds. The units are split into three groups for the demo (see
:data:`DESIGN`): a third comfortably on track, a third close to their cap, a third heading over it.

Usage (from the repository root)::

    python scripts/make_sample_registry.py           # (re)write the file
    python scripts/make_sample_registry.py --check   # exit 1 if the file is not what this would write

The written file is loaded back with ``energymon.registry_files.load_registry`` and compared with
the records built here, so what the YAML says is exactly what gets published.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import textwrap
from datetime import date
from pathlib import Path

import yaml

from collectors.simulator import Fleet, SimMeter, SimUnit
from energy.accounting import Accountant
from energy.registry import MeterInfo, ProductInfo, UnitInfo, WarningThresholds, YearTargets
from energymon.registry_files import load_registry

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "deploy" / "registry" / "simulator.yaml"
UNITS, SEED = 20, 2026
YEARS = (2025, 2026)

#: Demo group → energy and CO₂ caps as a multiple of the unit's simulated annual figure (counted
#: meters only, i.e. without the feedstock meters).
DESIGN: dict[str, float] = {"green": 1.3, "yellow": 1.05, "red": 0.8}
GROUP_NOTE = {
    "green": "GREEN — comfortably on track",
    "yellow": "YELLOW — about on its cap: slightly ahead of schedule in day shifts and busy weeks",
    "red": "RED — heading over its cap",
}
#: 2026 intensity target: decline against 2025 (percent).
DECLINE_PCT = 2.5
#: Meters whose energy is 原料用能 (feedstock, 发改环资〔2022〕803号), not counted against the cap.
FEEDSTOCK = {"chemicals": "NG01"}
#: Products with 单位产品综合能耗 benchmark levels, per industry: (product_id, name, uom, 标杆, 基准,
#: meter codes, source note). Values and marks from ../shared/reference/domain.md §5.
PRODUCTS: dict[str, tuple[str, str, str, float, float, tuple[str, ...], str]] = {
    "steel": (
        "bf_ironmaking", "高炉工序", "t", 361.0, 435.0, ("CO01", "EL01"),
        "[S] 发改产业〔2023〕723号 as cited by a public repo: second-hand, not checked in the NDRC text",
    ),
    "cement": (
        "clinker", "水泥熟料", "t", 100.0, 117.0, ("CO01", "EL01"),
        "[U] UNVERIFIED: check the NDRC 2023 table before relying on it",
    ),
}  # fmt: skip


def group_of(index: int) -> str:
    """The demo group of the fleet's ``index``-th unit: green, yellow, red, green, …"""
    return ("green", "yellow", "red")[index % 3]


def register_max(m: SimMeter) -> float | None:
    """A register size the simulated meter never reaches before 2100 (a power of ten above 100
    years of consumption); None for interval meters."""
    if m.kind != "cumulative":
        return None
    return float(10 ** math.ceil(math.log10(m.annual_qty * 100)))


def counted(unit: SimUnit, m: SimMeter) -> bool:
    return FEEDSTOCK.get(unit.info.industry) != m.meter_id.rsplit(".", 1)[1]


def annual_tce(unit: SimUnit) -> float:
    """The unit's simulated tce per year on the counted meters (GB/T 2589 当量值)."""
    return sum(m.annual_qty * m.tce_per_uom for m in unit.meters if counted(unit, m))


def annual_co2(unit: SimUnit, year: int, accountant: Accountant) -> float:
    """The unit's simulated tCO₂ per year on the counted meters, with ``year``'s factors."""
    total = 0.0
    for m in unit.meters:
        if counted(unit, m):
            qty = accountant.quantity(m.energy, m.annual_qty, m.uom)
            day = date(year, 7, 1)
            total += accountant.tce_co2(m.energy, qty, day, unit.info.grid_region, unit.info.region)[1]
    return total


def build(fleet: Fleet) -> list[UnitInfo]:
    accountant = Accountant()
    units: list[UnitInfo] = []
    for i, u in enumerate(fleet.units):
        industry = u.info.industry
        meters = tuple(
            MeterInfo(
                meter_id=m.meter_id,
                energy=m.energy,
                kind=m.kind,
                uom=m.uom,
                register_max=register_max(m),
                role="main",
                excluded=None if counted(u, m) else "feedstock",
            )
            for m in u.meters
        )
        products: tuple[ProductInfo, ...] = ()
        if industry in PRODUCTS:
            pid, name, uom, benchmark, baseline, codes, _note = PRODUCTS[industry]
            products = (
                ProductInfo(
                    product_id=pid,
                    name=name,
                    uom=uom,
                    value_uom="kgce/t",
                    benchmark=benchmark,
                    baseline=baseline,
                    meters=tuple(f"{u.unit_id}.{c}" for c in codes),
                ),
            )
        factor = DESIGN[group_of(i)]
        cap = round(factor * annual_tce(u), -2)
        targets = []
        for year in YEARS:
            co2_cap = round(factor * annual_co2(u, year, accountant), -2)
            decline = year > YEARS[0]
            targets.append(
                YearTargets(
                    year=year,
                    energy_cap_tce=cap,
                    energy_intensity_decline_pct=DECLINE_PCT if decline else None,
                    base_year=year - 1 if decline else None,
                    co2_cap_t=co2_cap,
                )
            )
        units.append(
            u.info.model_copy(
                update={
                    "meters": meters,
                    "products": products,
                    "targets": tuple(targets),
                    "thresholds": WarningThresholds(),
                }
            )
        )
    return units


# -- YAML ----------------------------------------------------------------------------------------

_SPECIAL = set(",[]{}#:&*!|>'\"%@`")


def scalar(value: object) -> str:
    """A YAML flow scalar for ``value`` (plain when that reads back as the same string)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text and not (_SPECIAL & set(text)) and text.strip() == text and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def flow(fields: dict[str, object]) -> str:
    """``{a: 1, b: x}`` with None fields left out."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, tuple | list):
            parts.append(f"{key}: [{', '.join(scalar(v) for v in value)}]")
        else:
            parts.append(f"{key}: {scalar(value)}")
    return "{" + ", ".join(parts) + "}"


HEADER = """\
# Registry of the simulator's default fleet: Fleet.generate({units}, {seed}), i.e. `energymon up` /
# `make run` with the default ENERGYMON_SIMULATOR__UNITS and __SEED. The simulator publishes it to the
# compacted `registry` topic at start; `energymon registry load deploy/registry/simulator.yaml` does
# the same by hand. GENERATED by scripts/make_sample_registry.py: change the script, not this file.
#
# Meters: as the simulator reads them; register_max is a power of ten the register never reaches.
# Every meter is a main meter. The chemical units' natural gas (NG01) is feedstock for ammonia /
# methanol synthesis (原料用能, 发改环资〔2022〕803号): `excluded: feedstock`, so it is accounted and
# shown but not counted against the energy cap. The steel units' coal is fuel and reductant, not
# 原料用能 under 803号, so nothing of theirs is excluded.
#
# Products (单位产品综合能耗, kgce/t, domain.md §5; 限额 left out: GB 21256-2025 / GB 16780 values
# were not retrieved):
#   steel  高炉工序 标杆 361 / 基准 435
#          {steel_note}
#   cement 水泥熟料 标杆 100 / 基准 117
#          {cement_note}
#   chemicals: no product (no 标杆/基准 value found for their products); data centres: none (PUE
#   policy instead of 标杆/基准).
#
# Targets, 2025 and 2026: energy_cap_tce = factor × the unit's simulated tce per year on its counted
# meters (GB/T 2589 当量值), co2_cap_t = factor × its simulated tCO₂ per year on the same meters
# (that year's factors, the unit's grid region), rounded to 100; 2026 also asks for a
# {decline} % energy-intensity decline against base year 2025 (the simulator publishes no output
# value yet, so no intensity can be computed from it). Thresholds: the defaults.
#
# DEMO DESIGN, by the cap factor (the simulator's consumption is the same every year):
#   green  ×{green}: comfortably on track (uses ~{green_pct} % of its cap in a year)
#   yellow ×{yellow}: projected at ~{yellow_pct} % of its cap: past the yellow line (90 %), under red (100 %)
#   red    ×{red}: heading over its cap (~{red_pct} % of it in a year)
{groups}
# sim-steel-001 and sim-cement-001 are also the two heavy units that exceed the default
# hourly_ceiling (25 tce/h) in weekday day shifts; no unit sets its own hourly_tce_ceiling.
units:
"""


def render(fleet: Fleet, units: list[UnitInfo]) -> str:
    groups: dict[str, list[str]] = {g: [] for g in DESIGN}
    for i, u in enumerate(fleet.units):
        groups[group_of(i)].append(u.unit_id)
    out = [
        HEADER.format(
            units=UNITS,
            seed=SEED,
            steel_note=PRODUCTS["steel"][6],
            cement_note=PRODUCTS["cement"][6],
            decline=DECLINE_PCT,
            green=DESIGN["green"],
            yellow=DESIGN["yellow"],
            red=DESIGN["red"],
            green_pct=round(100 / DESIGN["green"]),
            red_pct=round(100 / DESIGN["red"]),
            yellow_pct=round(100 / DESIGN["yellow"]),
            groups="\n".join(
                textwrap.fill(
                    ", ".join(ids),
                    width=100,
                    initial_indent=f"#   {g + ':':8}",
                    subsequent_indent="#" + " " * 11,
                    break_on_hyphens=False,
                )
                for g, ids in groups.items()
            ),
        )
    ]
    for i, (sim, info) in enumerate(zip(fleet.units, units, strict=True)):
        group = group_of(i)
        heavy = " (heavy unit)" if sim.heavy else ""
        out.append(
            f"\n  # {info.unit_id}{heavy}: {GROUP_NOTE[group]}\n"
            f"  # caps ×{DESIGN[group]} of {annual_tce(sim):,.0f} tce/year simulated on the counted meters\n"
        )
        out.append(f"  - unit_id: {scalar(info.unit_id)}\n")
        for key in ("name", "region", "grid_region", "industry", "hourly_tce_ceiling", "electricity_basis"):
            value = getattr(info, key)
            if value is not None:
                out.append(f"    {key}: {scalar(value)}\n")
        out.append("    meters:\n")
        for m in info.meters:
            fields = m.model_dump(exclude={"multiplier", "max_per_hour"})
            note = "  # 原料用能 (feedstock)" if m.excluded else ""
            out.append(f"      - {flow(fields)}{note}\n")
        if info.products:
            out.append("    products:\n")
            for p in info.products:
                note = PRODUCTS[info.industry][6].split(":")[0]
                out.append(f"      - product_id: {scalar(p.product_id)}\n")
                out.append(f"        name: {scalar(p.name)}\n")
                out.append(f"        uom: {scalar(p.uom)}\n")
                out.append(f"        value_uom: {scalar(p.value_uom)}\n")
                out.append(f"        benchmark: {scalar(p.benchmark)}  # 标杆 {note}\n")
                out.append(f"        baseline: {scalar(p.baseline)}  # 基准 {note}\n")
                out.append(f"        meters: [{', '.join(scalar(x) for x in p.meters)}]\n")
        out.append("    targets:\n")
        for t in info.targets:
            out.append(f"      - {flow(t.model_dump())}\n")
        out.append(f"    thresholds: {flow(info.thresholds.model_dump())}\n")
    return "".join(out)


def generate() -> str:
    """The file's text, checked: loading it back gives exactly the records built here."""
    fleet = Fleet.generate(UNITS, SEED)
    units = build(fleet)
    text = render(fleet, units)
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "simulator.yaml"
        probe.write_text(text, encoding="utf-8")
        loaded = load_registry(probe)
    if loaded != units:
        raise SystemExit("the rendered YAML does not load back as the records built (bug in render)")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not up to date")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
        if current != text:
            print(f"{args.out} is out of date: run python scripts/make_sample_registry.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({text.count('- unit_id:')} units)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
