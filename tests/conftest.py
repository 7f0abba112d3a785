"""Session servers for the integration tests: a tansu broker and an influxd, each started on first use.

Nothing is skipped when a server binary is missing: the fixture fails with the install command
(``make`` installs both).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest

from energymon.localstack.broker import TansuBroker
from energymon.localstack.influxdb import LocalInfluxDB
from energymon.localstack.ports import free_port


def _start_or_fail(what: str, start: Callable[[], None]) -> None:
    """Start a server; a failure fails the requesting tests with its message (no skip, no traceback)."""
    try:
        start()
    except (RuntimeError, TimeoutError) as exc:
        message = f"cannot start {what}: {exc}"
    else:
        return
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tansu broker (memory storage) for the whole session; yields its bootstrap ``host:port``."""
    server = TansuBroker(free_port(), log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    _start_or_fail("the test broker", server.start)
    try:
        yield server.bootstrap
    finally:
        server.stop()


@pytest.fixture(scope="session")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An influxd (1.x) with its data in a session tmp dir; yields its URL ``http://127.0.0.1:PORT``."""
    server = LocalInfluxDB(tmp_path_factory.mktemp("influxdb"), free_port())
    _start_or_fail("the test InfluxDB", server.start)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A short name unique to this test run, usable as a Kafka topic, consumer group or database."""
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    stem = stem.removeprefix("test_")[:16].rstrip("_") or "t"
    return f"{stem}_{uuid.uuid4().hex[:8]}"
