"""The Faust app: the `readings` and `registry` agents, their tables, and the InfluxDB sink.

Faust safely (ARCHITECTURE.md): ``concurrency=1`` on agents that touch tables, batches through
``stream.take_events()``, state in plain tables keyed by unit. Within a batch the effects go first —
points written to InfluxDB, dead letters and alerts acknowledged by the broker — and the ledgers
are stored last, so a crash at any point re-processes the batch from the last committed offset
and the ledgers' memory of recent readings turns the repeat into the same points again.

**Pipelined.** A batch's effects are carried out (:func:`carry_out` in :func:`create_app`) while the
agent processes the next batch, one batch in flight at a time and in order. The invariant holds for
each batch on its own: its messages stay unacknowledged (an extra reference on each, taken before
``take_events`` acks them) until its points are written, its dead letters and alerts sent and its
state records written to the table, so no offset of it is committed before; and its records are
written only after its effects. The next batch reads its units through a
:class:`~streams.state.StagedTable`: the records of the batch in flight as if written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import faust
from kafka.partitioner.default import murmur2
from pydantic import ValidationError

from energy import topics
from energy.accounting import Accountant, AccountingOptions
from energy.ledger import LedgerPolicy
from energy.operational import OperationalRules
from energy.registry import UnitInfo
from energymon.settings import KafkaSettings, Settings
from streams.processor import BatchOutput, BatchProcessor, Totals
from streams.recovery import FetchWatchdog, SeekFirstTableManager, tansu_table_manager
from streams.sinks.backends import build_writer
from streams.sinks.errors import InfluxWriteRejected
from streams.state import StagedTable, UnitStateStore, unit_of_key, units_in
from streams.status import STATUS_FILE, write_status

log = logging.getLogger("energymon.streams")


def broker_credentials(kafka: KafkaSettings) -> Any:
    """Faust's credentials (and so aiokafka's options, for every consumer, producer and admin call of
    the worker) from the Kafka settings: SASL (with TLS for SASL_SSL), TLS alone, or None for
    PLAINTEXT. With TLS the broker's handshake is checked first (KafkaTlsError when it fails)."""
    context = kafka.ssl_context()
    if context is not None:
        kafka.check_tls(context)
    sasl = kafka.sasl_credentials()
    if sasl is not None:
        mechanism, username, password = sasl
        return faust.SASLCredentials(
            username=username, password=password, mechanism=mechanism, ssl_context=context
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class UnitTable(faust.Table[bytes, bytes]):
    """A table whose keys ``<unit>`` and ``<unit>|…`` all go to the unit's partition: the one the
    producer's default partitioner (murmur2 of the key, as kafka-python and aiokafka do it) gives the
    unit's `readings` messages, keyed by unit id."""

    def partition_for_key(self, key: Any) -> int | None:
        partitions: int = self.partitions or self.app.conf.topic_partitions
        return int(murmur2(unit_of_key(key)) & 0x7FFFFFFF) % partitions


def operational_rules(settings: Settings) -> OperationalRules:
    """The data-quality rules' thresholds from the settings."""
    a = settings.alerts
    return OperationalRules(
        lateness_ms=settings.stream.lateness_s * 1000,
        silent_intervals=a.silent_intervals,
        completeness_min_pct=a.completeness_min_pct,
        spike_factor=a.spike_factor,
        spike_min_tce=a.spike_min_tce,
        spike_baseline_days=a.spike_baseline_days,
        day_month_max_deviation_pct=a.day_month_max_deviation_pct,
    )


def batch_processor(settings: Settings) -> BatchProcessor:
    """The worker's processor: accounting options, ledger policy, alert language and rules from the
    settings (the tests' oracles build theirs here too)."""
    stream = settings.stream
    return BatchProcessor(
        Accountant(
            options=AccountingOptions(
                electricity_basis=stream.electricity_basis,
                grid_series=stream.grid_factor_series,
                region=stream.grid_region,
            )
        ),
        LedgerPolicy(
            lateness_ms=stream.lateness_s * 1000, hourly_tce_ceiling=settings.alerts.hourly_tce_ceiling
        ),
        lang=settings.alerts.lang,
        rules=operational_rules(settings),
    )


def at_risk(watch: dict[str, dict[str, Any]], top: int = 10) -> list[dict[str, Any]]:
    """The ``top`` units with the highest projected use of their cap, for the live view."""
    ranked = sorted(
        (u for u in watch.items() if "projected_pct" in u[1]), key=lambda u: -float(u[1]["projected_pct"])
    )
    return [{"unit_id": unit_id, **figures} for unit_id, figures in ranked[:top]]


async def send_records(records: list[tuple[faust.TopicT, bytes | None, bytes]]) -> None:
    """Send ``(topic, key, value)`` records and return once the broker has each: the records of
    one key queued one after the other (the alert lifecycle reads a key's records in order), the
    keys side by side."""
    by_key: dict[tuple[str, bytes | None], list[tuple[faust.TopicT, bytes | None, bytes]]] = {}
    for record in records:
        topic, key, _value = record
        by_key.setdefault((topic.get_topic_name(), key), []).append(record)

    async def queue(of_key: list[tuple[faust.TopicT, bytes | None, bytes]]) -> list[Any]:
        return [await topic.send(key=key, value=value) for topic, key, value in of_key]

    queued = await asyncio.gather(*(queue(of_key) for of_key in by_key.values()))
    await asyncio.gather(*(sent for of_key in queued for sent in of_key))


def create_app(settings: Settings) -> faust.App:
    """Build the Faust app, its topics, tables and agents from the settings."""
    kafka = settings.kafka
    state_dir = Path(settings.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    conf: dict[str, Any] = {
        "broker": [f"kafka://{server}" for server in kafka.servers().split(",")],
        "broker_credentials": broker_credentials(kafka),
        "store": settings.stream.store,
        "datadir": str(state_dir / "faust"),
        "topic_partitions": kafka.topic_partitions,
        "topic_replication_factor": kafka.replication_factor,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": kafka.session_timeout_s,
        "web_enabled": settings.stream.web_port is not None,
        "web_port": settings.stream.web_port or 6066,
        "web_bind": "127.0.0.1",
        "TableManager": SeekFirstTableManager,
    }
    if kafka.tansu:
        # tansu's ListOffsets reports the wrong end of multi-record batches, which breaks table
        # recovery; single-record producer batches keep it exact on memory storage (stack.md), and
        # recovery checks the ends with a fetch, which s3 storage needs (streams/recovery.py). Short
        # sessions make group joins take seconds instead of half a minute.
        conf.update(
            TableManager=tansu_table_manager(kafka.kafka_python_options()),
            producer_max_batch_size=1,
            broker_session_timeout=min(kafka.session_timeout_s, 6.0),
            broker_heartbeat_interval=1.0,
        )
    app = faust.App(settings.stream.app_id, **conf)

    # Output reports go through the same agent as readings: both change a unit's state, and one
    # agent per unit state keeps the order of its changes (the topics are partitioned alike).
    readings = app.topic(topics.READINGS, topics.OUTPUT, key_serializer="raw", value_serializer="raw")
    rejected = app.topic(topics.READINGS_REJECTED, key_serializer="raw", value_serializer="raw")
    alerts = app.topic(topics.ALERTS, key_serializer="raw", value_serializer="raw")
    registry = app.topic(topics.REGISTRY, key_serializer="raw", value_serializer="raw")

    # Keys and values are our own bytes. key_type/value_type must be given as well as the schema:
    # without them Faust gives the changelog topic json serializers, and a restarted worker fails to
    # decode every record it recovers (found by tests/integration/test_restart.py).
    table_options: dict[str, Any] = {
        "default": None,
        "key_type": bytes,
        "value_type": bytes,
        "schema": faust.Schema(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        ),
        "partitions": kafka.topic_partitions,
    }
    # A unit's record and its archive (`<unit>|periods`) go to the unit's changelog partition, in
    # the order written (streams.state explains why the order matters).
    ledgers = UnitTable(app, name="ledgers", beacon=app.tables.beacon, **table_options, use_partitioner=False)
    app.tables.add(ledgers)
    units = app.Table("units", **table_options, use_partitioner=True)

    stream_settings = settings.stream
    processor = batch_processor(settings)
    writer = build_writer(settings.influx)
    totals = Totals()
    levels: dict[str, str] = {}  # unit → dual-control level
    watch: dict[str, dict[str, Any]] = {}  # unit → its newest quota figures
    status = {"influx_rejected_batches": 0, "alerts": 0}

    # snapshots and logs: the processor replays a unit's log when it loads the unit (streams.state)
    staged = StagedTable(ledgers)  # the table with the records of the batch in flight
    states = UnitStateStore(
        staged,
        processor,
        snapshot_every=stream_settings.snapshot_every,
        fold_buckets=stream_settings.fold_buckets,
    )

    parsed_units: dict[str, tuple[bytes, UnitInfo]] = {}

    def unit_info(unit_id: str) -> UnitInfo | None:
        """The unit's registry record, parsed once per version (a parse costs ~20 µs a message)."""
        raw = units.get(unit_id.encode())
        if not raw:
            return None
        cached = parsed_units.get(unit_id)
        if cached is None or cached[0] != raw:
            cached = parsed_units[unit_id] = (raw, UnitInfo.from_json(raw))
        return cached[1]

    def release(events: Sequence[faust.EventT[bytes]]) -> None:
        """Drop the reference :func:`process_readings` holds on each message of a batch: the last one
        makes its offset committable (``Message.ack``)."""
        consumer = app.consumer
        for event in events:
            message = event.message
            if message.ack(consumer):
                app.sensors.on_message_out(message.tp, message.offset, message)

    in_flight: dict[str, asyncio.Task[None]] = {}  # "batch": the batch whose effects are carried out
    idle: dict[str, float | None] = {"since": None}  # when the agent began to wait for input (None: busy)

    @app.agent(readings, concurrency=1)
    async def process_readings(stream: faust.StreamT[bytes]) -> None:
        before = in_flight.pop("batch", None)
        if before is not None:  # the agent restarted: let the batch of its last run finish first
            await asyncio.gather(asyncio.shield(before), return_exceptions=True)
        states.forget()
        staged.drop()
        # (StreamT does not declare take_events; faust.Stream, what the agent is given, has it)
        take_events = cast("faust.Stream[bytes]", stream).take_events
        batch_max = stream_settings.batch_max
        batches = take_events(batch_max, within=stream_settings.batch_within_s)
        started = True
        idle["since"] = time.monotonic()
        async for events in batches:
            idle["since"] = None
            for event in events:
                event.message.incref()  # take_events acks it at the end of this turn: not enough
            if started:
                # An open interval's points may not have been written before this (re)start: write
                # those of every unit of the table once caught up (recovered by now: events flow).
                processor.unwritten.update(dict.fromkeys(units_in(staged)))
                started = False
            try:
                out = processor.process(
                    [event.value for event in events], states, unit_info, caught_up=len(events) < batch_max
                )
                records = states.end_batch()  # snapshots and logs (streams.state), stored by carry_out
                batch = staged.stage(records)
                before = in_flight.get("batch")
                if before is not None:
                    await asyncio.shield(before)  # one batch in flight: the one before is done (or raises)
            except asyncio.CancelledError:
                # Stopping: this batch's effects were not carried out; unacknowledged, it is processed
                # again after the restart. The cached states may hold them: read the table again.
                states.forget()
                staged.drop()
                raise
            except BaseException:
                # As a failed turn of take() always did: the batch is acknowledged, the agent restarts.
                states.forget()
                staged.drop()
                release(events)
                raise
            in_flight["batch"] = asyncio.ensure_future(carry_out(events, out, batch, records))
            idle["since"] = time.monotonic()
        idle["since"] = None

    async def carry_out(
        events: Sequence[faust.EventT[bytes]],
        out: BatchOutput,
        batch: int,
        records: list[tuple[bytes, bytes | None]],
    ) -> None:
        """Carry out a processed batch's effects — points written, dead letters and alerts sent — then
        store its state records, then acknowledge its messages."""
        try:
            if out.lines:
                try:
                    await writer.write(out.lines)
                except InfluxWriteRejected as exc:
                    # Our own encoder produced something InfluxDB refuses: a bug to see, not to retry.
                    status["influx_rejected_batches"] += 1
                    log.error("%s (batch of %d lines dropped)", exc, len(out.lines))
            if out.rejected or out.alerts:
                await send_records(
                    [(rejected, key.encode() if key else None, value) for key, value in out.rejected]
                    + [(alerts, a.unit_id.encode(), a.to_json()) for a in out.alerts]
                )
            staged.store(batch, records)
        except asyncio.CancelledError:
            # Stopping: unacknowledged, the batch is processed again after the restart.
            states.forget()
            staged.drop()
            raise
        except BaseException:
            # The cached unit states may hold this batch's effects, not stored: read them from the
            # table again. As a failed turn of take() always did, the batch is acknowledged; the
            # agent fails with the error at its next batch.
            log.exception("carrying out a batch of %d messages failed", len(events))
            states.forget()
            staged.drop()
            release(events)
            raise
        release(events)
        levels.update(out.levels)
        for unit_id, unit_status in out.statuses.items():
            f = unit_status.fields
            watch[unit_id] = {
                "level": unit_status.level,
                **{k: f[k] for k in ("used_pct", "schedule_pct", "projected_pct") if k in f},
            }
        totals.add(out)
        status["alerts"] += len(out.alerts)
        for a in out.alerts:
            log.warning("alert %s %s %s: %s", a.state, a.severity, a.key, a.message)

    @app.agent(registry, concurrency=1)
    async def apply_registry(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            try:
                info = UnitInfo.from_json(raw)
            except (ValidationError, ValueError) as exc:
                log.error("registry record refused: %s", exc)
                continue
            units[info.unit_id.encode()] = raw

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def write_open_intervals() -> None:
        """When the agent has waited for input longer than a batch may take to fill, write the open
        intervals not yet written: the last batch before a pause may have been full, and a full
        batch does not write them (``streams.processor``). Chained behind the batch in flight, and
        the next batch's effects behind it, so that no older point overwrites a newer one."""
        since = idle["since"]
        waited = time.monotonic() - since if since is not None else 0.0
        if not processor.unwritten or waited < stream_settings.batch_within_s:
            return
        out = processor.process([], states, unit_info, caught_up=True)
        states.end_batch()  # (nothing applied: no records)
        in_flight["batch"] = asyncio.ensure_future(write_lines(in_flight.get("batch"), out.lines))

    async def write_lines(before: asyncio.Task[None] | None, lines: list[str]) -> None:
        if before is not None:
            await asyncio.gather(asyncio.shield(before), return_exceptions=True)
        if lines:
            try:
                await writer.write(lines)
            except InfluxWriteRejected as exc:
                status["influx_rejected_batches"] += 1
                log.error("%s (%d open-interval lines dropped)", exc, len(lines))

    watchdog = FetchWatchdog(app, (topics.READINGS, topics.OUTPUT))

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def watch_fetches() -> None:
        await watchdog.check()

    status_path = state_dir / STATUS_FILE

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def publish_status() -> None:
        write_status(
            status_path,
            {
                "ts": time.time(),
                **vars(totals),
                "points_written": writer.points_written,
                "influx_retries": writer.retries,
                **status,
                "units_known": len(units),
                "archive_folds": states.folds,
                "replayed_messages": states.replayed,
                "refetches": watchdog.seeks,
                "levels": levels,
                "at_risk": at_risk(watch),
            },
        )

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_writer(_app: Any, *_args: Any, **_kw: Any) -> None:
        await writer.close()

    return app


def run_worker(settings: Settings) -> None:
    """Run one worker in this process until it is stopped (SIGINT/SIGTERM)."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
