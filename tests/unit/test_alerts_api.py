"""The alerts HTTP API's answers to wrong requests, from the real server on a free local port.

No broker: the API serves an outbox file of its own, with one alert written into it the way the
dispatcher writes them.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from alerts.api import MAX_BODY_BYTES, ApiServer
from alerts.lifecycle import AlertRecord, Policy, on_change
from alerts.outbox import Decision, Outbox
from energymon.settings import AlertSettings
from tests.notifications import make_alert

TOKEN = "api-t0ken"
ALERT = make_alert()
KEY_PATH = "/v1/alerts/" + urllib.parse.quote(ALERT.key, safe="")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    outbox = Outbox(tmp_path_factory.mktemp("api") / "outbox.db")

    def decide(previous: AlertRecord | None) -> Decision:
        step = on_change(previous, ALERT, outbox.now_ms(), Policy())
        return step.record, step.outcome, []

    outbox.apply_change(ALERT, decide)
    server = ApiServer(outbox, AlertSettings(api_port=0, api_token=TOKEN))  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
        outbox.close()


def call(
    api: ApiServer,
    method: str,
    path: str,
    body: bytes | None = None,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """(status, JSON answer) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=body, headers=sent)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_a_good_request_is_answered(api: ApiServer) -> None:
    status, data = call(api, "GET", "/v1/alerts")
    assert status == 200 and [a["key"] for a in data["alerts"]] == [ALERT.key]


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", ""], ids=["none", "wrong", "longer", "empty"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/v1/alerts", None), ("POST", KEY_PATH + "/ack", b'{"by": "x"}')],
    ids=["list", "ack"],
)
def test_no_or_a_wrong_token_is_401_and_changes_nothing(
    api: ApiServer, token: str | None, method: str, path: str, body: bytes | None
) -> None:
    status, data = call(api, method, path, body, token=token)
    assert (status, data) == (401, {"error": "missing or wrong bearer token"})
    _, listed = call(api, "GET", "/v1/alerts")
    assert listed["alerts"][0]["acked_by"] is None


def test_a_token_in_another_scheme_is_401(api: ApiServer) -> None:
    status, _ = call(api, "GET", "/v1/alerts", token=None, headers={"Authorization": f"Basic {TOKEN}"})
    assert status == 401


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/ack", b"{not json", "body is not JSON"),
        ("/ack", b"[1, 2]", "body must be a JSON object"),
        ("/ack", b'{"by": 42}', "`by` must be text"),
        ("/silence", b"{}", "`for` must be a duration"),
        ("/silence", b'{"for": "forever"}', "`for` must be a duration"),
        ("/silence", b'{"for": "-1h"}', "`for` must be a duration"),
    ],
)
def test_a_bad_body_is_400_naming_the_problem(api: ApiServer, path: str, body: bytes, says: str) -> None:
    status, data = call(api, "POST", KEY_PATH + path, body)
    assert status == 400 and data["error"].startswith(says), data
    _, listed = call(api, "GET", "/v1/alerts")
    assert (listed["alerts"][0]["acked_by"], listed["alerts"][0]["silenced_until_ms"]) == (None, None)


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_a_bad_query_is_400(api: ApiServer, limit: str) -> None:
    status, data = call(api, "GET", f"/v1/alerts?limit={limit}")
    assert status == 400 and "limit" in data["error"]


def test_an_unknown_alert_is_404(api: ApiServer) -> None:
    status, data = call(api, "POST", "/v1/alerts/nope%7Cx/ack", b"{}")
    assert (status, data) == (404, {"error": "no alert 'nope|x'"})


def test_a_body_over_the_cap_is_413(api: ApiServer) -> None:
    body = json.dumps({"by": "x" * MAX_BODY_BYTES}).encode()
    status, data = call(api, "POST", KEY_PATH + "/ack", body)
    assert status == 413 and "body" in data["error"]
    _, listed = call(api, "GET", "/v1/alerts")
    assert listed["alerts"][0]["acked_by"] is None
    at_cap = b'{"by": "' + b"x" * (MAX_BODY_BYTES - 10) + b'"}'
    assert len(at_cap) == MAX_BODY_BYTES
    status, _ = call(api, "POST", "/v1/alerts/nope/ack", at_cap)
    assert status == 404  # a body of exactly the cap is read (and the unknown key answered)
