"""``energymon grafana push``: the folder, the InfluxDB datasource and the dashboards, created or
updated over Grafana's HTTP API (grafana-client), idempotently; returns what changed."""

from __future__ import annotations

from typing import Any, Literal

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError

from energymon.settings import GrafanaSettings, InfluxSettings, Settings
from grafana.generate import documents
from grafana.influxql import DATASOURCE

Change = Literal["created", "updated", "unchanged"]
#: grafana-client's API objects (their methods are untyped).
Api = Any
#: Keys Grafana adds to a stored dashboard that the generated JSON does not hold.
_SERVER_KEYS = ("id", "version")


def connect(settings: GrafanaSettings) -> GrafanaApi:
    """A client for the configured Grafana (token auth when a token is set)."""
    if not settings.url:
        raise RuntimeError("no Grafana configured: set ENERGYMON_GRAFANA__URL (and a token)")
    token = settings.token.get_secret_value() if settings.token else None
    api: GrafanaApi = GrafanaApi.from_url(settings.url, credential=token, timeout=settings.timeout_s)
    return api


def _get(call: Any, *args: Any) -> dict[str, Any] | None:
    """The resource, or None when Grafana answers 404."""
    try:
        found: dict[str, Any] = call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise
    return found


def ensure_folder(api: Api, settings: GrafanaSettings) -> Change:
    """The dashboards' folder, with its title."""
    found = _get(api.folder.get_folder, settings.folder_uid)
    if found is None:
        api.folder.create_folder(settings.folder, uid=settings.folder_uid)
        return "created"
    if found.get("title") == settings.folder:
        return "unchanged"
    api.folder.update_folder(settings.folder_uid, title=settings.folder, overwrite=True)
    return "updated"


def datasource_body(grafana: GrafanaSettings, influx: InfluxSettings) -> dict[str, Any]:
    """The InfluxDB datasource as Grafana's API takes it (InfluxQL, the energymon database)."""
    url = grafana.influx_url or influx.url
    if not url:
        raise RuntimeError(
            "no InfluxDB URL for Grafana: set ENERGYMON_GRAFANA__INFLUX_URL or ENERGYMON_INFLUX__URL"
        )
    body: dict[str, Any] = {
        "name": grafana.datasource_name,
        "uid": DATASOURCE.uid,
        "type": DATASOURCE.type_val,
        "access": "proxy",
        "url": url,
        "user": influx.username or "",
        "jsonData": {"dbName": influx.database, "httpMode": "POST", "version": "InfluxQL"},
    }
    return body


def ensure_datasource(api: Api, grafana: GrafanaSettings, influx: InfluxSettings) -> Change:
    """The datasource every panel names (uid ``energymon-influxdb``). The password is sent when the
    datasource is created or updated; Grafana never returns it, so a new password alone is no change."""
    body = datasource_body(grafana, influx)
    secret = {"secureJsonData": {"password": influx.password.get_secret_value()}} if influx.password else {}
    found = _get(api.datasource.get_datasource_by_uid, DATASOURCE.uid)
    if found is None:
        api.datasource.create_datasource({**body, **secret})
        return "created"
    if all(found.get(key) == value for key, value in body.items()):
        return "unchanged"
    api.datasource.update_datasource_by_uid(DATASOURCE.uid, {**body, **secret})
    return "updated"


def ensure_dashboard(api: Api, doc: dict[str, Any], folder_uid: str) -> Change:
    """One dashboard in the folder; unchanged when Grafana holds the same JSON there."""
    found = _get(api.dashboard.get_dashboard, doc["uid"])
    if found is not None:
        stored = {k: v for k, v in found.get("dashboard", {}).items() if k not in _SERVER_KEYS}
        if stored == doc and found.get("meta", {}).get("folderUid") == folder_uid:
            return "unchanged"
    body = {"dashboard": doc, "folderUid": folder_uid, "overwrite": True, "message": "energymon grafana push"}
    api.dashboard.update_dashboard(body)
    return "created" if found is None else "updated"


def push(settings: Settings, client: GrafanaApi | None = None) -> list[str]:
    """Provision Grafana; one line per resource: ``<kind> <name>: created|updated|unchanged``."""
    api: Api = client or connect(settings.grafana)
    grafana = settings.grafana
    report = [
        f"folder {grafana.folder_uid}: {ensure_folder(api, grafana)}",
        f"datasource {DATASOURCE.uid}: {ensure_datasource(api, grafana, settings.influx)}",
    ]
    for uid, doc in sorted(documents().items()):
        report.append(f"dashboard {uid}: {ensure_dashboard(api, doc, grafana.folder_uid)}")
    return report
