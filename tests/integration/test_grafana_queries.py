"""Every query of every committed dashboard, run against a real InfluxDB that the real pipeline filled.

Three weeks of January 2025 for three units, four scans a day, through a real tansu broker into a
real Faust worker and a real influxd: ``F`` (江苏, steel) has everything a dashboard shows — two
energy types, an electricity register that rolls over, an electricity sub-meter, energy and CO₂ caps
it will overshoot (red), an intensity target with output value, a product with 标杆/基准/限额, a
reading too late and one with a unit of measure nobody knows — ``Y`` (江苏, cement) heads for 95 % of
its cap (yellow) and ``G`` (浙江, steel) for half of it (green). Grafana's macros are
substituted as Grafana does with "All" chosen: ``$region``/``$industry`` → ``.*`` (their custom all
value), a multi-valued ``$unit`` → ``(F|G|Y)``; the unit-detail dashboard's single ``$unit`` → ``F``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest

from energy import topics
from energy.output import output_message
from energy.periods import local_midnight_ms
from energy.registry import MeterInfo, ProductInfo, UnitInfo, YearTargets
from energymon.localstack.influxdb import query
from grafana.generate import DASHBOARDS
from grafana.queries import queries
from tests.integration.pipeline_helpers import PipelineRun

pytestmark = pytest.mark.integration

YEAR, DAYS, SCANS = 2025, 21, 4
DAY_KWH, DAY_M3 = 100_000.0, 2_000.0
DAY_TCE = DAY_KWH * 0.1229e-3 + DAY_M3 * 1.33e-3  # roughly: caps only need the right order
REGISTER_MAX = 1_000_000.0
TIME_FILTER = "time >= '2024-12-31T00:00:00Z' AND time <= '2025-02-01T00:00:00Z'"


def _unit(
    unit_id: str,
    region: str,
    industry: str,
    cap_share: float,
    targets: dict[str, float] | None = None,
    sub_meters: tuple[MeterInfo, ...] = (),
    **extra: object,
) -> UnitInfo:
    meters = [
        MeterInfo(
            meter_id="E1", energy="electricity", kind="cumulative", uom="kWh", register_max=REGISTER_MAX
        ),
        MeterInfo(meter_id="G1", energy="natural_gas", kind="cumulative", uom="m³"),
        *sub_meters,
    ]
    year = {"year": YEAR, "energy_cap_tce": cap_share * 365 * DAY_TCE, **(targets or {})}
    return UnitInfo.model_validate(
        {
            "unit_id": unit_id,
            "name": f"看板单位{unit_id}",
            "region": region,
            "grid_region": "华东",
            "industry": industry,
            "meters": meters,
            "targets": [YearTargets.model_validate(year)],
            **extra,
        }
    )


UNITS = [
    _unit(
        "F",
        "江苏",
        "steel",
        0.5,
        targets={
            "co2_cap_t": 10.0 * 365,
            "energy_intensity_target": 0.1,
            "base_year": YEAR - 1,
            "base_energy_intensity": 0.1,
        },
        sub_meters=(
            MeterInfo(meter_id="E1s", energy="electricity", kind="cumulative", uom="kWh", role="sub"),
        ),
        products=[
            ProductInfo(
                product_id="billet",
                name="钢坯",
                uom="t",
                value_uom="kgce/t",
                benchmark=100.0,
                baseline=117.0,
                limit=125.0,
                meters=["E1"],
            )
        ],
    ),
    _unit("Y", "江苏", "cement", 1 / 0.95),
    _unit("G", "浙江", "steel", 2.0),
]


#: F's refused readings on 10 January: one too late (late and rejected), one in an unknown uom.
LATE, REJECTED = 1, 2
LATE_DAY = 9


def refused(ts: int, seq: int) -> list[tuple[str, bytes, str]]:
    """F's readings refused at ``ts`` (the time of a scan): one 3 h older, one in furlongs."""
    late = {"meter_id": "G1", "energy": "natural_gas", "kind": "cumulative", "value": 1.0, "uom": "m³"}
    odd = {**late, "uom": "furlong"}
    docs = [
        {
            "v": 1,
            "unit_id": "F",
            "source": "grafana-test",
            "seq": seq,
            "readings": [{**late, "ts": ts - 3 * 3600_000}],
        },
        {"v": 1, "unit_id": "F", "source": "grafana-test", "seq": seq + 1, "readings": [{**odd, "ts": ts}]},
    ]
    return [(topics.READINGS, orjson.dumps(doc), "F") for doc in docs]


def messages() -> list[tuple[str, bytes, str]]:
    """(topic, value, unit): every unit's registers ``SCANS`` times a day (F's sub-meter E1s too), F's
    output at each midnight and its refused readings (:func:`refused`)."""
    out: list[tuple[str, bytes, str]] = []
    registers = {"E1": REGISTER_MAX - 30_000.0, "G1": 0.0, "E1s": 0.0}
    step = 24 * 3600 * 1000 // SCANS
    seq = 0
    for n in range(DAYS):
        midnight = local_midnight_ms(date(YEAR, 1, 1) + timedelta(days=n))
        for scan in range(SCANS):
            ts = midnight + scan * step
            seq += 1
            e1 = registers["E1"] % REGISTER_MAX  # F's and the others' E1 roll over on day 1
            for u in UNITS:
                readings = [
                    {
                        "meter_id": "E1",
                        "energy": "electricity",
                        "kind": "cumulative",
                        "value": e1,
                        "uom": "kWh",
                        "ts": ts,
                    },
                    {
                        "meter_id": "G1",
                        "energy": "natural_gas",
                        "kind": "cumulative",
                        "value": registers["G1"],
                        "uom": "m³",
                        "ts": ts,
                    },
                ]
                if u.unit_id == "F":
                    readings.append({**readings[0], "meter_id": "E1s", "value": registers["E1s"]})
                doc = {
                    "v": 1,
                    "unit_id": u.unit_id,
                    "source": "grafana-test",
                    "seq": seq,
                    "readings": readings,
                }
                out.append((topics.READINGS, orjson.dumps(doc), u.unit_id))
            if scan == 0 and n > 0:
                items = [
                    {"ts": midnight, "value_10k_yuan": 100.0},
                    {"ts": midnight, "product_id": "billet", "quantity": 100.0},
                ]
                out.append((topics.OUTPUT, output_message("F", "erp", seq, items), "F"))
            if scan == 2 and n == LATE_DAY:
                out += refused(ts, 100_000)
            registers["E1"] += DAY_KWH / SCANS
            registers["E1s"] += DAY_KWH / 2 / SCANS
            registers["G1"] += DAY_M3 / SCANS
    return out


@pytest.fixture(scope="module")
def filled(influx: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run the pipeline once over :func:`messages`; yields the database it wrote."""
    state = tmp_path_factory.mktemp("grafana-queries")
    with PipelineRun(influx, state, UNITS, messages(), "grafana", ENERGYMON_ALERTS__LANG="en") as run:
        yield run.database


def substitute(query_text: str, single_unit: bool, region: str = ".*", industry: str = ".*") -> str:
    """The query as Grafana sends it with "All" chosen (see the module docstring), or the region and
    industry given."""
    units = sorted(u.unit_id for u in UNITS)
    return (
        query_text.replace("$timeFilter", TIME_FILTER)
        .replace("$__interval", "1h")
        .replace("/^$region$/", f"/^{region}$/")
        .replace("/^$industry$/", f"/^{industry}$/")
        .replace("/^$unit$/", f"/^({'|'.join(units)})$/")
        .replace("'$unit'", "'F'" if single_unit else "'$unit'")
    )


BOARD_FILES = sorted(DASHBOARDS.glob("*.json"))


@pytest.mark.parametrize("path", BOARD_FILES, ids=[p.stem for p in BOARD_FILES])
def test_every_query_of_the_dashboard_returns_a_series(filled: str, influx: str, path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    single = any(v["name"] == "unit" and not v.get("multi") for v in doc["templating"]["list"])
    found = list(queries(doc))
    assert found, f"{path.name} has no queries"
    empty = []
    for where, text in found:
        sql = substitute(text, single)
        assert "$" not in sql.replace("$/", "").replace("$'", ""), f"{where}: macro left in {sql}"
        if not query(influx, filled, sql):
            empty.append(f"{where}: {sql}")
    assert not empty, "queries without a series:\n" + "\n".join(empty)


def one_row(influx: str, database: str, fields: str, measurement: str, where: str) -> list[float]:
    """The values of the one row of ``SELECT fields FROM measurement WHERE where`` in January."""
    [series] = query(
        influx, database, f'SELECT {fields} FROM "{measurement}" WHERE {where} AND {TIME_FILTER}'
    )
    [row] = series["values"]
    return [float(v) for v in row[1:]]


def test_the_dashboards_new_fields_hold_what_the_pipeline_counted(filled: str, influx: str) -> None:
    """The figures behind the role filter, the product standards and the refusals, exactly."""
    (main, pieces), (sub, _) = (
        one_row(
            influx, filled, 'sum("tce"), count("tce")', "energy", f"\"unit_id\" = 'F' AND \"role\" = '{r}'"
        )
        for r in ("main", "sub")
    )
    # the unit's year to date (the monitor's total, all of it in January) counts the main meters only,
    # each piece rounded to millionths of a tce
    [ytd] = one_row(influx, filled, 'last("ytd_tce")', "unit_status", "\"unit_id\" = 'F'")
    assert sub > 0 and abs(main - ytd) <= pieces * 0.5e-6
    standards = (
        'last("product_billet_benchmark"), last("product_billet_baseline"), last("product_billet_limit")'
    )
    assert one_row(influx, filled, standards, "unit_status", "\"unit_id\" = 'F'") == [100.0, 117.0, 125.0]
    refusals = one_row(
        influx, filled, 'sum("late"), sum("rejected"), count("rejected")', "data_quality", "\"unit_id\" = 'F'"
    )
    assert refusals == [LATE, REJECTED, DAYS]  # one point a day, the refusals on theirs
    day = local_midnight_ms(date(YEAR, 1, 1) + timedelta(days=LATE_DAY))
    [series] = query(
        influx,
        filled,
        f'SELECT "late", "rejected" FROM "data_quality" WHERE "unit_id" = \'F\' AND time = {day}ms',
    )
    assert series["values"][0][1:] == [LATE, REJECTED]


@pytest.mark.parametrize(
    ("region", "industry", "allowed"),
    [
        (".*", ".*", {"F", "G", "Y"}),
        ("江苏", ".*", {"F", "Y"}),
        ("浙江", ".*", {"G"}),
        (".*", "cement", {"Y"}),
    ],
)
def test_region_and_industry_filter_the_alert_history(
    filled: str, influx: str, region: str, industry: str, allowed: set[str]
) -> None:
    [text] = [
        q
        for q in queries(json.loads((DASHBOARDS / "energymon-alerts.json").read_text("utf-8")))
        if "History" in q[0]
    ]
    rows = [
        row
        for s in query(influx, filled, substitute(text[1], False, region, industry))
        for row in s["values"]
    ]
    units = {row[1] for row in rows}  # columns: time, unit_id, …
    assert units <= allowed and ("F" in units) == ("F" in allowed)  # F's red alerts are there when chosen
