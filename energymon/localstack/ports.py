"""TCP port helpers for the servers the local stack and the tests start themselves."""

from __future__ import annotations

import socket
import time


def _bind_probe(host: str, port: int) -> socket.socket:
    """Bind (without listening) a TCP socket the way servers do (SO_REUSEADDR: TIME_WAIT is no obstacle)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (the kernel's choice)."""
    with _bind_probe(host, 0) as sock:
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``host:port`` now (sockets in TIME_WAIT do not count)."""
    try:
        with _bind_probe(host, port):
            return True
    except OSError:
        return False


def pick_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` when it is free, else any free port; ``preferred=0`` means any free port."""
    if preferred and port_is_free(preferred, host):
        return preferred
    return free_port(host)


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    """Block until something accepts TCP connections on ``host:port``; TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_error: OSError | None = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(1.0, max(timeout_s, 0.05))):
                return
        except OSError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"nothing accepted TCP connections on {host}:{port} within {timeout_s:g} s "
                f"(last error: {last_error})"
            )
        time.sleep(0.02)
