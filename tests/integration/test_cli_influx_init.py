"""`energymon influx init` from the command line against the real InfluxDB 1.6.7: it creates the
database, retention policies and continuous queries, a second run changes nothing, and an InfluxDB
that cannot be reached is a clear error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from energymon.cli import app
from energymon.localstack.influxdb import query
from streams.sinks.retention import ROLLUPS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_influx_init_sets_up_the_database_and_a_second_run_changes_nothing(
    influx: str, unique_name: str
) -> None:
    env = {"ENERGYMON_INFLUX__URL": influx, "ENERGYMON_INFLUX__DATABASE": unique_name}
    first = CliRunner().invoke(app, ["influx", "init"], env=env)
    assert first.exit_code == 0, first.output
    assert f"created database {unique_name}" in first.output
    assert all(f"created continuous query {r.name}" in first.output for r in ROLLUPS)
    [rps] = query(influx, unique_name, f'SHOW RETENTION POLICIES ON "{unique_name}"')
    assert {r[0] for r in rps["values"]} == {"autogen", "hourly", "daily"}
    second = CliRunner().invoke(app, ["influx", "init"], env=env)
    assert second.exit_code == 0, second.output
    assert second.output.strip() == f"nothing to change: database {unique_name} is as configured"


def test_influx_init_against_nothing_listening_says_so() -> None:
    from energymon.localstack.ports import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["influx", "init"], env={"ENERGYMON_INFLUX__URL": url})
    assert result.exit_code == 1
    assert f"cannot reach InfluxDB at {url}" in result.output
