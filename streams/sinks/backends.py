"""The writer the settings ask for: InfluxDB 1.x (``/write``) or 2.x/3.x (influxdb-client)."""

from __future__ import annotations

from energymon.settings import InfluxSettings
from streams.sinks.influx_v1 import InfluxV1Transport
from streams.sinks.influx_v2 import InfluxV2Transport
from streams.sinks.retry import Backoff
from streams.sinks.writer import InfluxWriter, Transport


def build_transport(influx: InfluxSettings) -> Transport:
    """The backend of ``influx.backend``; RuntimeError when a v2 token is missing."""
    if influx.backend == "v2":
        if influx.token is None:
            raise RuntimeError(
                "the v2 InfluxDB backend needs a token: "
                "set ENERGYMON_INFLUX__TOKEN or ENERGYMON_INFLUX__TOKEN_FILE"
            )
        return InfluxV2Transport(
            influx.base_url(),
            influx.token.get_secret_value(),
            influx.org,
            influx.bucket_name(),
            timeout_s=influx.timeout_s,
            gzip=influx.gzip,
        )
    return InfluxV1Transport(
        influx.base_url(),
        influx.database,
        influx.username,
        influx.password.get_secret_value() if influx.password else None,
        timeout_s=influx.timeout_s,
        gzip_level=1 if influx.gzip else None,
    )


def build_writer(influx: InfluxSettings) -> InfluxWriter:
    """A batching, retrying writer to the configured InfluxDB."""
    return InfluxWriter(
        build_transport(influx),
        batch_size=influx.batch_size,
        flush_interval_s=influx.flush_interval_s,
        backoff=Backoff(max_s=influx.retry_max_backoff_s),
    )
