"""Our InfluxDB measurements (ARCHITECTURE.md) and their precompiled encoders.

Each ``encode_*`` takes the tag values in the order of ``tags`` (None or "" leaves a tag out), then
the declared fields, then (``unit_status`` only) a mapping of its fields, then ``ts_ms`` (epoch
ms), and returns the line or None:

* ``encode_energy(unit_id, region, industry, meter_id, energy, role, qty, tce, co2_t, estimated,
  ts_ms)``
* ``encode_unit_energy(unit_id, region, industry, tce, co2_t, ts_ms)``
* ``encode_unit_status(unit_id, region, industry, fields, ts_ms)``
* ``encode_meter_event(unit_id, region, industry, meter_id, event, detail, ts_ms)``
* ``encode_alert(unit_id, region, industry, rule, severity, state, message, value, threshold, ts_ms)``
* ``encode_data_quality(unit_id, region, industry, completeness_pct, expected, received, late,
  rejected, ts_ms)``

``energy.role`` is the meter's role in the registry (``main``, ``sub``, ``monthly``): only ``main``
meters count in a unit's totals (``unit_energy``), so a sum of ``energy`` over meters takes
``role = 'main'``; a meter the registry does not list, or any meter of a unit not in the registry,
is written as ``main``, as the ledger counts it. Counts (``expected``, ``received``, ``late``,
``rejected``) are floats like every other number: the databases already hold them as floats, and a
field's type must never change. A ``data_quality`` point of a day is written in parts (completeness
when the day closes, late/rejected as they change): InfluxDB merges the fields of points with the
same series and time.
"""

from __future__ import annotations

from streams.sinks.encoders import FieldType, Measurement

F, B, S = FieldType.FLOAT, FieldType.BOOL, FieldType.STRING
UNIT_TAGS = ("unit_id", "region", "industry")

ENERGY = Measurement(
    "energy",
    (*UNIT_TAGS, "meter_id", "energy", "role"),
    {"qty": F, "tce": F, "co2_t": F, "estimated": B},
)
UNIT_ENERGY = Measurement("unit_energy", UNIT_TAGS, {"tce": F, "co2_t": F})
#: Its fields vary with the unit's targets and products: numbers as floats, levels as strings.
UNIT_STATUS = Measurement("unit_status", UNIT_TAGS, dynamic_fields=True)
METER_EVENT = Measurement("meter_event", (*UNIT_TAGS, "meter_id", "event"), {"detail": S})
ALERT = Measurement(
    "alert",
    (*UNIT_TAGS, "rule", "severity"),
    {"state": S, "message": S, "value": F, "threshold": F},
)
DATA_QUALITY = Measurement(
    "data_quality",
    UNIT_TAGS,
    {"completeness_pct": F, "expected": F, "received": F, "late": F, "rejected": F},
)

MEASUREMENTS = (ENERGY, UNIT_ENERGY, UNIT_STATUS, METER_EVENT, ALERT, DATA_QUALITY)

encode_energy = ENERGY.encode
encode_unit_energy = UNIT_ENERGY.encode
encode_unit_status = UNIT_STATUS.encode
encode_meter_event = METER_EVENT.encode
encode_alert = ALERT.encode
encode_data_quality = DATA_QUALITY.encode
