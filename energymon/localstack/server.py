"""A server the local stack starts itself (tansu, influxd): one :class:`ManagedProcess` listening on
``host:port``, started when the port is free and ready once it answers, stopped until the port is
free again."""

from __future__ import annotations

import time
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from energymon.localstack.ports import port_is_free
from energymon.localstack.process import ManagedProcess
from energymon.localstack.service import Service


class LocalServer(Service):
    """The common part of :class:`~energymon.localstack.broker.TansuBroker` and
    :class:`~energymon.localstack.influxdb.LocalInfluxDB`.

    A subclass names its ``program`` (in messages), the ``port_role`` (in the port check), the
    ``readiness`` request it waits for (in the timeout message) and how long to sleep between two
    tries (``poll_s``); it builds the process (:meth:`_new_process`) and asks whether it answers
    (:meth:`_ready`). ``log_path`` is set by the subclass.
    """

    program: ClassVar[str]
    port_role: ClassVar[str]
    readiness: ClassVar[str]
    poll_s: ClassVar[float]
    log_path: Path

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        if not 0 < port < 65536:
            raise ValueError(f"{self.port_role} port must be 1..65535, not {port} (use ports.free_port())")
        self.port = port
        self.host = host
        self._proc: ManagedProcess | None = None

    @property
    def alive(self) -> bool:
        """Whether the server process is running."""
        return self._proc is not None and self._proc.alive

    @property
    def process(self) -> ManagedProcess | None:
        """The server process (for supervisors that watch it)."""
        return self._proc

    def _address(self) -> str:
        """How messages name where it listens."""
        return f"{self.host}:{self.port}"

    @abstractmethod
    def _new_process(self) -> ManagedProcess:
        """The (not yet started) server process; may prepare files first."""

    @abstractmethod
    def _ready(self, remaining_s: float) -> bool:
        """Whether the server answers (raising counts as no); ``remaining_s`` is left of the start timeout."""

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server and wait until it answers; RuntimeError if it exits first, TimeoutError
        if it does not answer within ``timeout_s``."""
        if self.alive:
            return
        if not port_is_free(self.port, self.host):
            raise RuntimeError(f"cannot start {self.program}: {self.host}:{self.port} is already in use")
        proc = self._proc = self._new_process()
        proc.start()
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while True:
            if not proc.alive:
                code = proc.returncode
                tail = proc.log_tail()
                proc.stop()
                raise RuntimeError(
                    f"{self.program} exited with status {code} while starting on {self._address()}; "
                    f"log {self.log_path}:\n{tail}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = proc.log_tail()
                proc.stop()
                raise TimeoutError(
                    f"{self.program} on {self._address()} did not answer {self.readiness} within "
                    f"{timeout_s:g} s (last error: {last_error!r}); log {self.log_path}:\n{tail}"
                )
            try:
                if self._ready(remaining):
                    return
            except Exception as exc:
                last_error = exc
            time.sleep(self.poll_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server process (its stop signal, SIGKILL after ``timeout_s``); idempotent.
        Afterwards the port is free (waits up to 2 s for it)."""
        if self._proc is None:
            return
        self._proc.stop(timeout_s)
        deadline = time.monotonic() + 2.0
        while not port_is_free(self.port, self.host) and time.monotonic() < deadline:
            time.sleep(0.02)
