"""Slow, large, unauthenticated and too many requests against the real HTTP servers: the collectors'
``http_push`` source and the alerts API, spoken to with raw sockets (energymon/httpguard.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alerts import api
from alerts.outbox import Outbox
from energymon.settings import AlertSettings
from tests.integration.test_source_http import TOKEN, make_source, serving

#: The limits the servers get here: request head (s), body (s), open connections.
HEAD_S, BODY_S, MOST = 2.0, 0.5, 3
API_TOKEN = "alerts-api-token-64c2"
#: One byte of a never-ending header every TRICKLE_S seconds: about 20 s if nobody cuts it off.
TRICKLE = b"X-Trickle: " + b"a" * 200
TRICKLE_S = 0.1


@dataclass(frozen=True)
class Target:
    """A running server: where to POST (with which token) and a request it answers 200."""

    name: str
    port: int
    post_path: str
    token: str
    ok_request: bytes


@pytest.fixture(params=["http_push", "alerts_api"])
async def target(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Target]:
    if request.param == "http_push":
        limits = {"keepalive_timeout_s": HEAD_S, "body_timeout_s": BODY_S, "max_connections": MOST}
        async with serving(make_source(tmp_path, **limits)) as served:
            port = int(served.base.rsplit(":", 1)[1])
            ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            yield Target("http_push", port, "/v1/readings", TOKEN, ok)
        return
    monkeypatch.setattr(api, "HEAD_TIMEOUT_S", HEAD_S)
    monkeypatch.setattr(api, "BODY_TIMEOUT_S", BODY_S)
    monkeypatch.setattr(api, "MAX_CONNECTIONS", MOST)
    outbox = Outbox(tmp_path / "outbox.db")
    server = api.ApiServer(outbox, AlertSettings(api_port=0, api_token=API_TOKEN))
    server.start()
    try:
        ok = f"GET /v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\n\r\n".encode()
        yield Target("alerts_api", server.port, "/v1/alerts/k/ack", API_TOKEN, ok)
    finally:
        server.stop()
        outbox.close()


async def answer_of(t: Target, raw: bytes, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """(status, whole answer) of one raw request on a new connection, read until the server closes
    it or ``timeout_s`` passes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", t.port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        fields = dict(line.split(b":", 1) for line in head.lower().split(b"\r\n")[1:] if b":" in line)
        length = int(fields.get(b"content-length", b"0"))
        body = await asyncio.wait_for(reader.readexactly(length), timeout_s)
        return int(head.split()[1]), head + body
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader, wait_s: float) -> bool:
    """Whether the server closed the connection (EOF or reset) within ``wait_s``."""
    try:
        return await asyncio.wait_for(reader.read(65536), wait_s) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def test_a_request_head_trickled_in_is_cut_off(target: Target) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    writer.write(f"POST {target.post_path} HTTP/1.1\r\nHost: x\r\n".encode())
    started, sent, cut = time.monotonic(), 0, False
    for byte in TRICKLE:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            cut = True
            break
        sent += 1
        if await closed_by_server(reader, TRICKLE_S):
            cut = True
            break
    writer.close()
    print(f"{target.name}: cut off after {time.monotonic() - started:.1f} s, {sent} bytes")
    assert cut and sent < len(TRICKLE)
    assert (await answer_of(target, target.ok_request))[0] == 200  # and it serves the next client


async def test_a_body_trickled_in_is_408_and_closed(target: Target) -> None:
    head = (
        f"POST {target.post_path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {target.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    status, answer = await answer_of(target, head.encode())
    assert status == 408 and b"Connection: close" in answer


async def test_an_unauthenticated_request_is_401_before_its_body_is_read(target: Target) -> None:
    head = f"POST {target.post_path} HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n"
    status, _ = await answer_of(target, head.encode())  # not one byte of the 50 MB sent
    assert status == 401


async def test_connections_over_the_bound_get_503(target: Target) -> None:
    idle = [await asyncio.open_connection("127.0.0.1", target.port) for _ in range(MOST)]
    try:
        status, answer = await answer_of(target, target.ok_request)
    finally:
        for _, writer in idle:
            writer.close()
    assert status == 503 and b'"too_many_connections"' in answer
    deadline = time.monotonic() + 5  # once the server has seen them go, it serves again
    while (status := (await answer_of(target, target.ok_request))[0]) == 503 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert status == 200
