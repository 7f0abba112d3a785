"""Retention policies and rollups on InfluxDB 1.x: ``init_influx`` (``energymon influx init``).

Raw points stay in the database's default retention policy (``autogen`` on a new database), kept
``retention_raw``; hourly and daily rollups go to the ``hourly`` and ``daily`` policies, kept
``retention_hourly`` and ``retention_daily``. Continuous queries fill them:

* ``unit_energy``: ``sum(tce)`` and ``sum(co2_t)`` per hour and per China day (00:00 Asia/Shanghai,
  ``time(1d, -8h)``), every tag kept;
* ``unit_status``: ``last(*)`` per hour and per China day (fields named ``last_<field>``).

Each is recomputed over a window long enough for late data (``RESAMPLE … FOR``): 3 h for the hourly
ones (the worker accepts readings up to 2 h late), 2 days for the daily ones, recomputed hourly so
that today's figure grows during the day. A rerun result overwrites the same points.

Idempotent: what exists as configured is left alone, what differs is altered (a retention policy)
or dropped and created again (a continuous query), and the list returned says what was done.
InfluxDB 2.x/3.x have no continuous queries: streams/sinks/README.md gives their equivalent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from energymon.settings import InfluxSettings, Settings
from streams.sinks.influxql import query, quote_ident

HOURLY_RP = "hourly"
DAILY_RP = "daily"
#: A China day starts at 16:00 UTC the day before (Asia/Shanghai is UTC+8, no daylight saving).
CHINA_DAY = "time(1d, -8h)"

_DURATION_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION_PART = re.compile(r"(\d+)(w|d|h|m|s)")


def duration_s(text: str) -> int:
    """Seconds of an InfluxQL duration (``400d``, ``52w``, ``9600h0m0s`` as InfluxDB shows it; ``INF``
    or ``0s``: 0, for ever). ValueError for anything else, or a duration under the 1 h InfluxDB allows."""
    text = text.strip()
    if text.upper() == "INF":
        return 0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not an InfluxQL duration: {text!r} (e.g. 400d, 52w, 8760h, INF)")
    seconds = sum(int(n) * _DURATION_UNITS[u] for n, u in parts)
    if 0 < seconds < 3_600:
        raise ValueError(f"retention {text!r} is shorter than the 1 h InfluxDB allows")
    return seconds


@dataclass(frozen=True)
class Rollup:
    """One continuous query: ``select`` of ``measurement`` per ``interval`` into ``rp``."""

    name: str
    measurement: str
    select: str
    rp: str
    interval: str  # the GROUP BY time(...) clause
    resample: str  # the RESAMPLE clause

    def select_into(self, database: str, raw_rp: str, where: str = "") -> str:
        """The ``SELECT … INTO`` the continuous query runs (``where``: e.g. a time range, to backfill)."""
        db = quote_ident(database)
        m = quote_ident(self.measurement)
        return (
            f"SELECT {self.select} INTO {db}.{quote_ident(self.rp)}.{m} FROM {db}.{quote_ident(raw_rp)}.{m}"
            f"{' WHERE ' + where if where else ''} GROUP BY {self.interval}, *"
        )

    def create(self, database: str, raw_rp: str) -> str:
        """The ``CREATE CONTINUOUS QUERY`` statement."""
        return (
            f"CREATE CONTINUOUS QUERY {quote_ident(self.name)} ON {quote_ident(database)} "
            f"{self.resample} BEGIN {self.select_into(database, raw_rp)} END"
        )


_SUMS = 'sum("tce") AS "tce", sum("co2_t") AS "co2_t"'
ROLLUPS = (
    Rollup("unit_energy_1h", "unit_energy", _SUMS, HOURLY_RP, "time(1h)", "RESAMPLE FOR 3h"),
    Rollup("unit_energy_1d", "unit_energy", _SUMS, DAILY_RP, CHINA_DAY, "RESAMPLE EVERY 1h FOR 2d"),
    Rollup("unit_status_1h", "unit_status", "last(*)", HOURLY_RP, "time(1h)", "RESAMPLE FOR 3h"),
    Rollup("unit_status_1d", "unit_status", "last(*)", DAILY_RP, CHINA_DAY, "RESAMPLE EVERY 1h FOR 2d"),
)


def _same_statement(a: str, b: str) -> bool:
    """Whether two InfluxQL statements are the same but for quoting and spacing (InfluxDB shows its
    stored continuous queries with identifiers unquoted)."""
    return " ".join(a.replace('"', "").split()) == " ".join(b.replace('"', "").split())


class _Influx:
    """InfluxQL against the configured server (no database context)."""

    def __init__(self, influx: InfluxSettings) -> None:
        self.url = influx.base_url()
        self.database = influx.database
        self.username = influx.username
        self.password = influx.password.get_secret_value() if influx.password else None

    def rows(self, q: str, series: str | None = None) -> list[list[object]]:
        """The rows of ``q``'s result (of its series named ``series`` only, when given)."""
        found = query(self.url, self.database, q, self.username, self.password)
        return [list(row) for s in found if series in (None, s.get("name")) for row in s.get("values") or []]

    def run(self, q: str) -> None:
        query(self.url, self.database, q, self.username, self.password)


def init_influx(settings: Settings | InfluxSettings) -> list[str]:
    """Create the database, retention policies and continuous queries (1.x backend) as configured;
    what was done, one line each (a single "nothing to change" line when all was in place)."""
    influx = settings.influx if isinstance(settings, Settings) else settings
    if influx.backend != "v1":
        return [
            "backend v2: nothing done here; create the buckets and downsampling tasks as "
            "streams/sinks/README.md shows (InfluxDB 2.x/3.x have no continuous queries)"
        ]
    db = _Influx(influx)
    done: list[str] = []
    if [influx.database] not in db.rows("SHOW DATABASES"):
        db.run(f"CREATE DATABASE {quote_ident(influx.database)}")
        done.append(f"created database {influx.database}")
    raw_rp = _retention_policies(db, influx, done)
    _continuous_queries(db, influx.database, raw_rp, done)
    return done or [f"nothing to change: database {influx.database} is as configured"]


def _retention_policies(db: _Influx, influx: InfluxSettings, done: list[str]) -> str:
    """Set up the raw, hourly and daily policies; the name of the raw (default) one."""
    on = quote_ident(influx.database)
    shown = db.rows(f"SHOW RETENTION POLICIES ON {on}")  # name, duration, shard duration, replicas, default
    existing = {str(row[0]): (duration_s(str(row[1])), bool(row[4])) for row in shown}
    raw_rp = next(name for name, (_, default) in existing.items() if default)
    wanted = {
        raw_rp: influx.retention_raw,
        HOURLY_RP: influx.retention_hourly,
        DAILY_RP: influx.retention_daily,
    }
    for name, duration in wanted.items():
        seconds = duration_s(duration)
        if name not in existing:
            db.run(f"CREATE RETENTION POLICY {quote_ident(name)} ON {on} DURATION {duration} REPLICATION 1")
            done.append(f"created retention policy {name} ({duration})")
        elif existing[name][0] != seconds:
            db.run(f"ALTER RETENTION POLICY {quote_ident(name)} ON {on} DURATION {duration}")
            done.append(f"set retention policy {name} to {duration}")
    return raw_rp


def _continuous_queries(db: _Influx, database: str, raw_rp: str, done: list[str]) -> None:
    existing = {str(row[0]): str(row[1]) for row in db.rows("SHOW CONTINUOUS QUERIES", database)}
    for rollup in ROLLUPS:
        statement = rollup.create(database, raw_rp)
        current = existing.get(rollup.name)
        if current is not None and _same_statement(current, statement):
            continue
        if current is not None:
            db.run(f"DROP CONTINUOUS QUERY {quote_ident(rollup.name)} ON {quote_ident(database)}")
        db.run(statement)
        done.append(f"{'replaced' if current else 'created'} continuous query {rollup.name}")
