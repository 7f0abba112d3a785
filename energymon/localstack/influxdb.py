"""A private influxd (InfluxDB 1.x, v1 API) with every file under one data directory. The stdlib-only
helpers for its ``/query`` API live in ``streams.sinks.influxql`` (the sink needs them too) and are
re-exported here for the local stack and the tests.

The configuration is generated from ``influxd config`` (the binary's own defaults, so it matches the
installed version), with meta/data/wal under ``data_dir``, HTTP on ``127.0.0.1:PORT``, the RPC
(backup/restore) bind address on another free loopback port instead of 8088, usage reporting off,
HTTP request logging off and the ``_internal`` monitor database off (it would write every 10 s).
Nothing under /var/lib/influxdb is touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from energymon.localstack.ports import free_port
from energymon.localstack.process import ManagedProcess
from energymon.localstack.server import LocalServer
from streams.sinks.influxql import InfluxError, create_database, ping, query, quote_ident

__all__ = ["InfluxError", "LocalInfluxDB", "create_database", "ping", "query", "quote_ident"]

_INFLUXD_RPC_DEFAULT = 8088



def influxd_binary() -> str:
    """The path of ``influxd``; RuntimeError naming the package to install when it is missing."""
    found = shutil.which("influxd")
    if found is None:
        raise RuntimeError(
            "influxd (InfluxDB 1.x) is not on PATH: install it with `apt-get install influxdb` "
            "(Debian/Ubuntu; the test suite and `energymon up` start their own instance)"
        )
    return found


def _child_env() -> dict[str, str]:
    """This process's environment without INFLUXDB_* variables (influxd lets them override the config)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}


class LocalInfluxDB(LocalServer):
    """influxd with its config, pid file, meta/data/wal dirs (and by default its log) under ``data_dir``."""

    program = "influxd"
    port_role = "influxd"
    readiness = "/ping"
    poll_s = 0.02

    def __init__(self, data_dir: Path, port: int, log_path: Path | None = None) -> None:
        super().__init__(port)
        self.data_dir = Path(data_dir).absolute()
        self.log_path = Path(log_path) if log_path is not None else self.data_dir / "influxd.log"
        self.config_path = self.data_dir / "influxdb.conf"
        self.pid_path = self.data_dir / "influxd.pid"
        self.rpc_port: int | None = None

    @property
    def url(self) -> str:
        """The HTTP API base URL."""
        return f"http://127.0.0.1:{self.port}"

    def _address(self) -> str:
        return self.url

    def write_config(self) -> Path:
        """Generate the config file from ``influxd config`` (picks a fresh RPC port)."""
        binary = influxd_binary()
        # -config /dev/null: the binary's built-in defaults, not whatever /etc/influxdb holds.
        out = subprocess.run(
            [binary, "config", "-config", os.devnull],
            capture_output=True,
            text=True,
            env=_child_env(),
            timeout=30,
            check=False,
        )
        if out.returncode != 0 or not out.stdout.strip():
            raise RuntimeError(f"`{binary} config` failed ({out.returncode}): {out.stderr.strip()}")
        rpc_port = free_port()
        while rpc_port in (_INFLUXD_RPC_DEFAULT, self.port):
            rpc_port = free_port()
        self.rpc_port = rpc_port
        text = render_config(out.stdout, self.data_dir, self.port, rpc_port)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text, encoding="utf-8")
        return self.config_path

    def start(self, timeout_s: float = 15.0) -> None:
        """Start influxd and wait until ``GET /ping`` answers 204."""
        super().start(timeout_s)

    def _new_process(self) -> ManagedProcess:
        self.write_config()
        argv = [influxd_binary(), "run", "-config", str(self.config_path), "-pidfile", str(self.pid_path)]
        return ManagedProcess("influxd", argv, self.log_path, env=_child_env(), cwd=self.data_dir)

    def _ready(self, remaining_s: float) -> bool:
        return ping(self.url, timeout_s=1.0)


# -- config ------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _toml_value(value: str | bool | int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def set_option(text: str, section: str | None, key: str, value: str | bool | int) -> str:
    """Set ``key`` in ``[section]`` (None: the top level) of a TOML text, adding it if missing.

    Only plain ``[tables]`` are edited (not ``[[arrays]]``); comments and layout are kept.
    """
    lines = text.splitlines()
    current: str | None = None
    is_array = False
    insert_at: int | None = 0 if section is None else None
    key_re = re.compile(rf"^(\s*){re.escape(key)}\s*=")
    rendered = f"{key} = {_toml_value(value)}"
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            if current == section and not is_array and insert_at is not None:
                break  # end of the wanted section: key not there
            current, is_array = header.group(2), header.group(1) == "[["
            if current == section and not is_array:
                insert_at = i + 1
            continue
        if current == section and not is_array:
            match = key_re.match(line)
            if match:
                lines[i] = match.group(1) + rendered
                return "\n".join(lines) + "\n"
    if insert_at is None:  # no such section at all
        lines += ["", f"[{section}]"]
        insert_at = len(lines)
    indent = "  " if section is not None else ""
    lines.insert(insert_at, indent + rendered)
    return "\n".join(lines) + "\n"


def render_config(defaults: str, data_dir: Path, http_port: int, rpc_port: int) -> str:
    """The ``influxd config`` output adapted to a private instance under ``data_dir``."""
    if rpc_port == _INFLUXD_RPC_DEFAULT:
        raise ValueError("the RPC port must not be 8088 (another influxd may own it)")
    data_dir = Path(data_dir).absolute()
    text = defaults
    # Upstream calls it reporting-disabled; Debian's build renames it reporting-enabled.
    if re.search(r"(?m)^\s*reporting-enabled\s*=", text):
        text = set_option(text, None, "reporting-enabled", False)
    else:
        text = set_option(text, None, "reporting-disabled", True)
    settings: list[tuple[str | None, str, str | bool | int]] = [
        (None, "bind-address", f"127.0.0.1:{rpc_port}"),
        ("meta", "dir", str(data_dir / "meta")),
        ("data", "dir", str(data_dir / "data")),
        ("data", "wal-dir", str(data_dir / "wal")),
        ("http", "bind-address", f"127.0.0.1:{http_port}"),
        ("http", "log-enabled", False),
        ("http", "unix-socket-enabled", False),
        ("http", "bind-socket", str(data_dir / "influxd.sock")),
        ("monitor", "store-enabled", False),
        ("logging", "suppress-logo", True),
    ]
    for section, key, value in settings:
        text = set_option(text, section, key, value)
    _check_config(text, data_dir, http_port, rpc_port)
    return text


def _check_config(text: str, data_dir: Path, http_port: int, rpc_port: int) -> None:
    """Parse the rendered config back and make sure the settings that matter took effect."""
    conf = tomllib.loads(text)
    expected = {
        ("bind-address",): f"127.0.0.1:{rpc_port}",
        ("meta", "dir"): str(data_dir / "meta"),
        ("data", "dir"): str(data_dir / "data"),
        ("data", "wal-dir"): str(data_dir / "wal"),
        ("http", "bind-address"): f"127.0.0.1:{http_port}",
        ("http", "log-enabled"): False,
    }
    for path, want in expected.items():
        node: Any = conf
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node != want:
            raise RuntimeError(f"generated influxd config: {'.'.join(path)} is {node!r}, expected {want!r}")
