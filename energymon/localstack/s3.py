"""A local S3 server (moto's ``moto_server``, in memory) for tansu's ``s3://`` storage.

tansu keeps its log, offsets and groups in the bucket, so a broker stopped and started again on the
same S3 server keeps everything (stack.md). The data live in the moto process: they last as long as
it runs, across any number of broker restarts. For tests and the fault runs only; the credentials
are moto's fixed dummies, not secrets.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from energymon.localstack.process import ManagedProcess
from energymon.localstack.server import LocalServer

INSTALL_HINT = "pip install 'moto[server]'  (in .venv already: `make install`)"
#: The region and dummy credentials every client of the local server uses (moto accepts any).
DUMMY_REGION = "us-east-1"
_DUMMY_KEY = "test"


class LocalS3(LocalServer):
    """``moto_server`` on ``127.0.0.1:PORT`` with ``buckets`` created once it answers."""

    program = "moto_server"
    port_role = "S3 server"
    readiness = "GET /"
    poll_s = 0.05

    def __init__(self, port: int, log_path: Path, buckets: tuple[str, ...] = ("tansu",)) -> None:
        super().__init__(port)
        self.log_path = Path(log_path)
        self.buckets = buckets

    @property
    def url(self) -> str:
        """The endpoint, ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def _address(self) -> str:
        return self.url

    def client_env(self) -> dict[str, str]:
        """The environment an S3 client (tansu's object_store) needs to use this server."""
        return {
            "AWS_ACCESS_KEY_ID": _DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": _DUMMY_KEY,
            "AWS_DEFAULT_REGION": DUMMY_REGION,
            "AWS_ENDPOINT": self.url,
            "AWS_ALLOW_HTTP": "true",
        }

    def start(self, timeout_s: float = 30.0) -> None:
        """Start moto (importing it takes seconds on a busy machine) and create the buckets."""
        super().start(timeout_s)
        for bucket in self.buckets:
            request = urllib.request.Request(f"{self.url}/{bucket}", method="PUT")
            with urllib.request.urlopen(request, timeout=10) as answer:  # idempotent on moto
                answer.read()

    def _new_process(self) -> ManagedProcess:
        if importlib.util.find_spec("moto") is None:
            raise RuntimeError(f"the local S3 server is moto's, which is not installed: {INSTALL_HINT}")
        argv = [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        return ManagedProcess("moto_server", argv, self.log_path, env=env)

    def _ready(self, remaining_s: float) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=min(remaining_s, 2.0)) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False
