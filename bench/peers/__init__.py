"""The peers `energymon bench` measures ours against, each run as its own process
(``python -m bench.peers CONFIG``) on the same broker, InfluxDB and data:

* ``naive`` (:mod:`bench.peers.naive`): a plain kafka-python consumer loop, as example projects
  write it: JSON values, one influxdb-client ``Point`` per reading (its meter's interval so far),
  one POST per message;
* ``quix`` (:mod:`bench.peers.quix`): the same accounting as a Quix Streams app writing each
  meter's interval once its unit's data has moved on, with a batching line-protocol sink.

Both do :mod:`bench.peers.accounting` (the `energy` points per meter and 15-minute interval our
worker writes) and report their counters in a status file (:class:`PeerStatus`) that the benchmark
reads.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from bench.peers.accounting import PeerAccounting, UnitTags
from energy.accounting import AccountingOptions

PEERS = ("naive", "quix")


@dataclass
class PeerStatus:
    """A peer's counters: messages and readings consumed, points written to InfluxDB."""

    messages: int = 0
    readings: int = 0
    points: int = 0

    def write(self, path: Path) -> None:
        """Replace ``path`` atomically with the counters (and the time, epoch s)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**asdict(self), "ts": time.time()}))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> PeerStatus | None:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(doc["messages"], doc["readings"], doc["points"])


@dataclass(frozen=True)
class PeerConfig:
    """Everything a peer process needs (written by the benchmark as a private JSON file)."""

    peer: str
    topic: str
    group: str
    kafka: dict[str, Any]
    influx_url: str
    database: str
    influx_username: str | None
    influx_password: str | None
    units: dict[str, tuple[str, str, str]]
    accounting: dict[str, Any]
    status_path: str
    state_dir: str

    def save(self, path: Path) -> None:
        """Write the config, readable by this user only (it may hold credentials)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f)

    @classmethod
    def load(cls, path: Path) -> PeerConfig:
        doc = json.loads(path.read_text())
        doc["units"] = {k: tuple(v) for k, v in doc["units"].items()}
        return cls(**doc)

    def accounting_job(self) -> PeerAccounting:
        units = {u: UnitTags(region=r, grid_region=g, industry=i) for u, (r, g, i) in self.units.items()}
        return PeerAccounting(units, AccountingOptions(**self.accounting))

    def influx_session(self) -> requests.Session:
        """A requests session for InfluxDB's v1 ``/write`` (basic auth when configured)."""
        session = requests.Session()
        if self.influx_username is not None:
            session.auth = (self.influx_username, self.influx_password or "")
        return session

    def post_lines(self, session: requests.Session, body: str) -> None:
        """POST line protocol (ms precision) to ``/write``; RuntimeError unless InfluxDB took it."""
        resp = session.post(
            f"{self.influx_url.rstrip('/')}/write",
            params={"db": self.database, "precision": "ms"},
            data=body.encode(),
            timeout=30,
        )
        if resp.status_code != 204:
            raise RuntimeError(f"InfluxDB refused a write: HTTP {resp.status_code} {resp.text[:300]}")
