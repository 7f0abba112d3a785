"""What the end-to-end tests share: waiting on a condition while watching child processes, the
environment of a local worker, and per-unit sums read back from InfluxDB."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from energymon.localstack.influxdb import query
from energymon.localstack.process import ManagedProcess


def wait_until(
    what: str,
    check: Callable[[], Any],
    timeout_s: float = 60.0,
    children: Iterable[ManagedProcess] = (),
    poll_s: float = 0.25,
) -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail with the log tail of any
    of ``children`` that exits meanwhile, or after ``timeout_s`` with the log tails of all of them."""
    children = list(children)
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        for child in children:
            if not child.alive:
                raise AssertionError(f"{child.name} exited while waiting for {what}:\n{child.log_tail(30)}")
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {child.name} log tail\n{child.log_tail(15)}" for child in children)
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{tails}")
        time.sleep(poll_s)


class Quiet:
    """A check for :func:`wait_until`: true once ``probe()`` has returned the same value for
    ``quiet_s`` seconds in a row."""

    def __init__(self, probe: Callable[[], Any], quiet_s: float) -> None:
        self.probe, self.quiet_s = probe, quiet_s
        self.last: Any = None
        self.since = time.monotonic()

    def __call__(self) -> bool:
        now = self.probe()
        if now != self.last:
            self.last, self.since = now, time.monotonic()
            return False
        return time.monotonic() - self.since >= self.quiet_s


def worker_env(bootstrap: str, influx: str, database: str, state: Path, **extra: str) -> dict[str, str]:
    """The environment of an energymon child process on a tansu broker with an in-memory store."""
    return {
        **os.environ,
        "ENERGYMON_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ENERGYMON_KAFKA__TANSU": "true",
        "ENERGYMON_INFLUX__URL": influx,
        "ENERGYMON_INFLUX__DATABASE": database,
        "ENERGYMON_STATE_DIR": str(state),
        "ENERGYMON_STREAM__STORE": "memory://",
        "ENERGYMON_STREAM__BATCH_WITHIN_S": "0.2",
        **extra,
    }


def energymon_argv(*args: str) -> list[str]:
    """The command line of ``energymon ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "energymon", *args]


def sums_by_unit(influx: str, database: str, measurement: str) -> dict[str, tuple[float, float, int]]:
    """``unit_id → (sum tce, sum co2_t, number of points)`` of one measurement."""
    series = query(
        influx,
        database,
        f'SELECT sum("tce"), sum("co2_t"), count("tce") FROM "{measurement}" GROUP BY "unit_id"',
    )
    return {s["tags"]["unit_id"]: (s["values"][0][1], s["values"][0][2], s["values"][0][3]) for s in series}


def collect_records(consumer: Any, expected: int, deadline: float) -> list[Any]:
    """Poll an assigned and positioned kafka-python consumer until it has ``expected`` records and
    then one second more (to catch extras), or until ``deadline`` (time.monotonic())."""
    records: list[Any] = []
    quiet_until: float | None = None
    while time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
        if len(records) >= expected:
            if quiet_until is None:
                quiet_until = time.monotonic() + 1.0
            elif time.monotonic() >= quiet_until:
                break
    return records
