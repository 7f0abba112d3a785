"""The 2.x/3.x backend (influxdb-client) for the write contract: against Debian's victoria-metrics,
which takes line protocol on ``/api/v2/write`` (no InfluxDB 2.x can be installed here), and against
the real InfluxDB 1.6.7, which has no v2 API and answers 404: a failure reaches the caller.

victoria-metrics missing fails these tests with the install command (``make`` installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from energymon.localstack.ports import free_port
from energymon.settings import InfluxSettings
from streams.sinks.backends import build_writer
from streams.sinks.errors import InfluxUnavailable, InfluxWriteRejected
from streams.sinks.measurements import encode_energy
from streams.sinks.retry import Backoff

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
INSTALL = "install it with `apt-get install victoria-metrics` (Debian/Ubuntu; `make test` does)"


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bytes(resp.read())
    except (urllib.error.URLError, OSError):
        return None


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A victoria-metrics of its own; yields its URL."""
    binary = shutil.which("victoria-metrics")
    if binary is None:
        pytest.fail(f"victoria-metrics is not on PATH: {INSTALL}", pytrace=False)
    port, data = free_port(), tmp_path_factory.mktemp("victoria")
    argv = [
        binary,
        f"-storageDataPath={data}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=100y",
        "-selfScrapeInterval=0",
        "-loggerLevel=ERROR",
    ]
    with (data / "victoria.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while _get(url + "/health") is None:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"victoria-metrics did not start: see {data / 'victoria.log'}", pytrace=False)
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def exported(url: str, metric: str, count: int) -> dict[tuple[str, str], list[float]]:
    """(unit_id, meter_id) → values of ``metric``, once ``count`` values are searchable."""
    query = urllib.parse.urlencode({"match[]": metric})
    deadline = time.monotonic() + 20
    while True:
        _get(f"{url}/internal/force_flush")  # make what it took searchable now
        rows = [json.loads(r) for r in (_get(f"{url}/api/v1/export?{query}") or b"").splitlines()]
        found = {(r["metric"]["unit_id"], r["metric"]["meter_id"]): r["values"] for r in rows}
        if sum(map(len, found.values())) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def v2_settings(url: str, **changes: object) -> InfluxSettings:
    return InfluxSettings(url=url, backend="v2", token="t0ken", org="o", bucket="b", **changes)  # type: ignore[arg-type]


async def test_points_written_through_influxdb_client_are_all_there(victoria: str) -> None:
    writer = build_writer(v2_settings(victoria, batch_size=1_000))
    start_ms = (int(time.time()) - 3600) * 1000
    lines = [
        encode_energy(
            f"U{i % 5}", "江苏", None, f"M {i % 3}", "electricity", "sub", 0.5, 0.25, 1.0, False, start_ms + i
        )
        for i in range(3_000)
    ]
    await writer.write([line for line in lines if line])
    await writer.close()
    assert writer.points_written == 3_000 and writer.retries == 0
    tce = exported(victoria, "energy_tce", 3_000)
    assert sum(map(len, tce.values())) == 3_000 and sum(map(sum, tce.values())) == 750.0
    assert ("U1", "M 1") in tce  # an escaped tag value read back as written


async def test_a_server_without_the_v2_api_is_a_rejection_raised_to_the_caller(influx: str) -> None:
    writer = build_writer(v2_settings(influx))
    with pytest.raises(InfluxWriteRejected) as info:
        await writer.write([f"energy,unit_id=U1 tce=1.0 {int(time.time() * 1000)}"])
    await writer.close()
    assert info.value.status == 404 and writer.retries == 0


async def test_an_unreachable_server_is_retried_and_its_error_reaches_the_caller() -> None:
    writer = build_writer(v2_settings(f"http://127.0.0.1:{free_port()}", timeout_s=1.0))
    writer.backoff = Backoff(initial_s=0.01, max_s=0.01, max_attempts=3)
    with pytest.raises(InfluxUnavailable):
        await writer.write([f"energy,unit_id=U1 tce=1.0 {int(time.time() * 1000)}"])
    await writer.close()
    assert writer.retries == 2
