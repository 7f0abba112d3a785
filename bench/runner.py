"""The whole benchmark run, as `energymon bench` runs it (BENCHMARKS.md explains each figure).

1. Servers: a tansu broker and an influxd of our own on free ports (or the configured ones), the
   topics, one InfluxDB database per system.
2. Ours: the generated registry is published, the real ``energymon worker`` started and waited for
   until it knows every unit; its idle RSS is taken.
3. Saturation: the backlog (minutes 0 … N of readings of the whole fleet, N ``backlog_minutes``
   rounded up to whole intervals, and a closing minute N + 1) is produced as fast as the broker
   takes it; the clock runs from the first send to the moment the `energy` points of the interval
   (N − 15 min, N], which the closing minute closes, are all visible in InfluxDB
   (:class:`~bench.observe.EndCheck`).
4. Latency at the fixed offered load (``rate`` readings/s), then at saturation (the rate ours
   reached in 3), each for ``duration_s``: the readings are produced at that pace, and each
   `unit_status` point and each alert is timed from the send of the message that caused it.
5. Peers: each started, warmed up with one message, then given the same backlog on a topic of its
   own, timed in the same way, and checked to have written the same `energy` points up to that
   interval (ours also writes the closing minute's open interval once caught up; the peers need not).
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bench import figures
from bench.figures import Latency, RunFigures, match_latencies
from bench.fleet import AlertForecast, BenchFleet, Message, StatusIndex, interval_aligned, minute_ms
from bench.observe import (
    POLL_S,
    AlertObserver,
    EndCheck,
    ReadingsProducer,
    StatusObserver,
    energy_at,
    energy_totals,
)
from bench.peers import PEERS, PeerConfig, PeerStatus
from bench.peers.accounting import PeerAccounting, UnitTags
from bench.stack import (
    WORKER_TOPICS,
    Backends,
    ProcessMeter,
    WorkerProcess,
    start_backends,
    wait_for,
    worker_env,
)
from collectors.simulator import CST
from energy import topics
from energy.accounting import Accountant, AccountingOptions
from energy.ledger import LedgerPolicy
from energymon.localstack.process import ManagedProcess
from energymon.settings import Settings

#: Seconds without progress after which a run is given up (its figures are printed as incomplete).
STALL_S = 60.0
#: Seconds to wait for late events after a paced run's messages are all processed.
GRACE_S = 5.0
#: Seconds after which a status file holds the counters of now (the worker writes its every 1 s).
COUNTERS_S = 1.5


@dataclass(frozen=True)
class BenchOptions:
    """What to run: the fleet (``units`` × ``meters``, ``per_message`` readings per message), the
    saturation backlog in minutes of readings, the fixed offered load (readings/s) and how long
    each paced run lasts (s)."""

    units: int = 2000
    meters: int = 50
    per_message: int = 50
    rate: float = 10_000.0
    duration_s: float = 30.0
    backlog_minutes: int = 30
    peers: bool = True
    quick: bool = False
    profile: Path | None = None
    configured: bool = False
    seed: int = 2026


#: ``--quick``: a tenth of the fleet, short paced runs; every figure is still measured.
QUICK = {"units": 200, "backlog_minutes": 15, "duration_s": 10.0}


def resolve_options(quick: bool, **given: Any) -> BenchOptions:
    """The options of a run: ``given`` (None: not given) over the quick or full defaults."""
    chosen = {k: v for k, v in given.items() if v is not None}
    base = BenchOptions(quick=quick)
    if quick:
        base = replace(base, **QUICK)  # type: ignore[arg-type]
    options = replace(base, **chosen)
    if options.units < 1 or options.meters < 1 or options.per_message < 1:
        raise ValueError("--units, --meters and --per-message must be at least 1")
    if options.rate <= 0 or options.duration_s <= 0 or options.backlog_minutes < 1:
        raise ValueError("--rate, --duration and --backlog-minutes must be positive")
    return options


def paced_minutes(readings_per_s: float, duration_s: float, meters: int) -> int:
    """Minutes of fleet readings a paced run of ``duration_s`` at ``readings_per_s`` needs (≥ 2)."""
    return max(2, math.ceil(readings_per_s * duration_s / meters))


class Progress:
    """Progress lines on stderr, each with the seconds since the run started."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.started = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[bench {time.monotonic() - self.started:6.1f} s] {text}", file=self.stream, flush=True)


@dataclass
class System:
    """A system under test as the runs see it: where it reads, where it writes, its process, and its
    counters (messages, readings, points written; cumulative)."""

    name: str
    topic: str
    database: str
    process: ManagedProcess
    meter: ProcessMeter
    counters: Callable[[], tuple[int, int, int | None]]


@dataclass
class Context:
    """What the runs share."""

    options: BenchOptions
    backends: Backends
    producer: ReadingsProducer
    progress: Progress
    workdir: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def query(self, database: str) -> Callable[[str], list[dict[str, Any]]]:
        return lambda q: self.backends.query(database, q)


def wait_visible(ctx: Context, system: System, end: EndCheck, total_messages: int) -> tuple[float, bool]:
    """Poll until the `energy` points of ``end`` are visible in the system's database; (time they
    were, True), or (time given up, False) after :data:`STALL_S` without progress."""
    query = ctx.query(system.database)
    base = system.counters()[0]
    last, last_change = -1, time.monotonic()
    next_report = time.monotonic() + 5.0
    while True:
        asked = time.monotonic()
        if end.reached(*energy_at(query, end.start_ms)):
            return asked, True
        done = system.counters()[0] - base
        now = time.monotonic()
        if done != last:
            last, last_change = done, now
        elif now - last_change > STALL_S:
            ctx.progress(f"{system.name}: no progress for {STALL_S:.0f} s, giving up")
            return now, False
        if not system.process.alive:
            raise RuntimeError(f"{system.name} exited:\n{system.process.log_tail(30)}")
        if now >= next_report:
            ctx.progress(f"{system.name}: {done:,} of {total_messages:,} messages processed")
            next_report = now + 5.0
        time.sleep(POLL_S)


def run_backlog(ctx: Context, system: System, messages: Sequence[Message], end: EndCheck) -> RunFigures:
    """Produce ``messages`` as fast as the broker takes them and time the system through them (until
    ``end`` is reached); the `energy` points it wrote up to ``end``'s interval."""
    readings = sum(m.readings for m in messages)
    idle_rss = system.meter.rss()
    cpu0 = system.meter.cpu_s()
    m0, _r0, p0 = system.counters()
    ctx.progress(f"{system.name}: producing the backlog: {len(messages):,} messages, {readings:,} readings")
    first, acked = ctx.producer.backlog(system.topic, messages)
    ctx.progress(f"{system.name}: backlog produced in {acked - first:.1f} s")
    seen, complete = wait_visible(ctx, system, end, len(messages))
    cpu = system.meter.cpu_s() - cpu0
    window = seen - first
    ctx.progress(
        f"{system.name}: last closed interval visible after {window:.1f} s: "
        f"{readings / window:,.0f} readings/s"
    )
    try:  # the counters are written now and then (every 1 s at most): let them catch up
        wait_for("the counters", lambda: system.counters()[0] - m0 >= len(messages), 10.0)
    except RuntimeError:
        ctx.progress(f"{system.name}: counters still short of the messages produced")
    time.sleep(COUNTERS_S)
    _m1, _r1, p1 = system.counters()
    count, tce = energy_totals(ctx.query(system.database), end.start_ms)
    return RunFigures(
        name=system.name,
        readings=readings,
        messages=len(messages),
        window_s=window,
        points=None if p0 is None or p1 is None else p1 - p0,
        cpu_s=cpu,
        peak_rss=system.meter.peak_rss(),
        state_rss=system.meter.rss() - idle_rss,
        meters=ctx.options.units * ctx.options.meters,
        energy_points=count,
        energy_tce=tce,
        complete=complete,
    )


def run_paced(
    ctx: Context,
    system: System,
    fleet: BenchFleet,
    forecast: AlertForecast,
    index: StatusIndex,
    spike_units: Sequence[str],
    rate: float,
    label: str,
) -> tuple[dict[str, Latency], float]:
    """A paced run at ``rate`` readings/s for ``duration_s``: latency from each message's send to its
    `unit_status` point and to its alert, and the system's CPU share (of one core) meanwhile."""
    opts = ctx.options
    minutes = paced_minutes(rate, opts.duration_s, fleet.meter_count)
    fleet.skip_to_interval()  # every unit enters a new interval with its first message of the run
    first = fleet.next_minute
    fleet.schedule_spikes(spike_units, first, first + minutes - 1)
    messages = fleet.messages(minutes)
    forecast.feed(messages)
    index.add(messages)
    lo = messages[0].index
    want_status = {k: i for k, i in index.expected.items() if i >= lo}
    want_alerts = {k: i for k, i in forecast.expected.items() if i >= lo}
    statuses = StatusObserver(ctx.query(system.database), set(want_status), minute_ms(first))
    alerts = AlertObserver(ctx.backends.kafka_options, topics.ALERTS)
    statuses.start()
    alerts.start()
    readings = sum(m.readings for m in messages)
    ctx.progress(
        f"{system.name}: {label}: {readings:,} readings in {len(messages):,} messages "
        f"({len(want_status):,} unit_status points and {len(want_alerts)} alerts to time)"
    )
    m0 = system.counters()[0]
    cpu0, t0 = system.meter.cpu_s(), time.monotonic()
    try:
        produced = ctx.producer.paced(
            system.topic,
            messages,
            rate,
            lambda n: ctx.progress(f"{system.name}: {label}: {n:,} readings sent"),
        )
        cpu_share = (system.meter.cpu_s() - cpu0) / (time.monotonic() - t0)
        wait_events(
            ctx,
            system,
            lambda: statuses.waiting == 0 and set(want_alerts) <= set(alerts.seen),
            lambda: system.counters()[0] - m0 >= len(messages),
            label,
        )
    finally:
        statuses.stop()
        alerts.stop()
    ctx.progress(f"{system.name}: {label}: worker CPU {cpu_share * 100:.0f} % of one core while producing")
    latency = {
        f"unit_status p50 / p99 s, {label}": match_latencies(produced, want_status, statuses.seen),
        f"alert p50 / p99 s, {label}": match_latencies(produced, want_alerts, alerts.seen),
    }
    return latency, cpu_share


def wait_events(
    ctx: Context, system: System, all_seen: Callable[[], bool], processed: Callable[[], bool], label: str
) -> None:
    """Wait until the system has processed the run's messages and every awaited event is seen (or
    :data:`GRACE_S` more have passed), or until :data:`STALL_S` without progress."""
    done_at: float | None = None
    last, last_change = -1, time.monotonic()
    while True:
        now = time.monotonic()
        if done_at is None and processed():
            done_at = now
        if done_at is not None and (all_seen() or now - done_at > GRACE_S):
            if not all_seen():
                ctx.progress(f"{system.name}: {label}: some events never came")
            return
        count = system.counters()[0]
        if count != last:
            last, last_change = count, now
        elif done_at is None and now - last_change > STALL_S:
            ctx.progress(f"{system.name}: {label}: no progress for {STALL_S:.0f} s, giving up")
            return
        if not system.process.alive:
            raise RuntimeError(f"{system.name} exited:\n{system.process.log_tail(30)}")
        time.sleep(POLL_S)


def accounting_options(settings: Settings) -> AccountingOptions:
    """The worker's accounting options (its settings), for the forecast and the peers."""
    s = settings.stream
    return AccountingOptions(
        electricity_basis=s.electricity_basis, grid_series=s.grid_factor_series, region=s.grid_region
    )


def unit_tags(fleet: BenchFleet) -> dict[str, UnitTags]:
    """What the peers know of each unit of the fleet."""
    return {u.unit_id: UnitTags.of(u.info) for u in fleet.units}


def run_ours(
    ctx: Context, settings: Settings, fleet: BenchFleet, backlog: Sequence[Message], end: EndCheck
) -> RunFigures:
    """Our worker through the backlog and the two paced runs."""
    opts = ctx.options
    database = f"bench_energymon_{ctx.suffix}"
    ctx.backends.create_database(database)
    registry = fleet.registry()
    from kafka import KafkaProducer

    producer = KafkaProducer(**ctx.backends.kafka_options, linger_ms=20)
    for info in registry:
        producer.send(topics.REGISTRY, key=info.unit_id.encode(), value=info.to_json())
    producer.flush()
    producer.close()
    state = ctx.workdir / "worker"
    worker = WorkerProcess(
        worker_env(ctx.backends, database, state), state, ctx.workdir / "worker.log", opts.profile
    )
    ctx.progress(f"energymon: starting the worker (log {ctx.workdir / 'worker.log'})")
    worker.start()
    pid = worker.process.pid
    assert pid is not None
    meter = ProcessMeter(pid)

    def counters() -> tuple[int, int, int | None]:
        s = worker.status()
        points = s.get("points_written")
        return int(s.get("messages", 0)), int(s.get("readings", 0)), None if points is None else int(points)

    system = System("energymon", topics.READINGS, database, worker.process, meter, counters)
    try:
        wait_for(
            "the worker to know every unit",
            lambda: worker.status().get("units_known", 0) >= len(registry),
            180.0,
            worker.process,
        )
        ctx.progress(f"energymon: worker ready, {len(registry):,} units known")
        time.sleep(2.0)
        ours = run_backlog(ctx, system, backlog, end)
        status = worker.status()
        ctx.progress(
            "energymon: worker status: "
            + ", ".join(
                f"{k} {status.get(k)}"
                for k in (
                    "batches",
                    "batches_caught_up",
                    "energy_points",
                    "points_written",
                    "refetches",
                    "influx_retries",
                    "archive_folds",
                )
            )
        )
        if status.get("rejected"):
            ctx.progress(
                f"!!! energymon: the worker rejected {status['rejected']:,} readings (see its log) !!!"
            )
        settings_policy = LedgerPolicy(
            lateness_ms=settings.stream.lateness_s * 1000,
            hourly_tce_ceiling=settings.alerts.hourly_tce_ceiling,
        )
        alert_units = fleet.alert_units()
        infos = {u.unit_id: u.info for u in fleet.units if u.alert}
        forecast = AlertForecast(Accountant(options=accounting_options(settings)), settings_policy, infos)
        forecast.feed(backlog)
        index = StatusIndex()
        index.add(backlog)
        half = len(alert_units) // 2
        saturation = max(ours.readings_per_s, 1.0)
        for units, rate, label in (
            (alert_units[:half], opts.rate, f"fixed {opts.rate:,.0f} readings/s"),
            (alert_units[half:], saturation, f"saturation {saturation:,.0f} readings/s"),
        ):
            latency, cpu_share = run_paced(ctx, system, fleet, forecast, index, units, rate, label)
            ours.latency.update(latency)
            ours.cpu_share[label] = cpu_share
    finally:
        meter.close()
        ctx.progress(
            "energymon: stopping the worker"
            + (f" (writing the profile to {opts.profile})" if opts.profile else "")
        )
        worker.stop()
    return ours


def run_peer(
    ctx: Context,
    settings: Settings,
    peer: str,
    fleet: BenchFleet,
    backlog: Sequence[Message],
    end: EndCheck,
) -> RunFigures:
    """One peer through the same backlog on a topic of its own."""
    topic = f"bench.{peer}.readings"
    database = f"bench_{peer}_{ctx.suffix}"
    ctx.backends.create_database(database)
    status_path = ctx.workdir / f"{peer}-status.json"
    config = PeerConfig(
        peer=peer,
        topic=topic,
        group=f"bench-{peer}-{ctx.suffix}",
        kafka=ctx.backends.kafka_options,
        influx_url=ctx.backends.influx_url,
        database=database,
        influx_username=ctx.backends.influx_auth[0],
        influx_password=ctx.backends.influx_auth[1],
        units={unit_id: astuple(tags) for unit_id, tags in unit_tags(fleet).items()},
        accounting=vars(accounting_options(settings)),
        status_path=str(status_path),
        state_dir=str(ctx.workdir / f"{peer}-state"),
    )
    config_path = ctx.workdir / f"{peer}.json"
    config.save(config_path)
    process = ManagedProcess(
        peer, [sys.executable, "-m", "bench.peers", str(config_path)], ctx.workdir / f"{peer}.log"
    )
    ctx.progress(f"{peer}: starting (log {ctx.workdir / f'{peer}.log'})")
    process.start()
    pid = process.pid
    assert pid is not None
    meter = ProcessMeter(pid)

    def counters() -> tuple[int, int, int | None]:
        s = PeerStatus.read(status_path) or PeerStatus()
        return s.messages, s.readings, s.points

    system = System(peer, topic, database, process, meter, counters)
    try:
        warmup = Message(-1, "warmup", b"warmup", b'{"warmup": true}', 0, 0)
        ctx.producer.backlog(topic, [warmup])
        wait_for(f"{peer} to take its first message", lambda: counters()[0] >= 1, 120.0, process)
        ctx.progress(f"{peer}: ready")
        time.sleep(1.0)
        return run_backlog(ctx, system, backlog, end)
    finally:
        meter.close()
        process.stop(15.0)
        config_path.unlink(missing_ok=True)


def report(
    options: BenchOptions,
    fleet: BenchFleet,
    backlog: Sequence[Message],
    end: EndCheck,
    ours: RunFigures,
    peers: Sequence[RunFigures],
) -> list[str]:
    """The figures, as printed at the end of a run; the last line is :func:`figures.last_line`."""
    readings = sum(m.readings for m in backlog)
    closed = datetime.fromtimestamp(end.start_ms / 1000, CST)
    lines = [
        "",
        f"energymon bench: {options.units:,} units × {options.meters} meters = {fleet.meter_count:,} meters, "
        f"{options.per_message} readings per message, one reading per meter per minute",
        f"saturation backlog: {fleet.meter_count and readings // fleet.meter_count} minutes of readings = "
        f"{readings:,} readings in {len(backlog):,} messages; paced runs of {options.duration_s:g} s",
        f"energy points: one per meter per 15-minute interval; the backlog's last minute closes the "
        f"interval from {closed:%H:%M} ({end.points:,} points, Σtce {end.tce:,.3f}), the end of each run "
        "and of the points compared",
        "",
        *figures.render_table(ours, peers),
        "",
        *figures.render_latency(ours),
        "",
        *figures.point_check(ours, peers),
        *[t.line() for t in figures.targets(ours, peers)],
    ]
    incomplete = [f.name for f in (ours, *peers) if not f.complete]
    if incomplete:
        lines.append(
            f"!!! INCOMPLETE: {', '.join(incomplete)} did not finish the backlog: figures are partial !!!"
        )
    if options.profile:
        lines.append(f"profile of the worker (figures distorted by profiling): {options.profile}")
    lines.append(figures.last_line(ours))
    return lines


def run_bench(
    settings: Settings, options: BenchOptions, out: TextIO = sys.stdout, progress: Progress | None = None
) -> int:
    """Run the benchmark, print the figures to ``out`` (progress to stderr); the exit code."""
    progress = progress or Progress()
    progress(
        f"generating the fleet: {options.units:,} units × {options.meters} meters, "
        f"{options.per_message} readings per message"
    )
    fleet = BenchFleet.generate(options.units, options.meters, options.per_message, seed=options.seed)
    last_minute = interval_aligned(options.backlog_minutes)
    backlog = fleet.messages(last_minute + 2)  # minutes 0 … N and the minute closing (N − 15, N]
    end = EndCheck.of_backlog(
        PeerAccounting(unit_tags(fleet), accounting_options(settings)), backlog, last_minute
    )
    progress(
        f"backlog: {len(backlog):,} messages, {sum(m.readings for m in backlog):,} readings; "
        f"it ends when the {end.points:,} energy points of its last closed interval sum to "
        f"{end.tce:,.6f} tce"
    )
    workdir = Path(tempfile.mkdtemp(prefix="energymon-bench-"))
    backends: Backends | None = None
    producer: ReadingsProducer | None = None
    keep = False
    try:
        backends = start_backends(settings, workdir, options.configured)
        progress(f"broker {backends.bootstrap}, InfluxDB {backends.influx_url}, work dir {workdir}")
        peer_topics = [f"bench.{p}.readings" for p in PEERS] if options.peers else []
        backends.create_topics([*WORKER_TOPICS, *peer_topics], settings.kafka.topic_partitions)
        producer = ReadingsProducer(backends.kafka_options, linger_ms=5)
        ctx = Context(options, backends, producer, progress, workdir)
        ours = run_ours(ctx, settings, fleet, backlog, end)
        peers = [run_peer(ctx, settings, p, fleet, backlog, end) for p in PEERS] if options.peers else []
        for text in report(options, fleet, backlog, end, ours, peers):
            print(text, file=out, flush=True)
        return 0 if ours.complete and all(p.complete for p in peers) else 1
    except (RuntimeError, TimeoutError, OSError) as exc:
        keep = True
        print(f"energymon bench failed: {exc}\n(logs kept in {workdir})", file=sys.stderr, flush=True)
        return 1
    except BaseException:
        keep = True
        progress(f"interrupted: logs kept in {workdir}")
        raise
    finally:
        if producer is not None:
            producer.close()
        if backends is not None:
            backends.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
