"""Reference data about units, published keyed by unit_id to the compacted `registry` topic.

Who a unit is and where it sits (province, grid region, industry), how its energy is accounted
(electricity basis, site-measured coefficients), what its meters can plausibly do (register maximum,
largest rate), and its ceiling for the first alert rule. Products and quotas come later; readers
ignore fields they do not know, so later versions can add them without breaking running workers.
"""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

#: The seven regional grids of the MEE/NBS electricity CO₂ factor series (reference/domain.md §2.1).
GRID_REGIONS: tuple[str, ...] = ("华北", "东北", "华东", "华中", "西北", "南方", "西南")


class MeterInfo(BaseModel):
    """What is known of one meter, for the counter rules.

    ``register_max`` is the value at which a cumulative register rolls over to zero, in the meter's
    reporting uom (``uom``); ``max_per_hour`` the largest plausible consumption per hour, in the same
    uom (a delta above it is rejected as ``implausible_rate``). Both None: no such check.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    meter_id: str = Field(min_length=1, max_length=128)
    uom: str | None = Field(None, max_length=16)
    register_max: float | None = Field(None, gt=0, allow_inf_nan=False)
    max_per_hour: float | None = Field(None, gt=0, allow_inf_nan=False)


class CoefficientOverride(BaseModel):
    """A site's measured 折标准煤系数 for one energy (kgce per canonical uom), e.g. natural gas from
    its measured heating value or steam from its enthalpy, with where the figure comes from."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    energy: str = Field(min_length=1, max_length=64)
    kgce_per_uom: float = Field(gt=0, allow_inf_nan=False)
    source: str = Field(min_length=1, max_length=256)


class UnitInfo(BaseModel):
    """One key energy-using unit (重点用能单位).

    ``region`` is the province in Chinese (e.g. ``江苏``), ``grid_region`` one of :data:`GRID_REGIONS`,
    ``industry`` a snake_case English code (``steel``, ``cement``, ``chemicals``, ``data_centre``, …).
    ``hourly_tce_ceiling`` is the unit's own ceiling for the `hourly_ceiling` alert rule in tce per
    hour; ``None`` means the global default (``AlertSettings.hourly_tce_ceiling``).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    unit_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=256)
    region: str = Field(min_length=1, max_length=32)
    grid_region: str = Field(min_length=1, max_length=32)
    industry: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    hourly_tce_ceiling: float | None = Field(None, gt=0, allow_inf_nan=False)
    electricity_basis: Literal["equivalent", "equal_value"] | None = Field(
        None, description="当量值 or 等价值 for this unit; None: the global setting."
    )
    coefficient_overrides: tuple[CoefficientOverride, ...] = ()
    meters: tuple[MeterInfo, ...] = ()

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
