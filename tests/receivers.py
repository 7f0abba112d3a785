"""Real local peers for tests: an HTTP server that records webhook requests.

``WebhookReceiver`` listens on 127.0.0.1 on a free port in a background thread, records every request
(method, path, headers, body, the status it answered), checks the ``X-Energymon-Signature`` HMAC when
it is given the secret, and can be told to fail or stall the next N requests.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from energymon.localstack.ports import free_port as free_port  # re-exported for the tests
from energymon.localstack.service import Service

SIGNATURE_HEADER = "X-Energymon-Signature"
DELIVERY_HEADER = "X-Energymon-Delivery"


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    signature_ok: bool | None
    """None when the receiver has no secret; else whether the signature header verified."""

    def header(self, name: str) -> str | None:
        """A header's value, matched case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return 200 <= self.status < 300


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    delay_s: float
    headers: tuple[tuple[str, str], ...]


class WebhookReceiver(Service):
    """A real HTTP endpoint that records requests. Use as a context manager."""

    def __init__(self, secret: str | None = None, path: str = "/hook") -> None:
        self.secret = secret
        self.path = path
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._requests: list[ReceivedRequest] = []
        self._script: deque[_Answer] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        """Bind 127.0.0.1:<free port> and serve in a daemon thread."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            do_PUT = do_POST
            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._server is None:
            raise RuntimeError("receiver not started")
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/hook``."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    # -- behaviour --------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int = 503,
        body: bytes = b"try again later",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``status`` to the next ``n`` requests (then 200 again)."""
        answer = _Answer(status, body, 0.0, tuple((headers or {}).items()))
        with self._lock:
            self._script.extend([answer] * n)

    def stall_next(self, n: int, delay_s: float, status: int = 200) -> None:
        """Wait ``delay_s`` before answering each of the next ``n`` requests (to provoke timeouts)."""
        with self._lock:
            self._script.extend([_Answer(status, b"", delay_s, ())] * n)

    # -- what arrived -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def accepted(self) -> list[ReceivedRequest]:
        """The requests answered 2xx."""
        return [r for r in self.requests if r.ok]

    def wait_for(self, n: int, timeout_s: float = 10.0, *, accepted: bool = False) -> list[ReceivedRequest]:
        """Block until ``n`` requests (only 2xx-answered ones with ``accepted``) have arrived.

        Returns them all; raises ``TimeoutError`` naming how many did arrive.
        """
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while True:
                seen = [r for r in self._requests if r.ok] if accepted else list(self._requests)
                if len(seen) >= n:
                    return seen
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(seen)} of {n} requests arrived within {timeout_s} s")
                self._arrived.wait(left)

    # -- the server side --------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            answer = self._script.popleft() if self._script else _Answer(200, b"ok", 0.0, ())
        signature_ok: bool | None = None
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            given = handler.headers.get(SIGNATURE_HEADER)
            signature_ok = given is not None and hmac.compare_digest(expected, given)
        request = ReceivedRequest(
            method=handler.command,
            path=handler.path,
            headers=dict(handler.headers.items()),
            body=body,
            status=answer.status,
            signature_ok=signature_ok,
        )
        with self._arrived:  # recorded before answering: once the client has its answer, it is here
            self._requests.append(request)
            self._arrived.notify_all()
        if answer.delay_s:
            time.sleep(answer.delay_s)
        try:
            handler.send_response(answer.status)
            for name, value in answer.headers:
                handler.send_header(name, value)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(answer.body)))
            handler.end_headers()
            handler.wfile.write(answer.body)
        except OSError:
            pass  # the client gave up (timeout)
