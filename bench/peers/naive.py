"""Peer (a): the loop most example projects write. kafka-python ``KafkaConsumer`` with a JSON value
deserializer and auto-commit, each reading turned into an influxdb-client ``Point``, the message's
points serialised with ``to_line_protocol()`` and POSTed to InfluxDB's ``/write`` with requests,
one POST per message. (influxdb-client's own write API speaks only the v2 API, which InfluxDB 1.6
lacks; POSTing every single reading, the other common variant, ran at ~470 readings/s here.)

A reading's point is its meter's interval so far (the running sum, at the interval's start), so the
last write of an interval overwrites the others and InfluxDB ends with the points the kernel
writes; the loop forgets a unit's intervals once its data has moved on from them.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision
from kafka import KafkaConsumer

from bench.peers import PeerConfig, PeerStatus
from bench.peers.accounting import IntervalPoints


def run(config: PeerConfig) -> None:
    """Consume ``config.topic`` until SIGTERM/SIGINT."""
    stop = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    job = config.accounting_job()
    intervals = IntervalPoints()
    session = config.influx_session()
    status, status_path = PeerStatus(), Path(config.status_path)
    status.write(status_path)
    consumer = KafkaConsumer(
        config.topic,
        **config.kafka,
        group_id=config.group,
        auto_offset_reset="earliest",
        value_deserializer=json.loads,
        session_timeout_ms=6000,  # kafka-python's 45 s default makes the first join take ~23 s on tansu
        heartbeat_interval_ms=1000,
    )
    next_status = 0.0
    try:
        while not stop:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    doc = record.value
                    points = [
                        Point("energy")  # type: ignore[no-untyped-call]
                        .tag("unit_id", p.unit_id)
                        .tag("meter_id", p.meter_id)
                        .tag("energy", p.energy)
                        .tag("region", p.region)
                        .tag("industry", p.industry)
                        .field("qty", p.qty)
                        .field("tce", p.tce)
                        .field("co2_t", p.co2_t)
                        .field("estimated", False)
                        .time(p.ts_ms, WritePrecision.MS)
                        for p in (intervals.add(piece).point() for piece in job.apply(doc))
                    ]
                    intervals.closed_by(doc)  # written already: forget them
                    if points:
                        config.post_lines(session, "\n".join(p.to_line_protocol() for p in points))
                    status.messages += 1
                    status.readings += len(doc.get("readings") or ())
                    status.points += len(points)
                    if time.monotonic() >= next_status:
                        status.write(status_path)
                        next_status = time.monotonic() + 0.2
            if time.monotonic() >= next_status:
                status.write(status_path)
                next_status = time.monotonic() + 0.2
    finally:
        status.write(status_path)
        consumer.close()
