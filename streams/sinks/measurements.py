"""Our InfluxDB measurements (ARCHITECTURE.md) and their precompiled encoders.

Each ``encode_*`` takes the tag values in the order of ``tags`` (None or "" leaves a tag out), then
the declared fields, then (``unit_status`` only) a mapping of its fields, then ``ts_ms`` (epoch
ms), and returns the line or None. Counts (``expected``, ``received``) are floats like every other
number: the databases already hold them as floats, and a field's type must never change.
"""

from __future__ import annotations

from streams.sinks.encoders import FieldType, Measurement

F, B, S = FieldType.FLOAT, FieldType.BOOL, FieldType.STRING
UNIT_TAGS = ("unit_id", "region", "industry")

ENERGY = Measurement(
    "energy",
    (*UNIT_TAGS, "meter_id", "energy"),
    {"qty": F, "tce": F, "co2_t": F, "estimated": B},
)
UNIT_ENERGY = Measurement("unit_energy", UNIT_TAGS, {"tce": F, "co2_t": F})
#: Its fields vary with the unit's targets and products: numbers as floats, levels as strings.
UNIT_STATUS = Measurement("unit_status", UNIT_TAGS, dynamic_fields=True)
METER_EVENT = Measurement("meter_event", (*UNIT_TAGS, "meter_id", "event"), {"detail": S})
ALERT = Measurement(
    "alert",
    ("unit_id", "rule", "severity"),
    {"state": S, "message": S, "value": F, "threshold": F},
)
DATA_QUALITY = Measurement("data_quality", UNIT_TAGS, {"completeness_pct": F, "expected": F, "received": F})

MEASUREMENTS = (ENERGY, UNIT_ENERGY, UNIT_STATUS, METER_EVENT, ALERT, DATA_QUALITY)

encode_energy = ENERGY.encode
encode_unit_energy = UNIT_ENERGY.encode
encode_unit_status = UNIT_STATUS.encode
encode_meter_event = METER_EVENT.encode
encode_alert = ALERT.encode
encode_data_quality = DATA_QUALITY.encode
