"""The HTTP push source with a real HTTP client (aiohttp.ClientSession, or a raw socket for a slow
client) against the endpoint it serves on a free port."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from collectors.sources.base import SourceError, SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.http.plugin import Config, HttpPushSource, create
from energymon.localstack.ports import free_port

TESTCASES = Path(__file__).parents[2] / "collectors/sources/http/testcases"
TOKEN = "plant-a-token-0123456789"
READING = {
    "meter_id": "EL01",
    "energy": "electricity",
    "kind": "cumulative",
    "value": 1.5,
    "uom": "kWh",
    "ts": 1767226500000,
}
MESSAGE = {"v": 1, "unit_id": "91310000MA1K000001", "source": "gw", "seq": 1, "readings": [READING]}


def make_source(tmp_path: Path, **overrides: Any) -> HttpPushSource:
    doc = {
        "name": "push",
        "type": "http_push",
        "host": "127.0.0.1",
        "tokens": [{"site": "plant-a", "token": TOKEN}],
        **overrides,
        "port": free_port(),
    }
    source = create(Config.model_validate(doc), SourceContext("site-t", tmp_path))
    assert isinstance(source, HttpPushSource)
    return source


class Served:
    """The running source's base URL, an HTTP session, and what it emitted."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session
        self.emits: list[list[SourceReading]] = []

    async def emit(self, readings: list[SourceReading]) -> None:
        self.emits.append(readings)

    async def post(
        self, body: bytes | Any, token: str | None = TOKEN, path: str = "/v1/readings"
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.session.post(self.base + path, data=data, headers=headers) as r:
            return r.status, await r.json()


@asynccontextmanager
async def serving(source: HttpPushSource) -> AsyncIterator[Served]:
    """``source.run`` in a task, once ``/healthz`` answers."""
    async with aiohttp.ClientSession() as session:
        served = Served(source.url.removesuffix(source._config.path), session)
        task = asyncio.create_task(source.run(served.emit))
        try:
            async with asyncio.timeout(5):
                while True:
                    try:
                        async with session.get(served.base + "/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.02)
            yield served
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("case", sorted(p.name for p in TESTCASES.iterdir()))
async def test_testcase_answers_and_emits_expected(case: str, tmp_path: Path) -> None:
    doc = yaml.safe_load((TESTCASES / case / "config.yaml").read_text())
    expected = json.loads((TESTCASES / case / "expected.json").read_text())
    source = make_source(tmp_path, **doc["source"])
    answers = []
    async with serving(source) as served:
        for request in doc["requests"]:
            status, body = await served.post(request["body"], token=request["token"])
            answer = {"status": status, "rejected_rules": [r["rule"] for r in body.get("rejected", [])]}
            answer |= {"accepted": body["accepted"]} if status == 202 else {"error": body["error"]}
            answers.append(answer)
    assert answers == expected["responses"]
    assert [[dataclasses.asdict(r) for r in emit] for emit in served.emits] == expected["emits"]


async def test_good_message_is_202_and_emitted_as_source_readings(tmp_path: Path) -> None:
    async with serving(make_source(tmp_path)) as served:
        status, body = await served.post(MESSAGE)
    assert (status, body) == (202, {"accepted": 1, "rejected": []})
    assert served.emits == [
        [
            SourceReading(
                "91310000MA1K000001", "EL01", "electricity", "cumulative", 1.5, "kWh", 1767226500000, "good"
            )
        ]
    ]


async def test_missing_or_wrong_token_is_401_and_the_token_is_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with serving(make_source(tmp_path)) as served:
            missing = await served.post(MESSAGE, token=None)
            wrong = await served.post(MESSAGE, token="not-the-token-0123456789")
            async with served.session.post(served.base + "/v1/readings", data=b"{}") as r:
                challenge = r.headers.get("WWW-Authenticate", "")
    assert missing == wrong == (401, {"error": "unauthorized", "detail": "missing or unknown bearer token"})
    assert challenge.startswith("Bearer")
    assert served.emits == []
    assert "not-the-token-0123456789" not in caplog.text and TOKEN not in caplog.text


async def test_body_over_max_body_bytes_is_413(tmp_path: Path) -> None:
    big = json.dumps({**MESSAGE, "readings": [READING] * 100}).encode()

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    async with serving(make_source(tmp_path, max_body_bytes=4096)) as served:
        declared = await served.post(big)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with served.session.post(served.base + "/v1/readings", data=chunked(), headers=headers) as r:
            streamed = r.status, await r.json()
    assert len(big) > 4096
    assert declared == streamed == (413, {"error": "body_too_large", "detail": "body over 4096 bytes"})
    assert served.emits == []


async def test_body_that_is_not_json_is_400_not_json(tmp_path: Path) -> None:
    async with serving(make_source(tmp_path)) as served:
        status, body = await served.post(b"meter=EL01;value=1.5")
    assert (status, body["error"]) == (400, "not_json")
    assert served.emits == []


async def test_bad_envelope_is_400_naming_the_rule_and_field(tmp_path: Path) -> None:
    async with serving(make_source(tmp_path)) as served:
        status, body = await served.post({**MESSAGE, "v": 2})
        no_readings = await served.post({**MESSAGE, "readings": []})
    assert (status, body["error"]) == (400, "bad_envelope") and body["detail"].startswith("v:")
    assert no_readings[0] == 400 and no_readings[1]["detail"].startswith("readings:")
    assert served.emits == []


async def test_partly_invalid_message_is_202_with_the_rejected_readings(tmp_path: Path) -> None:
    bad = {**READING, "meter_id": "EL02", "uom": ""}
    async with serving(make_source(tmp_path)) as served:
        status, body = await served.post({**MESSAGE, "readings": [READING, bad]})
    assert status == 202 and body["accepted"] == 1
    assert body["rejected"] == [
        {"rule": "bad_reading", "detail": body["rejected"][0]["detail"], "reading": bad}
    ]
    assert body["rejected"][0]["detail"].startswith("uom:")
    assert [r.meter_id for r in served.emits[0]] == ["EL01"]


async def test_wrong_method_is_405_and_healthz_is_200(tmp_path: Path) -> None:
    async with serving(make_source(tmp_path)) as served:
        async with served.session.get(served.base + "/v1/readings") as r:
            wrong = r.status, await r.json(), r.headers.get("Allow")
        async with served.session.get(served.base + "/healthz") as r:
            health = r.status, await r.json()
    assert wrong == (405, {"error": "method_not_allowed", "detail": "Method Not Allowed"}, "POST")
    assert health == (200, {"status": "ok"})


async def test_slow_body_is_408(tmp_path: Path) -> None:
    source = make_source(tmp_path, body_timeout_s=0.3)
    async with serving(source) as served:
        host, port = served.base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST /v1/readings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
        )
        await writer.drain()
        async with asyncio.timeout(3):
            status_line = await reader.readline()
            headers = await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()
    assert status_line.split()[1] == b"408"
    assert b"Connection: close" in headers


async def test_read_once_returns_the_first_accepted_message(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    task = asyncio.create_task(source.read_once(timeout_s=5))
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.post(
                    source.url, json=MESSAGE, headers={"Authorization": f"Bearer {TOKEN}"}
                ) as r:
                    assert r.status == 202
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
    readings = await task
    assert [(r.meter_id, r.value) for r in readings] == [("EL01", 1.5)]


async def test_port_in_use_is_a_source_error(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    async with serving(source):
        second = create(source._config, SourceContext("site-t", tmp_path))
        with pytest.raises(SourceError, match=r"cannot listen on 127\.0\.0\.1"):
            await second.read_once(timeout_s=2)
