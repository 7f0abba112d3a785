"""One child process in its own process group, logging to a file, stopped with its whole group.

Used by the tansu broker, the local influxd and the ``energymon up`` supervisor (Faust worker,
simulator, ...). Children never outlive the parent on purpose:

* :meth:`ManagedProcess.stop` sends SIGTERM (or the ``stop_signal`` given) to the child's process
  group, SIGKILL after the timeout, and finally SIGKILL to anything left in the group;
* an ``atexit`` hook stops every child still running when the interpreter exits normally;
* on Linux the child gets ``PR_SET_PDEATHSIG`` (with ``stop_signal``), so it is told to stop even when the
  parent dies from SIGKILL. Caveat of the kernel feature: the signal fires when the *thread* that
  started the child exits, so start long-lived children from the main thread (or a thread that
  lives as long as they should), or pass ``die_with_parent=False``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from energymon.localstack.service import Service

_PR_SET_PDEATHSIG = 1
_LIVE: set[ManagedProcess] = set()  # started and not yet stopped (strong refs: see stop_all)
_LIVE_LOCK = threading.Lock()


def _pdeathsig_setup(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to send ``sig`` to the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def setup() -> None:  # runs in the child between fork and exec: keep it tiny
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return setup


class ManagedProcess(Service):
    """A child process with its own process group whose stdout and stderr go to ``log_path``.

    ``env`` is the child's complete environment (``None``: inherit this process's). The log file is
    appended to; :meth:`log_tail` only shows what the current run wrote. ``stop_signal`` is what
    :meth:`stop` sends first (SIGTERM; some programs shut down faster on SIGINT).
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        *,
        stop_signal: int = signal.SIGTERM,
        die_with_parent: bool = True,
    ) -> None:
        if not argv:
            raise ValueError(f"{name}: empty argv")
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.die_with_parent = die_with_parent
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._group_cleared = True
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} alive={self.alive}>"

    # -- state ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The child's pid (also its process-group id); None before the first start."""
        return self._popen.pid if self._popen is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status once the child has exited (negative: killed by that signal), else None."""
        return self._popen.poll() if self._popen is not None else None

    @property
    def alive(self) -> bool:
        """Whether the child has been started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the child; raises RuntimeError if it is already running or cannot be executed."""
        with self._lock:
            if self.alive:
                raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                log.write(f"--- {stamp} {self.name}: {shlex.join(self.argv)}\n".encode())
                log.flush()
                self._log_offset = log.tell()
                preexec = _pdeathsig_setup(self.stop_signal) if self.die_with_parent else None
                try:
                    self._popen = subprocess.Popen(
                        self.argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=self.env,
                        cwd=self.cwd,
                        start_new_session=True,  # own session and process group (pgid == pid)
                        preexec_fn=preexec,  # only prctl(), see _pdeathsig_setup
                        close_fds=True,
                    )
                except OSError as exc:
                    self._popen = None
                    raise RuntimeError(f"{self.name}: cannot run {self.argv[0]}: {exc}") from exc
                self._group_cleared = False
            with _LIVE_LOCK:
                _LIVE.add(self)

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Wait for the child to exit by itself; its exit status, or None if still running at the timeout."""
        if self._popen is None:
            return None
        try:
            return self._popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """Send ``stop_signal`` to the process group, SIGKILL it after ``timeout_s``; idempotent.

        Returns the exit status (negative: killed by that signal).
        """
        with self._lock:
            popen = self._popen
            if popen is None:
                return None
            pgid = popen.pid
            if popen.returncode is None:
                _killpg(pgid, self.stop_signal)
                if not _wait_exited(pgid, timeout_s):
                    _killpg(pgid, signal.SIGKILL)
            if not self._group_cleared:
                # Whatever is left in the group (grandchildren that ignored SIGTERM or were slower).
                # A pid stays allocated while it names a live process group, so this cannot hit
                # an unrelated process; the leader is usually still an unreaped zombie here.
                _killpg(pgid, signal.SIGKILL)
                self._group_cleared = True
            code = popen.wait()
            with _LIVE_LOCK:
                _LIVE.discard(self)
            return code

    # -- logs ----------------------------------------------------------------------------------

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines the current (or last) run wrote to its log."""
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                start = max(self._log_offset, size - 64 * 1024)
                log.seek(start)
                data = log.read()
        except OSError:
            return ""
        text = data.decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_exited(pid: int, timeout_s: float) -> bool:
    """Wait (without reaping) until ``pid`` has exited; False on timeout."""
    deadline = time.monotonic() + max(timeout_s, 0.0)
    delay = 0.005
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # already reaped by someone else
            return True
        if info is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def stop_all(timeout_s: float = 5.0) -> None:
    """Stop every child still running (registered with ``atexit``)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        with contextlib.suppress(Exception):
            proc.stop(timeout_s)


atexit.register(stop_all)
