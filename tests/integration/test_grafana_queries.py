"""Every query of every committed dashboard, run against a real InfluxDB that the real pipeline filled.

Three weeks of January 2025 for three units, four scans a day, through a real tansu broker into a
real Faust worker and a real influxd: ``F`` (江苏, steel) has everything a dashboard shows — two
energy types, an electricity register that rolls over, energy and CO₂ caps it will overshoot (red),
an intensity target with output value, a product with 标杆/基准/限额 — ``Y`` (江苏, cement) heads for
95 % of its cap (yellow) and ``G`` (浙江, steel) for half of it (green). Grafana's macros are
substituted as Grafana does with "All" chosen: ``$region``/``$industry`` → ``.*`` (their custom all
value), a multi-valued ``$unit`` → ``(F|G|Y)``; the unit-detail dashboard's single ``$unit`` → ``F``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from energy import topics
from energy.output import output_message
from energy.periods import local_midnight_ms
from energy.registry import MeterInfo, ProductInfo, UnitInfo, YearTargets
from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.influxdb import create_database, query
from energymon.localstack.ports import free_port
from energymon.localstack.process import ManagedProcess
from grafana.generate import DASHBOARDS
from grafana.queries import queries
from streams.status import STATUS_FILE, read_status
from tests.integration.pipeline_helpers import Quiet, energymon_argv, wait_until, worker_env

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
    **extra: object,
) -> UnitInfo:
    meters = [
        MeterInfo(
            meter_id="E1", energy="electricity", kind="cumulative", uom="kWh", register_max=REGISTER_MAX
        ),
        MeterInfo(meter_id="G1", energy="natural_gas", kind="cumulative", uom="m³"),
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


def messages() -> list[tuple[str, bytes, str]]:
    """(topic, value, unit): every unit's registers ``SCANS`` times a day, F's output at each midnight."""
    out: list[tuple[str, bytes, str]] = []
    registers = {"E1": REGISTER_MAX - 30_000.0, "G1": 0.0}
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
            registers["E1"] += DAY_KWH / SCANS
            registers["G1"] += DAY_M3 / SCANS
    return out


@pytest.fixture(scope="module")
def filled(influx: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run the pipeline once over :func:`messages`; yields the database it wrote."""
    state = tmp_path_factory.mktemp("grafana-queries")
    server = TansuBroker(free_port(), log_path=state / "tansu.log")
    server.start()
    worker: ManagedProcess | None = None
    try:
        names = [topics.READINGS, topics.OUTPUT, topics.READINGS_REJECTED, topics.ALERTS, topics.REGISTRY]
        create_topics(server.bootstrap, names, 4)
        database = f"grafana_{time.time_ns()}"
        create_database(influx, database)
        env = worker_env(server.bootstrap, influx, database, state, ENERGYMON_ALERTS__LANG="en")
        worker = ManagedProcess("worker", energymon_argv("worker"), state / "worker.log", env=env)
        producer = KafkaProducer(bootstrap_servers=server.bootstrap, acks="all", linger_ms=5)
        for u in UNITS:
            producer.send(topics.REGISTRY, key=u.unit_id.encode(), value=u.to_json())
        producer.flush()
        worker.start()
        status = state / STATUS_FILE

        def counter(name: str) -> int:
            return int((read_status(status) or {}).get(name, 0))

        wait_until("the worker to know the units", lambda: counter("units_known") >= len(UNITS), 60, [worker])
        sent = messages()
        for topic, value, uid in sent:
            producer.send(topic, key=uid.encode(), value=value)
        producer.close()
        wait_until("the messages to be processed", lambda: counter("messages") >= len(sent), 60, [worker])
        wait_until("the worker to settle", Quiet(lambda: counter("messages"), 1.5), 20, [worker])
        yield database
    finally:
        if worker is not None:
            worker.stop(15)
        server.stop()


def substitute(query_text: str, single_unit: bool) -> str:
    """The query as Grafana sends it with "All" chosen (see the module docstring)."""
    units = sorted(u.unit_id for u in UNITS)
    return (
        query_text.replace("$timeFilter", TIME_FILTER)
        .replace("$__interval", "1h")
        .replace("/^$region$/", "/^.*$/")
        .replace("/^$industry$/", "/^.*$/")
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
