"""`energymon grafana generate|push` from the command line.

`push` runs against the Grafana API stub of test_grafana_push.py: Grafana cannot run here (no server
package in any reachable registry), so a real HTTP server in a thread stands in for its API.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from energymon.cli import app
from grafana.generate import DASHBOARDS, documents
from tests.unit.test_grafana_push import GrafanaStub
from tests.unit.test_grafana_push import stub as stub  # the fixture

ENV = {"ENERGYMON_GRAFANA__TOKEN": "glsa_cli_test", "ENERGYMON_INFLUX__URL": "http://influx:8086"}


def test_generate_check_passes_on_the_committed_dashboards() -> None:
    result = CliRunner().invoke(app, ["grafana", "generate", "--check"])
    assert result.exit_code == 0, result.output
    assert f"all dashboards in {DASHBOARDS} are up to date" in result.output


def test_generate_writes_every_dashboard_and_check_then_finds_a_hand_edit(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["grafana", "generate", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{uid}.json" for uid in documents())
    edited = tmp_path / "energymon-unit.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace("{", "{ ", 1), encoding="utf-8")
    check = CliRunner().invoke(app, ["grafana", "generate", "--out", str(tmp_path), "--check"])
    assert check.exit_code == 1
    assert f"{edited}: differs from what grafana/boards generates" in check.output


def test_push_reports_what_it_created_then_that_nothing_changed(stub: tuple[GrafanaStub, str]) -> None:
    state, url = stub
    env = {**ENV, "ENERGYMON_GRAFANA__URL": url}
    first = CliRunner().invoke(app, ["grafana", "push"], env=env)
    assert first.exit_code == 0, first.output
    assert "folder energymon: created" in first.output
    assert all(f"dashboard {uid}: created" in first.output for uid in documents())
    second = CliRunner().invoke(app, ["grafana", "push"], env=env)
    assert second.exit_code == 0, second.output
    assert "created" not in second.output and "updated" not in second.output
    assert set(state.auth) == {"Bearer glsa_cli_test"}
    assert "glsa_cli_test" not in first.output + second.output


def test_push_to_an_unreachable_grafana_fails_with_a_clear_message() -> None:
    env = {**ENV, "ENERGYMON_GRAFANA__URL": "http://127.0.0.1:9", "ENERGYMON_GRAFANA__TIMEOUT_S": "2"}
    result = CliRunner().invoke(app, ["grafana", "push"], env=env)
    assert result.exit_code == 1
    assert "energymon grafana push:" in result.output


def test_push_without_a_url_names_the_setting() -> None:
    result = CliRunner().invoke(app, ["grafana", "push"], env={"ENERGYMON_GRAFANA__URL": ""})
    assert result.exit_code == 1
    assert "ENERGYMON_GRAFANA__URL" in result.output
