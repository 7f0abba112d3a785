"""A whole year in compressed time through the real pipeline: four units, one electricity meter
each, read once a day at 00:00 China time, with output reports, through a real tansu broker into a
real Faust worker and a real InfluxDB. The level transitions on the `alerts` topic and the last
`unit_status` of each unit are what the monitoring centre would have seen.

* ``G`` stays on track (cap 1.3 × its steady use): never an alert, green at the end.
* ``O`` overshoots: steady use D a day for 120 days, 1.6 D for the next 120, then 0.3 D; cap
  1.15 × 365 D. By hand (run-rate projection ytd × 365 / days elapsed against the cap, yellow from
  90 %, red from 100 %, back only 2 points clear): yellow from day ~128, red from day ~160 — while
  its year to date (at most 312 D) is far under the cap (419.75 D) — back to yellow after day ~290
  and green after day ~337.
* ``I`` uses 10 % more energy than last year for the same output value: its intensity rises year
  on year (change +10 % ≥ 0), red; last year is in the data, so the grade is y/y.
* ``P`` makes clinker at 130 kgce/t against a 限额 of 125: product red.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from energy import topics
from energy.alert import Alert
from energy.output import output_message
from energy.periods import local_midnight_ms
from energy.registry import MeterInfo, ProductInfo, UnitInfo, YearTargets
from energymon.localstack.influxdb import query
from tests.integration.pipeline_helpers import PipelineRun

pytestmark = pytest.mark.integration

YEAR = 2025
DAY_KWH = 100_000.0
TCE_PER_KWH = 0.1229e-3  # GB/T 2589 当量值, written out here so the test checks the table
DAY_TCE = DAY_KWH * TCE_PER_KWH
CAP_O = 1.15 * 365 * DAY_TCE
VALUE_PER_DAY = 50.0  # 万元
CLINKER_T_PER_DAY = DAY_TCE * 1000 / 130.0  # 130 kgce/t


def unit(unit_id: str, **extra: object) -> UnitInfo:
    return UnitInfo.model_validate(
        {
            "unit_id": unit_id,
            "name": f"测试单位{unit_id}",
            "region": "江苏",
            "grid_region": "华东",
            "industry": "cement",
            "meters": [MeterInfo(meter_id="E1", energy="electricity", kind="cumulative", uom="kWh")],
            **extra,
        }
    )


UNITS = [
    unit("G", targets=[YearTargets(year=YEAR, energy_cap_tce=1.3 * 365 * DAY_TCE)]),
    unit("O", targets=[YearTargets(year=YEAR, energy_cap_tce=CAP_O)]),
    unit("I", targets=[YearTargets(year=YEAR, energy_intensity_decline_pct=3.0)]),
    unit(
        "P",
        products=[
            ProductInfo(
                product_id="clinker",
                name="熟料",
                uom="t",
                value_uom="kgce/t",
                benchmark=100.0,
                baseline=117.0,
                limit=125.0,
            )
        ],
    ),
]


def daily_use(unit_id: str, day: date) -> float:
    """kWh used on ``day``."""
    n = (day - date(YEAR, 1, 1)).days  # day of the year, 0-based; negative last year
    if unit_id == "O":
        return DAY_KWH * (1.0 if n < 120 else 1.6 if n < 240 else 0.3)
    if unit_id == "I" and n >= 0:
        return DAY_KWH * 1.1
    return DAY_KWH


def messages() -> list[tuple[str, bytes, str]]:
    """(topic, value, unit) in time order: each unit's register at every 00:00, and the day's output
    reported at its end. ``I`` starts a year early."""
    out: list[tuple[str, bytes, str]] = []
    registers = {u.unit_id: 0.0 for u in UNITS}
    day, end = date(YEAR - 1, 1, 1), date(YEAR + 1, 1, 1)
    seq = 0
    while day <= end:
        ts = local_midnight_ms(day)
        yesterday = day - timedelta(days=1)
        for u in UNITS:
            uid = u.unit_id
            if uid != "I" and day < date(YEAR, 1, 1):
                continue
            seq += 1
            if not (uid != "I" and day == date(YEAR, 1, 1)) and not (
                uid == "I" and day == date(YEAR - 1, 1, 1)
            ):
                registers[uid] += daily_use(uid, yesterday)
                items = []
                if uid == "I":
                    items.append({"ts": ts, "value_10k_yuan": VALUE_PER_DAY})
                if uid == "P":
                    items.append({"ts": ts, "product_id": "clinker", "quantity": CLINKER_T_PER_DAY})
                if items:
                    out.append((topics.OUTPUT, output_message(uid, "erp", seq, items), uid))
            reading = {
                "meter_id": "E1",
                "energy": "electricity",
                "kind": "cumulative",
                "value": registers[uid],
                "uom": "kWh",
                "ts": ts,
            }
            doc = {"v": 1, "unit_id": uid, "source": "scenario", "seq": seq, "readings": [reading]}
            out.append((topics.READINGS, orjson.dumps(doc), uid))
        day += timedelta(days=1)
    return out


@pytest.fixture(scope="module")
def year_run(influx: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Alert], str, str]]:
    """Run the year once; yields (alerts in topic order per unit, influx url, database)."""
    state = tmp_path_factory.mktemp("scenario")
    with PipelineRun(
        influx, state, UNITS, messages(), "scenario", timeout_s=240, ENERGYMON_ALERTS__LANG="both"
    ) as run:
        consumer = KafkaConsumer(bootstrap_servers=run.bootstrap, enable_auto_commit=False)
        try:
            parts = [TopicPartition(topics.ALERTS, p) for p in range(4)]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            records = []
            quiet = 0
            while quiet < 3:
                batch = consumer.poll(timeout_ms=300)
                quiet = 0 if batch else quiet + 1
                for recs in batch.values():
                    records += recs
        finally:
            consumer.close()
        alerts = sorted((Alert.from_json(r.value) for r in records), key=lambda a: (a.unit_id, a.ts_ms))
        yield alerts, influx, run.database


def of(alerts: list[Alert], key: str) -> list[tuple[str, str]]:
    return [(a.state, a.severity) for a in alerts if a.key == key]


def day_of(ts_ms: int) -> int:
    return (ts_ms - local_midnight_ms(date(YEAR, 1, 1))) // (24 * 3600 * 1000)


def test_the_unit_on_track_stays_green(year_run: tuple[list[Alert], str, str]) -> None:
    alerts, *_ = year_run
    assert [a for a in alerts if a.unit_id == "G"] == []


def test_the_overshooting_unit_turns_yellow_then_red_before_its_cap_and_back(
    year_run: tuple[list[Alert], str, str],
) -> None:
    alerts, *_ = year_run
    got = [a for a in alerts if a.key == "O|dual_control|energy_total"]
    assert [(a.state, a.severity) for a in got] == [
        ("raised", "yellow"),
        ("updated", "red"),
        ("updated", "yellow"),
        ("resolved", "green"),
    ]
    yellow, red, back, green = (day_of(a.ts_ms) for a in got)
    assert 126 <= yellow <= 130 and 158 <= red <= 162, (yellow, red)
    assert 288 <= back <= 293 and 335 <= green <= 340, (back, green)
    ytd_at_red = (120 + 1.6 * (red - 120)) * DAY_TCE
    assert ytd_at_red < CAP_O, "red came only after the cap was crossed"
    assert "一级预警" in got[1].message and "能耗总量" in got[1].message


def test_an_intensity_rising_year_on_year_is_red(year_run: tuple[list[Alert], str, str]) -> None:
    alerts, *_ = year_run
    got = [a for a in alerts if a.key == "I|dual_control|energy_intensity"]
    assert [(a.state, a.severity) for a in got] == [("raised", "red")]
    assert got[0].value > 0 and day_of(got[0].ts_ms) <= 2  # up y/y from the first days
    _alerts, influx, database = year_run
    (end,) = query(
        influx, database, 'SELECT last("intensity_change_pct") FROM "unit_status" WHERE "unit_id" = \'I\''
    )
    assert end["values"][0][1] == pytest.approx(10.0, rel=1e-3)  # +10 % over the whole year


def test_a_product_above_its_limit_raises_red(year_run: tuple[list[Alert], str, str]) -> None:
    alerts, *_ = year_run
    got = [a for a in alerts if a.key == "P|product_energy|clinker"]
    assert [(a.state, a.severity) for a in got] == [("raised", "red")]
    assert got[0].value > 125.0 and got[0].threshold == 125.0
    _alerts, influx, database = year_run
    (end,) = query(
        influx, database, 'SELECT last("product_clinker_value") FROM "unit_status" WHERE "unit_id" = \'P\''
    )
    assert end["values"][0][1] == pytest.approx(130.0, rel=1e-4)  # kgce/t over the whole year


def test_unit_status_holds_the_levels_at_year_end(year_run: tuple[list[Alert], str, str]) -> None:
    _alerts, influx, database = year_run
    series = query(
        influx, database, 'SELECT last("level"), count("level") FROM "unit_status" GROUP BY "unit_id"'
    )
    got = {s["tags"]["unit_id"]: (s["values"][0][1], s["values"][0][2]) for s in series}
    assert {u: level for u, (level, _n) in got.items()} == {
        "G": "green",
        "O": "green",
        "I": "red",
        "P": "red",
    }
    assert all(n >= 365 for _level, n in got.values()), got
    (o_end,) = query(
        influx,
        database,
        'SELECT last("ytd_tce"), last("quota_tce") FROM "unit_status" WHERE "unit_id" = \'O\'',
    )
    ytd, quota = o_end["values"][0][1:]
    assert quota == pytest.approx(CAP_O)
    # Period totals count each 15-minute piece in whole grams (energy.periods): 96 × 365 pieces.
    assert ytd == pytest.approx((120 + 1.6 * 120 + 0.3 * 125) * DAY_TCE, abs=96 * 365 * 0.5e-6)
