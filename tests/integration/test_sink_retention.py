"""``init_influx`` on the real InfluxDB 1.6.7: retention policies, continuous queries, idempotence,
and a rollup's target measurement filled by the continuous query's own SELECT … INTO."""

from __future__ import annotations

import time

import pytest

from energymon.localstack.influxdb import query
from energymon.settings import InfluxSettings
from streams.sinks.backends import build_writer
from streams.sinks.measurements import encode_unit_energy, encode_unit_status
from streams.sinks.retention import ROLLUPS, init_influx

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
HOUR_MS = 3_600_000


def test_init_creates_policies_and_continuous_queries_and_a_second_init_changes_nothing(
    influx: str, unique_name: str
) -> None:
    influx_settings = InfluxSettings(url=influx, database=unique_name, retention_raw="400d")
    done = init_influx(influx_settings)
    assert done[0] == f"created database {unique_name}"
    [rps] = query(influx, unique_name, f'SHOW RETENTION POLICIES ON "{unique_name}"')
    assert {(r[0], r[1], r[4]) for r in rps["values"]} == {
        ("autogen", "9600h0m0s", True),
        ("hourly", "43800h0m0s", False),
        ("daily", "0s", False),
    }
    cqs = [s for s in query(influx, unique_name, "SHOW CONTINUOUS QUERIES") if s["name"] == unique_name]
    assert sorted(row[0] for row in cqs[0]["values"]) == sorted(r.name for r in ROLLUPS)
    assert init_influx(influx_settings) == [f"nothing to change: database {unique_name} is as configured"]
    changed = influx_settings.model_copy(update={"retention_hourly": "800d"})
    assert init_influx(changed) == ["set retention policy hourly to 800d"]


async def test_a_rollups_select_into_fills_its_target_measurement(influx: str, unique_name: str) -> None:
    influx_settings = InfluxSettings(url=influx, database=unique_name)
    init_influx(influx_settings)
    hour = (int(time.time() * 1000) // HOUR_MS - 5) * HOUR_MS  # a whole hour, 5 hours ago
    lines = []
    for quarter in range(4):  # 15-minute intervals of two units
        ts = hour + quarter * 900_000
        lines.append(encode_unit_energy("U1", "江苏", "C30", 1.0 + quarter, 2.0, ts))
        lines.append(encode_unit_energy("U2", "江苏", "C30", 10.0, 0.5, ts))
        lines.append(
            encode_unit_status("U1", "江苏", "C30", {"used_pct": 10.0 + quarter, "level": "green"}, ts)
        )
    writer = build_writer(influx_settings)
    await writer.write([line for line in lines if line])
    await writer.close()
    where = f"time >= {hour}ms AND time < {hour + HOUR_MS}ms"
    for rollup in ROLLUPS:
        if rollup.rp == "hourly":
            query(influx, unique_name, rollup.select_into(unique_name, "autogen", where))
    energy = query(
        influx, unique_name, 'SELECT tce, co2_t FROM "hourly"."unit_energy" GROUP BY unit_id', epoch="ms"
    )
    assert {s["tags"]["unit_id"]: s["values"] for s in energy} == {
        "U1": [[hour, 10.0, 8.0]],
        "U2": [[hour, 40.0, 2.0]],
    }
    [status] = query(
        influx, unique_name, 'SELECT last_used_pct, last_level FROM "hourly"."unit_status"', epoch="ms"
    )
    assert status["values"] == [[hour, 13.0, "green"]]
