"""What the benchmark runs on: the broker and InfluxDB (its own, on free ports, or the configured
ones), the systems under test as child processes, and meters of their CPU time and memory."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from energy import topics
from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.influxdb import LocalInfluxDB, create_database, query
from energymon.localstack.ports import free_port
from energymon.localstack.process import ManagedProcess
from energymon.localstack.server import LocalServer
from energymon.settings import Settings
from streams.status import STATUS_FILE, read_status

#: The topics the worker reads and writes (created up front: tansu's auto-created topics would do,
#: but the peers' Quix Streams app wants its topics to exist).
WORKER_TOPICS = (topics.READINGS, topics.READINGS_REJECTED, topics.OUTPUT, topics.REGISTRY, topics.ALERTS)


@dataclass
class Backends:
    """Where the benchmark's broker and InfluxDB are, and the servers it started itself."""

    bootstrap: str
    influx_url: str
    influx_auth: tuple[str | None, str | None]
    kafka_options: dict[str, Any]
    tansu: bool
    servers: list[LocalServer] = field(default_factory=list)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()

    def create_topics(self, names: Iterable[str], partitions: int) -> None:
        options = {k: v for k, v in self.kafka_options.items() if k != "bootstrap_servers"}
        create_topics(self.bootstrap, names, partitions, **options)

    def create_database(self, name: str) -> None:
        create_database(self.influx_url, name, *self.influx_auth)

    def query(self, database: str, q: str) -> list[dict[str, Any]]:
        return query(self.influx_url, database, q, *self.influx_auth, epoch="ms")


def start_backends(settings: Settings, workdir: Path, configured: bool) -> Backends:
    """The configured broker and InfluxDB (``configured``), else a tansu broker and an influxd of
    our own on free ports, with their data and logs under ``workdir``."""
    if configured:
        influx = settings.influx
        password = influx.password.get_secret_value() if influx.password else None
        return Backends(
            bootstrap=settings.kafka.servers(),
            influx_url=influx.base_url(),
            influx_auth=(influx.username, password),
            kafka_options=settings.kafka.kafka_python_options(),
            tansu=settings.kafka.tansu,
        )
    broker = TansuBroker(free_port(), workdir / "tansu.log")
    influxd = LocalInfluxDB(workdir / "influxdb", free_port(), workdir / "influxd.log")
    backends = Backends(
        bootstrap=broker.bootstrap,
        influx_url=influxd.url,
        influx_auth=(None, None),
        kafka_options={"bootstrap_servers": broker.bootstrap},
        tansu=True,
    )
    try:
        broker.start()
        backends.servers.append(broker)
        influxd.start()
        backends.servers.append(influxd)
    except BaseException:
        backends.stop()
        raise
    return backends


def worker_env(backends: Backends, database: str, state_dir: Path) -> dict[str, str]:
    """The worker's environment: this process's (so ENERGYMON_* settings such as the batch size
    apply) pointed at the benchmark's broker, InfluxDB and database, with an in-memory table store,
    its own state directory and its own app id (consumer group and changelog topics). The tansu
    workarounds are on with a broker of our own unless ENERGYMON_KAFKA__TANSU says otherwise."""
    return {
        **os.environ,
        "ENERGYMON_KAFKA__BOOTSTRAP_SERVERS": backends.bootstrap,
        "ENERGYMON_KAFKA__TANSU": os.environ.get(
            "ENERGYMON_KAFKA__TANSU", "true" if backends.tansu else "false"
        ),
        "ENERGYMON_INFLUX__URL": backends.influx_url,
        "ENERGYMON_INFLUX__DATABASE": database,
        "ENERGYMON_STATE_DIR": str(state_dir),
        "ENERGYMON_STREAM__STORE": "memory://",
        "ENERGYMON_STREAM__APP_ID": f"energymon-bench-{uuid.uuid4().hex[:8]}",
        "PYTHONUNBUFFERED": "1",
    }


def worker_argv(profile: Path | None) -> list[str]:
    """``energymon worker`` run by this interpreter; under pyinstrument when ``profile`` names the
    report to write (its renderer from the suffix: .html, .txt, .json → speedscope)."""
    if profile is None:
        return [sys.executable, "-m", "energymon", "worker"]
    renderer = {".txt": "text", ".json": "speedscope"}.get(profile.suffix, "html")
    return [
        sys.executable, "-m", "pyinstrument", "-r", renderer, "-o", str(profile),
        "-m", "energymon", "worker",
    ]  # fmt: skip


class WorkerProcess:
    """The real ``energymon worker`` as a child process, and its status file."""

    def __init__(self, env: dict[str, str], state_dir: Path, log_path: Path, profile: Path | None) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.status_path = state_dir / STATUS_FILE
        self.process = ManagedProcess("worker", worker_argv(profile), log_path, env=env)

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop(30.0)

    def status(self) -> dict[str, Any]:
        """The worker's last status (``streams.status``; empty before the first)."""
        return read_status(self.status_path) or {}


class ProcessMeter:
    """CPU time and memory of a child process (psutil). The peak RSS is the kernel's high-water mark
    (``VmHWM``) where there is one, else the largest of samples taken every ``sample_s``."""

    def __init__(self, pid: int, sample_s: float = 0.1) -> None:
        self.proc = psutil.Process(pid)
        self._sampled_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(sample_s,), daemon=True)
        self._thread.start()

    def _sample(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self._sampled_peak = max(self._sampled_peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def cpu_s(self) -> float:
        """User + system CPU seconds so far."""
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def rss(self) -> int:
        """Resident memory now (bytes)."""
        return int(self.proc.memory_info().rss)

    def peak_rss(self) -> int:
        """Peak resident memory so far (bytes)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return max(self._sampled_peak, self.rss())

    def close(self) -> None:
        self._stop.set()


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout_s: float,
    process: ManagedProcess | None = None,
    poll_s: float = 0.1,
) -> Any:
    """Poll ``check`` until it returns something truthy (returned); RuntimeError with the log tail
    of ``process`` when it exits meanwhile, or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if process is not None and not process.alive:
            raise RuntimeError(f"{process.name} exited while waiting for {what}:\n{process.log_tail(30)}")
        if time.monotonic() > deadline:
            tail = f"; {process.name} log tail:\n{process.log_tail(15)}" if process is not None else ""
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}{tail}")
        time.sleep(poll_s)
