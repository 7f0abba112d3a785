"""Peer (b): the same accounting as a Quix Streams 3.x app. A streaming dataframe over the readings
topic (JSON values) applies the accounting, sums each meter's pieces per 15-minute interval, and
hands the hand-built line-protocol lines of the intervals a message closed (its unit's data moved on
to a later interval, as our worker writes them) to a ``BatchingSink``, which POSTs them to InfluxDB's
``/write`` in requests of up to 5,000 lines whenever the app checkpoints (``commit_interval`` 1 s).
Open intervals are not written: Quix gives an app no sign that it has caught up with its input.

On tansu the app keeps its meters' last registers and open intervals in plain dicts, not in Quix's
``State``: a stateful step makes Quix derive its changelog topic from the input topic's
``retention.ms``, which tansu's DescribeConfigs does not return (KeyError). Our worker keeps its
state in a changelogged table; the peer's state costs it nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.sinks import BatchingSink, SinkBatch

from bench.observe import confluent_options
from bench.peers import PeerConfig, PeerStatus
from bench.peers.accounting import IntervalPoints, line

#: Lines per POST.
POST_LINES = 5000
#: Seconds between checkpoints (commit and sink flush); Quix's default is 5.
COMMIT_INTERVAL_S = 1.0


class LineProtocolSink(BatchingSink):
    """Writes the lists of lines it collects to InfluxDB, ``POST_LINES`` per request."""

    def __init__(self, config: PeerConfig, status: PeerStatus) -> None:
        super().__init__()
        self._config = config
        self._session = config.influx_session()
        self._status = status

    def setup(self) -> None:
        """Nothing to connect: each write is an HTTP request."""

    def write(self, batch: SinkBatch) -> None:
        lines = [text for item in batch for text in item.value]
        for start in range(0, len(lines), POST_LINES):
            self._config.post_lines(self._session, "\n".join(lines[start : start + POST_LINES]))
        self._status.points += len(lines)


def run(config: PeerConfig) -> None:
    """Run the app until SIGTERM/SIGINT (Quix handles both)."""
    job = config.accounting_job()
    intervals = IntervalPoints()
    status, status_path = PeerStatus(), Path(config.status_path)
    status.write(status_path)
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(confluent_options(config.kafka)),
        consumer_group=config.group,
        auto_offset_reset="earliest",
        commit_interval=COMMIT_INTERVAL_S,
        state_dir=config.state_dir,
        loglevel="WARNING",
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    topic = app.topic(config.topic, value_deserializer="json")

    def account(doc: dict[str, Any]) -> list[str]:
        status.messages += 1
        status.readings += len(doc.get("readings") or ())
        for piece in job.apply(doc):
            intervals.add(piece)
        return [line(p) for p in intervals.closed_by(doc)]

    sdf = app.dataframe(topic).apply(account)
    sdf.sink(LineProtocolSink(config, status))

    done = threading.Event()

    def report() -> None:
        while not done.wait(0.2):
            status.write(status_path)

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        app.run()
    finally:
        done.set()
        status.write(status_path)
