"""Reference data about units, published keyed by unit_id to the compacted `registry` topic.

Who a unit is and where it sits (province, grid region, industry), how its energy is accounted
(electricity basis, site-measured coefficients), what its meters can plausibly do (register maximum,
largest rate), and its ceiling for the first alert rule. Products and quotas come later; readers
ignore fields they do not know, so later versions can add them without breaking running workers.
"""

from __future__ import annotations

import sys
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from energy.schema import MAX_VALUE, IdText

#: The seven regional grids of the MEE/NBS electricity CO₂ factor series (reference/domain.md §2.1).
GRID_REGIONS: tuple[str, ...] = ("华北", "东北", "华东", "华中", "西北", "南方", "西南")
#: Largest CT × PT ratio a meter's ``multiplier`` may have (a 500 kV / 100 V PT with a 4000/1 CT is 2·10⁷).
MAX_MULTIPLIER = 1e8


class MeterInfo(BaseModel):
    """One meter of a unit.

    ``multiplier`` scales what the meter reports (CT/PT ratio) into ``uom``; ``register_max`` is the
    value at which a cumulative register rolls over to zero and ``max_per_hour`` the largest
    plausible consumption per hour, both in ``uom`` (a delta above it is rejected as
    ``implausible_rate``; None: no such check). ``role`` is ``main`` (counts in the unit's total),
    ``sub`` (a sub-meter below a main one, shown but not added again) or ``monthly`` (a whole-month
    statistic checked against the sum of the days, ``energy.operational``; counted in no total).
    ``excluded`` takes a main meter's energy out of the total under dual control: ``feedstock``
    (原料用能, 发改环资〔2022〕803号) or ``renewable`` (新增可再生能源) — still accounted and shown,
    not counted against the cap.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    meter_id: IdText = Field(min_length=1, max_length=128)
    energy: IdText | None = Field(None, max_length=64)
    kind: Literal["cumulative", "interval", "rate"] | None = None
    uom: IdText | None = Field(None, max_length=16)
    multiplier: float = Field(1.0, gt=0, le=MAX_MULTIPLIER, allow_inf_nan=False)
    register_max: float | None = Field(None, gt=0, le=MAX_VALUE, allow_inf_nan=False)
    max_per_hour: float | None = Field(None, gt=0, le=MAX_VALUE, allow_inf_nan=False)
    role: Literal["main", "sub", "monthly"] = "main"
    excluded: Literal["feedstock", "renewable"] | None = None

    @model_validator(mode="after")
    def _compact(self) -> MeterInfo:
        """A worker keeps every meter of its units' records: the set of the fields given (pydantic's
        ``__pydantic_fields_set__``, ~730 bytes for all nine) is shared by the meters that give the
        same fields, and the energy and uom strings are interned — ~0.8 kB a meter less, the same
        model (pydantic copies the set before changing a copy's, and never changes a frozen model's)."""
        given = self.__pydantic_fields_set__
        shared = _FIELDS_GIVEN.get(frozenset(given))
        if shared is None:
            shared = _FIELDS_GIVEN[frozenset(given)] = set(given)
        object.__setattr__(self, "__pydantic_fields_set__", shared)
        values = self.__dict__
        for name in ("energy", "uom"):
            if values[name] is not None:
                values[name] = sys.intern(values[name])
        return self


#: The sets of fields given that the meters share (at most one per subset of MeterInfo's nine fields).
_FIELDS_GIVEN: dict[frozenset[str], set[str]] = {}


class ProductInfo(BaseModel):
    """A product with an energy standard: 单位产品综合能耗 against 标杆 (benchmark), 基准 (baseline)
    and 限额 (the mandatory limit), all in ``value_uom`` (e.g. kgce/t). ``uom`` is the product's
    output unit (t, m², 重量箱); ``meters`` the meters whose energy goes into it (empty: the unit's
    whole counted total)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    product_id: IdText = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    uom: IdText = Field(min_length=1, max_length=16)
    value_uom: str = Field("kgce/t", max_length=16)
    benchmark: float | None = Field(None, allow_inf_nan=False)
    baseline: float | None = Field(None, allow_inf_nan=False)
    limit: float | None = Field(None, allow_inf_nan=False)
    meters: tuple[str, ...] = ()


class YearTargets(BaseModel):
    """A unit's dual-control targets for one calendar year.

    Totals are caps for the whole year: ``energy_cap_tce`` (tce) and ``co2_cap_t`` (tCO₂).
    Intensity (per 万元 of output value) is either an absolute target
    (``energy_intensity_target`` tce/万元, ``co2_intensity_target`` tCO₂/万元) or a decline against
    ``base_year`` (``*_decline_pct``, percent; the base year's intensity from history, or
    ``base_energy_intensity`` / ``base_co2_intensity`` when there is none).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    year: int = Field(ge=2000, le=2100)
    energy_cap_tce: float | None = Field(None, gt=0, allow_inf_nan=False)
    energy_intensity_target: float | None = Field(None, gt=0, allow_inf_nan=False)
    energy_intensity_decline_pct: float | None = Field(None, allow_inf_nan=False)
    co2_cap_t: float | None = Field(None, gt=0, allow_inf_nan=False)
    co2_intensity_target: float | None = Field(None, gt=0, allow_inf_nan=False)
    co2_intensity_decline_pct: float | None = Field(None, allow_inf_nan=False)
    base_year: int | None = Field(None, ge=2000, le=2100)
    base_energy_intensity: float | None = Field(None, gt=0, allow_inf_nan=False)
    base_co2_intensity: float | None = Field(None, gt=0, allow_inf_nan=False)


class WarningThresholds(BaseModel):
    """When levels change (percent points unless said otherwise).

    A total is red when projected at or above ``red_projected_pct`` of its cap and yellow when
    projected at or above ``yellow_projected_pct`` (heading for trouble early enough to act: with a
    run-rate projection, "ahead of the schedule" and "projected over the cap" are the same thing, so
    the yellow band is set on the projection). A level only drops
    back once the indicator is ``hysteresis_pct`` clear of the boundary, and only after it has held
    for ``hold_minutes``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    red_projected_pct: float = Field(100.0, gt=0, allow_inf_nan=False)
    yellow_projected_pct: float = Field(90.0, gt=0, allow_inf_nan=False)
    hysteresis_pct: float = Field(2.0, ge=0, allow_inf_nan=False)
    hold_minutes: int = Field(60, ge=0)


class CoefficientOverride(BaseModel):
    """A site's measured 折标准煤系数 for one energy (kgce per canonical uom), e.g. natural gas from
    its measured heating value or steam from its enthalpy, with where the figure comes from."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    energy: IdText = Field(min_length=1, max_length=64)
    kgce_per_uom: float = Field(gt=0, allow_inf_nan=False)
    source: str = Field(min_length=1, max_length=256)


#: Alert severities from mildest to worst (``energy.alert.Severity``), for "at or above" comparisons.
SEVERITY_ORDER: tuple[str, ...] = ("green", "yellow", "orange", "red")


class ContactInfo(BaseModel):
    """Someone who hears about alerts: ``name`` (for people reading logs and lists), ``channel`` (the
    name of a channel in the alert routing file), ``recipient`` (that channel's address for them, e.g.
    an e-mail address; None for a group robot or webhook, whose URL is the channel), ``min_severity``
    (alerts at or above it: ``yellow`` takes yellow, orange and red; ``red`` only red; the resolved
    notice of an alert they were told about always follows) and ``lang`` (template language)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(min_length=1, max_length=128)
    channel: str = Field(min_length=1, max_length=64)
    recipient: str | None = Field(None, min_length=1, max_length=256)
    min_severity: Literal["yellow", "red"] = "yellow"
    lang: Literal["zh", "en", "both"] = "zh"


class UnitInfo(BaseModel):
    """One key energy-using unit (重点用能单位).

    ``region`` is the province in Chinese (e.g. ``江苏``), ``grid_region`` one of :data:`GRID_REGIONS`,
    ``industry`` a snake_case English code (``steel``, ``cement``, ``chemicals``, ``data_centre``, …).
    ``hourly_tce_ceiling`` is the unit's own ceiling for the `hourly_ceiling` alert rule in tce per
    hour; ``None`` means the global default (``AlertSettings.hourly_tce_ceiling``). ``contacts`` are
    the unit's own people and systems that hear about its alerts (``alerts/routing.py``).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    unit_id: IdText = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=256)
    region: IdText = Field(min_length=1, max_length=32)
    grid_region: IdText = Field(min_length=1, max_length=32)
    industry: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    hourly_tce_ceiling: float | None = Field(None, gt=0, allow_inf_nan=False)
    electricity_basis: Literal["equivalent", "equal_value"] | None = Field(
        None, description="当量值 or 等价值 for this unit; None: the global setting."
    )
    coefficient_overrides: tuple[CoefficientOverride, ...] = ()
    meters: tuple[MeterInfo, ...] = ()
    products: tuple[ProductInfo, ...] = ()
    targets: tuple[YearTargets, ...] = ()
    thresholds: WarningThresholds = WarningThresholds()
    contacts: tuple[ContactInfo, ...] = ()

    def targets_for(self, year: int) -> YearTargets | None:
        """The unit's targets for ``year``, if any."""
        return next((t for t in self.targets if t.year == year), None)

    def meter(self, meter_id: str) -> MeterInfo | None:
        """The meter's registry entry, if it has one."""
        return next((m for m in self.meters if m.meter_id == meter_id), None)

    def to_json(self) -> bytes:
        """The record written to the `registry` topic (UTF-8 JSON, Chinese kept as is)."""
        return orjson.dumps(self.model_dump())

    @classmethod
    def from_json(cls, raw: bytes | str) -> UnitInfo:
        """Parse a record of the `registry` topic (raises pydantic.ValidationError or ValueError)."""
        return cls.model_validate(orjson.loads(raw))
