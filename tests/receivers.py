"""Real local peers for tests: HTTP servers that record webhook and chat-robot requests.

``WebhookReceiver`` listens on 127.0.0.1 on a free port in a background thread, records every request
(method, path, headers, body, the status it answered), checks the ``X-Energymon-Signature`` HMAC when
it is given the secret, and can be told to fail or stall the next N requests.

``DingTalkReceiver`` and ``WeComReceiver`` are the same server speaking as a DingTalk custom robot and
a WeCom group robot: a token in the URL's query, a JSON ``errcode`` answer (``errcode_next`` scripts
errors), and each request's ``problems`` (format, size, DingTalk's timestamp and signature) recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

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
    problems: tuple[str, ...] = ()
    """What a robot receiver found wrong with the request (format, size, token); empty when fine."""

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

    default_answer = _Answer(200, b"ok", 0.0, ())
    content_type = "text/plain"

    def __init__(self, secret: str | None = None, path: str = "/hook", port: int = 0) -> None:
        self.secret = secret
        self.path = path
        self._port = port
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._requests: list[ReceivedRequest] = []
        self._script: deque[_Answer] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        """Bind 127.0.0.1:<port> (a free one unless a port was given) and serve in a daemon thread."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            do_PUT = do_POST
            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
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

    def inspect(self, path: str, headers: dict[str, str], body: bytes) -> tuple[bool | None, tuple[str, ...]]:
        """(signature_ok, problems) of a request: the ``X-Energymon-Signature`` HMAC with the secret."""
        if self.secret is None:
            return None, ()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
        return given is not None and hmac.compare_digest(expected, given), ()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            answer = self._script.popleft() if self._script else self.default_answer
        headers = dict(handler.headers.items())
        signature_ok, problems = self.inspect(handler.path, headers, body)
        request = ReceivedRequest(
            method=handler.command,
            path=handler.path,
            headers=headers,
            body=body,
            status=answer.status,
            signature_ok=signature_ok,
            problems=problems,
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
            handler.send_header("Content-Type", self.content_type)
            handler.send_header("Content-Length", str(len(answer.body)))
            handler.end_headers()
            handler.wfile.write(answer.body)
        except OSError:
            pass  # the client gave up (timeout)


class _RobotReceiver(WebhookReceiver):
    """A chat robot: ``<path>?<token_param>=<token>``, answers ``{"errcode": 0, "errmsg": "ok"}``."""

    token_param = "access_token"
    default_answer = _Answer(200, b'{"errcode":0,"errmsg":"ok"}', 0.0, ())
    content_type = "application/json"

    def __init__(self, token: str = "tok-123", secret: str | None = None, path: str = "/robot/send") -> None:
        super().__init__(secret=secret, path=path)
        self.token = token

    @property
    def url(self) -> str:
        """The robot's webhook URL, token in the query."""
        return f"{super().url}?{urllib.parse.urlencode({self.token_param: self.token})}"

    def errcode_next(self, n: int, errcode: int, errmsg: str) -> None:
        """Answer HTTP 200 with ``errcode`` to the next ``n`` requests."""
        self.fail_next(n, 200, orjson.dumps({"errcode": errcode, "errmsg": errmsg}))

    def inspect(self, path: str, headers: dict[str, str], body: bytes) -> tuple[bool | None, tuple[str, ...]]:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        problems = [] if query.get(self.token_param) == self.token else [f"wrong {self.token_param}"]
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None, (*problems, "body is not UTF-8 JSON")
        problems += self.check_message(message, len(body))
        signature_ok = self.check_signature(query)
        return signature_ok, tuple(problems)

    def check_message(self, message: Any, size: int) -> list[str]:
        """What is wrong with the posted JSON."""
        raise NotImplementedError

    def check_signature(self, query: dict[str, str]) -> bool | None:
        """Whether the query's signature is valid (None: the robot is not signed)."""
        return None


def _markdown_fields(message: Any, fields: tuple[str, ...]) -> list[str]:
    if not isinstance(message, dict) or message.get("msgtype") != "markdown":
        return ["msgtype is not markdown"]
    markdown = message.get("markdown")
    if not isinstance(markdown, dict):
        return ["no markdown object"]
    return [f"markdown.{f} is missing or empty" for f in fields if not _text(markdown.get(f))]


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


class DingTalkReceiver(_RobotReceiver):
    """A DingTalk custom robot. With a ``secret`` it checks ``timestamp`` (within ``max_skew_s`` of
    now, an hour like DingTalk) and ``sign`` = base64 HMAC-SHA256(secret, ``timestamp\nsecret``)."""

    max_skew_s = 3600.0

    def check_message(self, message: Any, size: int) -> list[str]:
        return _markdown_fields(message, ("title", "text"))

    def check_signature(self, query: dict[str, str]) -> bool | None:
        if self.secret is None:
            return None
        timestamp, sign = query.get("timestamp", ""), query.get("sign")
        if not timestamp.isdigit() or sign is None:
            return False
        if abs(int(timestamp) / 1000 - time.time()) > self.max_skew_s:
            return False
        digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256)
        return hmac.compare_digest(base64.b64encode(digest.digest()).decode(), sign)


class WeComReceiver(_RobotReceiver):
    """A WeCom group robot: ``?key=…``, markdown content of at most ``max_content_bytes`` (4096)."""

    token_param = "key"
    max_content_bytes = 4096

    def check_message(self, message: Any, size: int) -> list[str]:
        problems = _markdown_fields(message, ("content",))
        if not problems and len(message["markdown"]["content"].encode()) > self.max_content_bytes:
            problems.append(f"markdown.content longer than {self.max_content_bytes} bytes")
        return problems
