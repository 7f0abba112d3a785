"""The 1.x backend against the real InfluxDB 1.6.7: gzip bodies, field types, escaping, rejections."""

from __future__ import annotations

import time

import pytest

from energymon.localstack.influxdb import create_database, query
from energymon.settings import InfluxSettings
from streams.sinks.backends import build_writer
from streams.sinks.errors import InfluxWriteRejected
from streams.sinks.measurements import encode_energy, encode_meter_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
NOW_MS = (int(time.time()) - 3600) * 1000


def settings(url: str, database: str, **changes: object) -> InfluxSettings:
    return InfluxSettings(url=url, database=database, **changes)  # type: ignore[arg-type]


async def test_gzip_batches_land_whole_with_float_fields_kept_float(influx: str, unique_name: str) -> None:
    create_database(influx, unique_name)
    writer = build_writer(settings(influx, unique_name, batch_size=500))
    assert writer.transport.headers["Content-Encoding"] == "gzip"  # type: ignore[attr-defined]
    lines = [
        encode_energy(
            f"U{i % 7}", "江苏", "C30", f"M{i % 11}", "electricity", "main", 1.0, 0, 2, i % 2 == 0, NOW_MS + i
        )
        for i in range(2_000)
    ]
    await writer.write([line for line in lines if line])
    await writer.close()
    assert writer.points_written == 2_000 and writer.retries == 0
    [series] = query(influx, unique_name, "SELECT count(qty), sum(qty), sum(tce), sum(co2_t) FROM energy")
    assert series["values"][0][1:] == [2000, 2000.0, 0.0, 4000.0]
    [types] = query(influx, unique_name, "SHOW FIELD KEYS FROM energy")
    assert dict(types["values"]) == {"qty": "float", "tce": "float", "co2_t": "float", "estimated": "boolean"}


async def test_escaped_tags_and_strings_read_back_as_written(influx: str, unique_name: str) -> None:
    """Quotes and backslashes come back as written; a newline comes back as the two characters
    ``\\n`` (escaped so that no backend can take it for the end of a line)."""
    create_database(influx, unique_name)
    writer = build_writer(settings(influx, unique_name))
    unit, meter, detail = "A,B=C D", "M 1=x", 'swap "now"\\\nthen'
    line = encode_meter_event(unit, "江苏", None, meter, "meter_swap", detail, NOW_MS)
    assert line is not None
    await writer.write([line])
    await writer.close()
    [series] = query(influx, unique_name, "SELECT unit_id, meter_id, detail FROM meter_event")
    assert series["values"][0][1:] == [unit, meter, detail.replace("\n", "\\n")]


async def test_a_field_type_conflict_is_rejected_at_once_with_influxdbs_message(
    influx: str, unique_name: str
) -> None:
    create_database(influx, unique_name)
    writer = build_writer(settings(influx, unique_name))
    await writer.write([f"energy,unit_id=U1 qty=1.0 {NOW_MS}"])
    with pytest.raises(InfluxWriteRejected, match="field type conflict") as info:
        await writer.write([f"energy,unit_id=U1 qty=2i {NOW_MS + 1}"])
    await writer.close()
    assert info.value.status == 400 and writer.retries == 0
