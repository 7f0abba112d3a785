"""InfluxQL over InfluxDB's v1 HTTP API (``/query``, also served by 2.x through DBRP), stdlib only:
the sink's ``energymon influx init`` and the local stack use it; writes go through the backends."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class InfluxError(RuntimeError):
    """InfluxDB answered with an error."""


def ping(url: str, timeout_s: float = 2.0) -> bool:
    """Whether ``GET /ping`` answers 204."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/ping", timeout=timeout_s) as resp:
            return int(resp.status) == 204
    except urllib.error.HTTPError:
        return False


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _post_query(
    url: str,
    q: str,
    database: str | None,
    username: str | None,
    password: str | None,
    epoch: str | None = None,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    form = {"q": q}
    if database:
        form["db"] = database
    if epoch:
        form["epoch"] = epoch
    request = urllib.request.Request(
        url.rstrip("/") + "/query",
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if username is not None:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace").strip()
        raise InfluxError(f"InfluxDB {url}: HTTP {exc.code} for {q!r}: {detail}") from exc
    payload: dict[str, Any] = json.loads(body) if body else {}
    if payload.get("error"):
        raise InfluxError(f"InfluxDB {url}: {payload['error']} (query {q!r})")
    return payload


def create_database(
    url: str, database: str, username: str | None = None, password: str | None = None
) -> None:
    """``CREATE DATABASE`` (a no-op when it exists)."""
    query(url, database, f"CREATE DATABASE {quote_ident(database)}", username, password)


def query(
    url: str,
    database: str,
    q: str,
    username: str | None = None,
    password: str | None = None,
    *,
    epoch: str | None = None,
) -> list[dict[str, Any]]:
    """Run InfluxQL; the series of the first statement's result (``[]`` when none).

    ``epoch`` (``ns``, ``u``, ``ms``, ``s``, ...) returns times as integers instead of RFC 3339 strings.
    Raises :class:`InfluxError` when the server or the statement reports an error.
    """
    payload = _post_query(url, q, database, username, password, epoch)
    results = payload.get("results") or []
    if not results:
        return []
    first = results[0]
    if first.get("error"):
        raise InfluxError(f"InfluxDB {url}: {first['error']} (query {q!r})")
    series: list[dict[str, Any]] = first.get("series") or []
    return series
