"""Warning levels in the sense of the NDRC barometer (能耗双控晴雨表, reference/domain.md §4.3), and
hysteresis so that a level does not flap.

Three levels per indicator, named like ``energy.alert.Severity``: ``red`` (一级预警, 形势十分严峻),
``yellow`` (二级预警) and ``green`` (三级, 进展基本顺利).

* **Totals** (``energy_total``, ``co2_total``): red when the projection is at or above
  ``thresholds.red_projected_pct`` of the cap (default 100 %); yellow when it is at or above
  ``thresholds.yellow_projected_pct`` (default 90 %): heading for the cap, early enough to act;
  else green. (The projection is the run rate over the schedule, so "ahead of schedule" and
  "projected over the cap" are one condition: the yellow band has to be set on the projection.)
* **Intensities** (``energy_intensity``, ``co2_intensity``), the implementable rule of §4.3: red when
  the intensity did not fall against the same period last year (change ≥ 0, "不降反升"); yellow when it
  fell less than the y/y decline the year's target requires; green when it fell at least that much.
  Without last year's history the change against the base year is graded the same way against the
  change the target requires from the base year. Without a target, or an output value, no level.
* **Products**: red above 限额 (the mandatory limit), yellow above 基准 (baseline), else green
  (at or below 标杆 is still green).

:class:`LevelTracker` keeps one indicator's reported level: a worse level is taken at once; a
better one only once the indicator is ``hysteresis_pct`` clear of the boundary it crosses (percent
points of the cap for totals, of the change for intensities, percent of the standard's value for
products) and has stayed so for ``hold_minutes`` of event time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from energy.alert import AlertState
from energy.quota import IntensityProgress, QuotaProgress, TotalProgress
from energy.registry import ProductInfo, WarningThresholds

Level = Literal["red", "yellow", "green"]
Basis = Literal["cap", "yoy", "base", "product"]
#: The dual-control indicators graded for every unit.
INDICATORS: tuple[str, ...] = ("energy_total", "energy_intensity", "co2_total", "co2_intensity")
#: NDRC names of the levels.
LEVEL_ZH: dict[str, str] = {"red": "一级", "yellow": "二级", "green": "三级"}
_RANK: dict[str, int] = {"green": 0, "yellow": 1, "red": 2}
_LEVELS: tuple[Level, ...] = ("green", "yellow", "red")
_INF = float("inf")


@dataclass(frozen=True)
class Assessment:
    """One indicator's level now, before hysteresis.

    ``clear_of_red`` / ``clear_of_yellow``: how far the indicator is on the good side of the
    red/yellow boundary and of the yellow/green boundary (percent points, or percent of the
    standard for products; negative: on the bad side; None: no such boundary). ``figures`` gives,
    for each level, the ``(value, threshold)`` an alert at that level shows, in ``uom``; ``basis``
    what the value is measured against (``cap``, ``yoy`` same period last year, ``base`` base year,
    ``product`` the product's standard)."""

    indicator: str
    level: Level
    clear_of_red: float | None
    clear_of_yellow: float | None
    figures: dict[str, tuple[float, float]]
    uom: str
    basis: Basis

    def clearance(self, level: Level) -> float:
        """How far the indicator is inside ``level`` or better, past every boundary on the way there
        (a missing boundary counts as +inf; red has none)."""
        red = _INF if self.clear_of_red is None else self.clear_of_red
        if level == "yellow":
            return red
        if level == "green":
            return min(red, _INF if self.clear_of_yellow is None else self.clear_of_yellow)
        return _INF


def assess_total(
    indicator: str, total: TotalProgress, schedule_pct: float, thresholds: WarningThresholds
) -> Assessment | None:
    """Level of a total (``energy_total`` / ``co2_total``); None without a cap or a projection."""
    if total.used_pct is None or total.projected_pct is None:
        return None
    red_at = thresholds.red_projected_pct
    yellow_at = min(thresholds.yellow_projected_pct, red_at)
    level: Level
    if total.projected_pct >= red_at:
        level = "red"
    elif total.projected_pct >= yellow_at:
        level = "yellow"
    else:
        level = "green"
    return Assessment(
        indicator=indicator,
        level=level,
        clear_of_red=red_at - total.projected_pct,
        clear_of_yellow=yellow_at - total.projected_pct,
        figures={
            "red": (total.projected_pct, red_at),
            "yellow": (total.projected_pct, yellow_at),
            "green": (total.projected_pct, yellow_at),
        },
        uom="%",
        basis="cap",
    )


def assess_intensity(indicator: str, intensity: IntensityProgress) -> Assessment | None:
    """Level of an intensity (``energy_intensity`` / ``co2_intensity``) by the y/y change, or, without
    last year's history, by the change against the base year; None without a target or a value."""
    if intensity.target is None or intensity.value is None:
        return None
    basis: Basis
    if intensity.change_pct is not None and intensity.required_change_pct is not None:
        basis, change, required = "yoy", intensity.change_pct, intensity.required_change_pct
    elif intensity.change_vs_base_pct is not None and intensity.required_vs_base_pct is not None:
        basis, change, required = "base", intensity.change_vs_base_pct, intensity.required_vs_base_pct
    else:
        return None
    level: Level
    if change >= 0:
        level = "red"
    elif change > required:
        level = "yellow"
    else:
        level = "green"
    return Assessment(
        indicator=indicator,
        level=level,
        clear_of_red=-change,
        clear_of_yellow=required - change,
        figures={"red": (change, 0.0), "yellow": (change, required), "green": (change, required)},
        uom="%",
        basis=basis,
    )


def assess(progress: QuotaProgress, thresholds: WarningThresholds) -> dict[str, Assessment]:
    """The dual-control indicators of :data:`INDICATORS` that can be graded, by name."""
    found = {
        "energy_total": assess_total("energy_total", progress.energy, progress.schedule_pct, thresholds),
        "energy_intensity": assess_intensity("energy_intensity", progress.energy_intensity),
        "co2_total": assess_total("co2_total", progress.co2, progress.schedule_pct, thresholds),
        "co2_intensity": assess_intensity("co2_intensity", progress.co2_intensity),
    }
    return {k: v for k, v in found.items() if v is not None}


#: kg of the standard's fuel unit per kgce: 1 kgce = 29.3076 MJ, 1 kgoe = 41.868 MJ (GB/T 2589).
_PER_KGCE: dict[str, float] = {"kgce": 1.0, "tce": 0.001, "kgoe": 29.3076 / 41.868}


def product_value(product: ProductInfo, kgce_per_uom: float | None) -> float | None:
    """``kgce_per_uom`` (from ``energy.quota.product_energy``) in the product's ``value_uom``; None when
    that is not kgce, tce or kgoe per the product's ``uom`` (e.g. kWh/t: not computable from tce)."""
    if kgce_per_uom is None:
        return None
    fuel, _, per = product.value_uom.partition("/")
    factor = _PER_KGCE.get(fuel)
    if factor is None or per != product.uom:
        return None
    return kgce_per_uom * factor


def assess_product(product: ProductInfo, kgce_per_uom: float | None) -> Assessment | None:
    """Level of a product's energy per unit: red above 限额 (``limit``), yellow above 基准
    (``baseline``), else green. Indicator ``product:<product_id>``, figures in ``value_uom``. None
    without a value (see :func:`product_value`) or without a limit and a baseline."""
    value = product_value(product, kgce_per_uom)
    limit, baseline = product.limit, product.baseline
    if value is None or (limit is None and baseline is None):
        return None
    level: Level
    if limit is not None and value > limit:
        level = "red"
    elif baseline is not None and value > baseline:
        level = "yellow"
    else:
        level = "green"

    def clear(boundary: float | None) -> float | None:
        if boundary is None:
            return None
        return (boundary - value) / (abs(boundary) or 1.0) * 100.0

    green_ref = baseline if baseline is not None else limit
    assert green_ref is not None
    return Assessment(
        indicator=f"product:{product.product_id}",
        level=level,
        clear_of_red=clear(limit),
        clear_of_yellow=clear(baseline),
        figures={
            "red": (value, limit if limit is not None else green_ref),
            "yellow": (value, baseline if baseline is not None else green_ref),
            "green": (value, green_ref),
        },
        uom=product.value_uom,
        basis="product",
    )


def worst(levels: Iterable[str]) -> Level:
    """The most severe of ``levels`` (green when there is none): the unit's overall level."""
    found: Level = "green"
    for name in levels:
        for level in _LEVELS:
            if name == level and _RANK[level] > _RANK[found]:
                found = level
    return found


@dataclass(frozen=True)
class LevelChange:
    """A change of the reported level, with the alert state it means: ``raised`` (from green),
    ``updated`` (between red and yellow) or ``resolved`` (back to green)."""

    previous: Level
    level: Level
    state: AlertState


@dataclass
class LevelTracker:
    """The reported level of one indicator of one unit, with hysteresis (see the module docstring).

    ``since`` maps a better level than ``level`` to the event time (epoch ms) from which the
    indicator has been inside it by the hysteresis margin."""

    level: Level = "green"
    since: dict[str, int] = field(default_factory=dict)

    def update(
        self, assessment: Assessment | None, ts_ms: int, thresholds: WarningThresholds
    ) -> LevelChange | None:
        """Take the assessment made with the data up to ``ts_ms``; return the change of the reported
        level, or None. ``None`` (nothing to grade) keeps the level and forgets pending recoveries."""
        if assessment is None:
            self.since.clear()
            return None
        raw = assessment.level
        if _RANK[raw] > _RANK[self.level]:
            self.since.clear()
            return self._move(raw)
        margin = thresholds.hysteresis_pct
        for level in _LEVELS:
            if _RANK[level] >= _RANK[self.level]:
                break
            if _RANK[level] >= _RANK[raw] and assessment.clearance(level) >= margin:
                self.since.setdefault(level, ts_ms)
            else:
                self.since.pop(level, None)
        hold_ms = thresholds.hold_minutes * 60_000
        for level in _LEVELS:  # best first
            started = self.since.get(level)
            if started is not None and ts_ms - started >= hold_ms:
                return self._move(level)
        return None

    def _move(self, level: Level) -> LevelChange:
        previous = self.level
        self.level = level
        self.since = {k: v for k, v in self.since.items() if _RANK[k] < _RANK[level]}
        state: AlertState = "resolved" if level == "green" else "raised" if previous == "green" else "updated"
        return LevelChange(previous, level, state)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the table store."""
        return {"level": self.level, "since": dict(self.since)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LevelTracker:
        """Inverse of :meth:`to_json` (raises ValueError for an unknown level)."""
        level = doc["level"]
        if level not in _RANK or any(k not in _RANK for k in doc["since"]):
            raise ValueError(f"unknown level in {doc!r}")
        return cls(level=level, since={str(k): int(v) for k, v in doc["since"].items()})
