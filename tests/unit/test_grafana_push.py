"""`grafana push` over real HTTP against a stub of Grafana's API.

Grafana cannot run here (no server package in any reachable registry, see
../shared/reference/stack.md), so this is a stub: a real HTTP server in a thread that records every
request and answers the endpoints `push` uses the way Grafana's HTTP API does (folders, datasources
by uid, dashboards by uid and `POST /api/dashboards/db`, 404 for what it does not hold).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from energymon.settings import GrafanaSettings, InfluxSettings, Settings
from grafana.generate import documents
from grafana.push import push


class GrafanaStub:
    """What the stub holds and what it was asked."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.auth: list[str | None] = []

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        parts = path.strip("/").split("/")[1:]  # drop "api"
        if parts[0] == "folders":
            return self._folders(method, parts[1:], body)
        if parts[0] == "datasources":
            return self._datasources(method, parts[1:], body)
        if parts[0] == "dashboards":
            return self._dashboards(method, parts[1:], body)
        return 404, {"message": "Not found"}

    def _folders(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if method == "POST" and not rest:
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "version": 1}
            return 200, self.folders[body["uid"]]
        if rest and rest[0] in self.folders:
            if method == "PUT":
                self.folders[rest[0]]["title"] = body["title"]
            return 200, self.folders[rest[0]]
        return 404, {"message": "folder not found"}

    def _datasources(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if method == "POST" and not rest:
            stored = {k: v for k, v in body.items() if k != "secureJsonData"}
            self.datasources[body["uid"]] = {"id": 1, **stored}
            return 200, {"datasource": self.datasources[body["uid"]], "message": "Datasource added"}
        uid = rest[1] if len(rest) == 2 and rest[0] == "uid" else None
        if uid in self.datasources:
            if method == "PUT":
                self.datasources[uid] = {"id": 1, **{k: v for k, v in body.items() if k != "secureJsonData"}}
            return 200, self.datasources[uid]
        return 404, {"message": "Data source not found"}

    def _dashboards(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if method == "POST" and rest == ["db"]:
            doc = body["dashboard"]
            old = self.dashboards.get(doc["uid"])
            version = old["dashboard"]["version"] + 1 if old else 1
            stored = {**doc, "id": 7, "version": version}
            self.dashboards[doc["uid"]] = {"dashboard": stored, "meta": {"folderUid": body["folderUid"]}}
            return 200, {"status": "success", "uid": doc["uid"], "version": version}
        if len(rest) == 2 and rest[0] == "uid" and rest[1] in self.dashboards:
            return 200, self.dashboards[rest[1]]
        return 404, {"message": "Dashboard not found"}


@pytest.fixture
def stub() -> Iterator[tuple[GrafanaStub, str]]:
    """The stub on a free port; yields it and its URL."""
    state = GrafanaStub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.auth.append(self.headers.get("Authorization"))
            status, answer = state.answer(self.command, self.path, body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def settings_for(url: str, **grafana: Any) -> Settings:
    return Settings(
        grafana=GrafanaSettings(url=url, token="glsa_test", **grafana),
        influx=InfluxSettings(url="http://influx:8086", username="grafana", password="influx-secret"),
    )


def test_first_push_creates_everything_and_the_second_changes_nothing(stub: tuple[GrafanaStub, str]) -> None:
    state, url = stub
    uids = sorted(documents())
    first = push(settings_for(url))
    assert first == [
        "folder energymon: created",
        "datasource energymon-influxdb: created",
        *(f"dashboard {uid}: created" for uid in uids),
    ]
    writes = len([r for r in state.requests if r[0] != "GET"])
    second = push(settings_for(url))
    assert second == [line.replace("created", "unchanged") for line in first]
    assert len([r for r in state.requests if r[0] != "GET"]) == writes, "the second push wrote something"
    assert set(state.auth) == {"Bearer glsa_test"}


def test_the_pushed_resources_are_what_grafana_needs(stub: tuple[GrafanaStub, str]) -> None:
    state, url = stub
    push(settings_for(url))
    ds = state.datasources["energymon-influxdb"]
    assert (ds["type"], ds["url"], ds["jsonData"]["dbName"], ds["jsonData"]["version"]) == (
        "influxdb",
        "http://influx:8086",
        "energymon",
        "InfluxQL",
    )
    (create_ds,) = [
        body for method, path, body in state.requests if (method, path) == ("POST", "/api/datasources")
    ]
    assert create_ds["secureJsonData"] == {"password": "influx-secret"}
    assert {uid: d["meta"]["folderUid"] for uid, d in state.dashboards.items()} == dict.fromkeys(
        documents(), "energymon"
    )


def test_a_changed_setting_or_dashboard_is_reported_as_updated(stub: tuple[GrafanaStub, str]) -> None:
    state, url = stub
    push(settings_for(url))
    state.dashboards["energymon-alerts"]["dashboard"]["title"] = "edited by hand"
    report = push(settings_for(url, folder="能耗监测", influx_url="http://influxdb:8086"))
    assert "folder energymon: updated" in report and "datasource energymon-influxdb: updated" in report
    assert "dashboard energymon-alerts: updated" in report and "dashboard energymon-unit: unchanged" in report
    assert state.folders["energymon"]["title"] == "能耗监测"
    assert (
        state.dashboards["energymon-alerts"]["dashboard"]["title"] == documents()["energymon-alerts"]["title"]
    )


def test_push_without_a_grafana_url_names_the_setting() -> None:
    with pytest.raises(RuntimeError, match="ENERGYMON_GRAFANA__URL"):
        push(Settings(grafana=GrafanaSettings()))
