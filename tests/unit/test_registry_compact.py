"""A worker keeps every meter of its units' registry records, so ``MeterInfo`` shares the set of the
fields given among the meters that give the same fields and interns its energy and uom: the models
must behave as before — equal, dumped, copied and hashed alike — whatever the fields given."""

from __future__ import annotations

import copy

from energy.registry import MeterInfo, UnitInfo


def unit(*meters: dict[str, object]) -> UnitInfo:
    return UnitInfo.model_validate(
        {
            "unit_id": "U1",
            "name": "Works",
            "region": "江苏",
            "grid_region": "华东",
            "industry": "steel",
            "meters": list(meters),
        }
    )


def test_meters_share_the_fields_given_and_behave_as_before() -> None:
    full = {"energy": "electricity", "kind": "cumulative", "uom": "kWh", "register_max": 1e6}
    info = unit({"meter_id": "M1", **full}, {"meter_id": "M2", **full}, {"meter_id": "M3"})
    m1, m2, m3 = info.meters
    assert m1.__pydantic_fields_set__ is m2.__pydantic_fields_set__
    assert m3.__pydantic_fields_set__ == {"meter_id"}
    assert m1.energy is m2.energy and m1.uom is m2.uom
    assert m1.model_dump(exclude_unset=True) == {"meter_id": "M1", **full}
    assert m3.model_dump(exclude_unset=True) == {"meter_id": "M3"}
    assert UnitInfo.from_json(info.to_json()) == info
    assert hash(m1) == hash(MeterInfo(meter_id="M1", **full))  # type: ignore[arg-type]
    changed = m1.model_copy(update={"multiplier": 2.0})
    assert changed.multiplier == 2.0 and changed.model_dump(exclude_unset=True)["multiplier"] == 2.0
    assert "multiplier" not in m2.model_dump(exclude_unset=True)  # the shared set is not changed
    assert copy.deepcopy(m1) == m1 and copy.copy(m2) == m2
