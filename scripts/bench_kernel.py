"""How many readings per second the accounting kernel handles on one core.

Not a test: a measurement to run by hand on the machine in question. It builds readings messages in
memory (no broker, no InfluxDB), pins itself to one CPU and times three steps:

  (a) parse            ``energy.schema.parse_message`` only (JSON and validation);
  (b) parse + ledger   (a), then ``UnitLedger.apply``: counter rules (the delta), interval split and
                       conversion to tce and tCO₂. This is the kernel figure of the issue
                       (aim: at least 200 000 readings/s);
  (c) processor        ``streams.processor.BatchProcessor.process`` on batches of 100 messages (the
                       worker's default ``stream.batch_max``), which adds InfluxDB line protocol,
                       and the unit states' table writes (``streams.state``: a log record or a
                       snapshot per unit and batch) into a dict.

Every run starts from an empty table and applies the same messages; one warm-up run, then the
median of ``--repeat`` runs is shown as readings/s and µs/reading (wall time), and as readings/s of
CPU time of this process: on a busy machine the core is shared even when pinned, and the CPU figure
leaves out the time other processes took. After the timings: the records and bytes step (c) wrote
to the table per message and per reading.

Three sets of messages are timed:

* ``simulator``: ``collectors.simulator.Fleet`` scans, one message per unit per minute, as the
  simulator publishes them (about 7 readings per message);
* ``K/message``: the meters of several simulated units merged into one unit of ``K`` meters, so
  that every message carries ``K`` readings, with the same realistic registers and quantities;
* ``fleet Nu``: ``--fleet-units`` copies of those units (default 2000) for ``--fleet-minutes``,
  the minute's messages interleaved unit by unit as a worker owning thousands of units sees them:
  each batch touches 100 distinct units, each unit's state is loaded and stored once per batch.

Last, the state of ``--memory-units`` units after ``--memory-minutes`` minutes (default 150: past
the 2 h lateness window, every meter remembers its readings of the window): bytes per meter in
memory and in the table, and the table writes per reading of its last 30 minutes, one batch a
minute (one message of each unit per batch).

Registry records are the simulator's (``collectors.simulator.registry_for``: the sample registry,
with meters and their ``register_max``, for the units it describes), so the counter rules check
roll-over limits as they do in the stack; ``--registry bare`` leaves the meters out.

Usage, from the repository root::

    python scripts/bench_kernel.py                       # 50 units, 60 minutes, 50/message, 5 runs
    python scripts/bench_kernel.py --units 200 --minutes 30 --readings-per-message 100 --repeat 7
    python scripts/bench_kernel.py --cpu 0               # the CPU to pin to (default: the last one)
    python scripts/bench_kernel.py --registry bare       # registry records without meters
    python scripts/bench_kernel.py --fleet-units 0 --memory-units 0   # the first two sets only

Figures depend on the machine and on what else runs on it: compare runs made on the same machine
at the same time, and look at the spread between repeated runs before trusting a difference.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.simulator import MINUTE_MS, Fleet, SimUnit, registry_for
from energy.accounting import Accountant
from energy.ledger import LedgerPolicy, UnitLedger
from energy.registry import UnitInfo
from energy.schema import parse_message
from streams.processor import BatchProcessor
from streams.state import UnitStateStore, write

#: 2026-01-05 00:00 Asia/Shanghai (a Monday): the first scan of every run.
START_MS = 1_767_542_400_000
#: Messages per ``BatchProcessor.process`` call (the worker's default ``stream.batch_max``).
BATCH = 100


@dataclass
class Workload:
    """Messages to time, in the order a worker would see them, and the registry they refer to."""

    name: str
    messages: list[bytes]
    readings: int
    infos: dict[str, UnitInfo]

    @property
    def per_message(self) -> float:
        return self.readings / len(self.messages)


def simulator_workload(fleet: Fleet, registry: dict[str, UnitInfo], minutes: int) -> Workload:
    """One scan per unit per minute, as the simulator publishes them."""
    messages: list[bytes] = []
    readings = 0
    for step in range(minutes):
        t = START_MS + step * MINUTE_MS
        for unit in fleet.units:
            doc = fleet.scan(unit, t, seq=t, previous_t_ms=t - MINUTE_MS)
            readings += len(doc["readings"])
            messages.append(orjson.dumps(doc))
    infos = {u.unit_id: registry[u.unit_id] for u in fleet.units}
    return Workload("simulator", messages, readings, infos)


def merged_docs(
    fleet: Fleet, registry: dict[str, UnitInfo], units: int, minutes: int, per_message: int
) -> tuple[list[list[dict[str, Any]]], dict[str, UnitInfo]]:
    """``units`` units of ``per_message`` meters each, made of the meters of consecutive simulated
    units (meter ids stay unique: they start with the simulated unit's id). A merged unit has the
    registry record of its first simulated unit (province, grid region) with the registry meters of
    all of them. Returns the messages (as documents) of each minute, unit by unit, and the records."""
    groups: list[list[SimUnit]] = []
    pool = list(fleet.units)
    for _ in range(units):
        group: list[SimUnit] = []
        meters = 0
        while meters < per_message:
            unit = pool.pop(0)
            group.append(unit)
            meters += len(unit.meters)
        groups.append(group)
    docs: list[list[dict[str, Any]]] = []
    for step in range(minutes):
        t = START_MS + step * MINUTE_MS
        minute = []
        for group in groups:
            scans = [fleet.scan(u, t, seq=t, previous_t_ms=t - MINUTE_MS) for u in group]
            merged = [r for scan in scans for r in scan["readings"]][:per_message]
            minute.append(
                {"v": 1, "unit_id": group[0].unit_id, "source": "bench", "seq": t, "readings": merged}
            )
        docs.append(minute)
    infos = {
        group[0].unit_id: registry[group[0].unit_id].model_copy(
            update={"meters": tuple(m for u in group for m in registry[u.unit_id].meters)}
        )
        for group in groups
    }
    return docs, infos


def merged_workload(
    fleet: Fleet, registry: dict[str, UnitInfo], units: int, minutes: int, per_message: int
) -> Workload:
    """:func:`merged_docs` as one message per unit per minute, a minute's messages together."""
    docs, infos = merged_docs(fleet, registry, units, minutes, per_message)
    messages = [orjson.dumps(doc) for minute in docs for doc in minute]
    readings = sum(len(doc["readings"]) for minute in docs for doc in minute)
    return Workload(f"{per_message}/message", messages, readings, infos)


def fleet_workload(
    docs: list[list[dict[str, Any]]], infos: dict[str, UnitInfo], units: int, name: str
) -> Workload:
    """A fleet of ``units`` units made of copies of the merged units of ``docs`` (unit id ``<id>#<k>``),
    each sending one message a minute, the minute's messages interleaved unit by unit: every batch of
    :data:`BATCH` messages then touches :data:`BATCH` distinct units, as on a worker that owns
    thousands of units (each unit's state is loaded, changed and stored once per batch)."""
    templates = list(infos)
    copies = [(f"{templates[k % len(templates)]}#{k}", k % len(templates)) for k in range(units)]
    messages: list[bytes] = []
    readings = 0
    for minute in docs:
        for unit_id, template in copies:
            doc = {**minute[template], "unit_id": unit_id}
            readings += len(doc["readings"])
            messages.append(orjson.dumps(doc))
    fleet_infos = {
        unit_id: infos[templates[template]].model_copy(update={"unit_id": unit_id})
        for unit_id, template in copies
    }
    return Workload(name, messages, readings, fleet_infos)


def run_parse(work: Workload) -> None:
    for raw in work.messages:
        parse_message(raw)


def run_ledger(work: Workload, accountant: Accountant, policy: LedgerPolicy) -> tuple[int, int]:
    """(b): parse and apply every message; returns (readings accepted, rejections)."""
    ledgers: dict[str, UnitLedger] = {}
    accepted = rejected = 0
    infos = work.infos
    for raw in work.messages:
        msg = parse_message(raw)
        ledger = ledgers.get(msg.unit_id)
        if ledger is None:
            ledger = ledgers[msg.unit_id] = UnitLedger(msg.unit_id)
        result = ledger.apply(msg, accountant, policy, infos.get(msg.unit_id))
        accepted += result.accepted
        rejected += len(result.rejections)
    return accepted, rejected


@dataclass
class Written:
    """What step (c) wrote to the table: records and bytes (keys and values; a deletion is a record
    with an empty value, as a changelog tombstone)."""

    records: int = 0
    bytes: int = 0
    cpu_s: float = 0.0


def run_processor(
    work: Workload,
    accountant: Accountant,
    policy: LedgerPolicy,
    written: Written | None = None,
    batch: int = BATCH,
    count_from: int = 0,
) -> UnitStateStore:
    """(c): the worker's batch step on batches of ``batch`` messages, the table writes included (a
    snapshot and log per unit, ``streams.state``); ``written`` counts the writes and the CPU time of
    the messages from ``count_from`` on. Returns the store (its cache holds the units' states)."""
    processor = BatchProcessor(accountant, policy)
    table: dict[bytes, bytes] = {}
    states = UnitStateStore(table, processor)
    messages = work.messages
    for i in range(0, len(messages), batch):
        counted = written is not None and i >= count_from
        start = time.process_time()
        processor.process(messages[i : i + batch], states, work.infos.get)
        records = states.end_batch()
        write(table, records)
        if written is not None and counted:
            written.cpu_s += time.process_time() - start
            written.records += len(records)
            written.bytes += sum(len(key) + len(value or b"") for key, value in records)
    return states


def deep_size(root: object) -> int:
    """Bytes of the Python objects reachable from ``root`` (``sys.getsizeof`` of each object once;
    classes, functions and modules are left out)."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, ModuleType, FunctionType)):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        else:
            if hasattr(obj, "__dict__"):
                stack.append(vars(obj))
            for name in getattr(type(obj), "__slots__", ()):
                if hasattr(obj, name):
                    stack.append(getattr(obj, name))
    return total


#: Minutes of the fleet workload processed before the timed runs (every unit known and snapshotted).
FLEET_WARM_UP = 2


def steady_fleet(
    work: Workload, accountant: Accountant, policy: LedgerPolicy, units: int, minutes: int, repeat: int
) -> None:
    """Step (c) on the fleet in steady state: one store over ``FLEET_WARM_UP`` untimed minutes, then
    ``repeat`` timed runs of the next ``minutes`` minutes each (batches of :data:`BATCH`, the table
    writes included); the median is printed, with the writes per message and per reading."""
    processor = BatchProcessor(accountant, policy)
    table: dict[bytes, bytes] = {}
    states = UnitStateStore(table, processor)
    per_minute = units
    written = Written()

    def run(first: int, last: int, count: Written | None) -> None:
        messages = work.messages[first * per_minute : last * per_minute]
        for i in range(0, len(messages), BATCH):
            processor.process(messages[i : i + BATCH], states, work.infos.get)
            records = states.end_batch()
            write(table, records)
            if count is not None:
                count.records += len(records)
                count.bytes += sum(len(key) + len(value or b"") for key, value in records)

    run(0, FLEET_WARM_UP, None)
    wall, cpu = [], []
    for k in range(repeat):
        first = FLEET_WARM_UP + k * minutes
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        run(first, first + minutes, written)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    readings = work.readings * minutes / (len(work.messages) / per_minute)
    seconds, cpu_seconds = statistics.median(wall), statistics.median(cpu)
    label = f"{work.name} ({work.per_message:.1f}/msg)"
    print(
        f"{'(c) steady':<20} {label:<22} {readings / seconds:>12,.0f} {seconds / readings * 1e6:>11.2f} "
        f"{readings / cpu_seconds:>15,.0f}"
    )
    messages = repeat * minutes * per_minute
    print(
        f"  writes: {written.records / messages:.2f} records/message, "
        f"{written.bytes / (readings * repeat):,.1f} bytes/reading; {states.replayed} messages replayed"
    )


def steady_state(work: Workload, accountant: Accountant, policy: LedgerPolicy, units: int, last: int) -> None:
    """Print the state per meter after ``work`` (past the lateness window: every meter remembers its
    2 h of readings) — the store's cache (ledgers, monitors) and the table's records — and the
    table writes of its last ``last`` minutes, each batch holding one message of each unit."""
    written = Written()
    count_from = len(work.messages) - last * units
    states = run_processor(work, accountant, policy, written, batch=units, count_from=count_from)
    meters = sum(len(state.ledger.meters) for state in states.cached_states())
    memory = deep_size(states.cached_states()) / meters
    table = sum(len(k) + len(v) for k, v in states.table.items()) / meters
    readings = work.readings * last * units / len(work.messages)
    print(f"  {memory:,.0f} bytes/meter of cached Python objects, {table:,.0f} bytes/meter in the table")
    print(
        f"  its last {last} minutes, a batch per minute: {readings / written.cpu_s:,.0f} CPU readings/s, "
        f"{written.records / (last * units):.2f} records/message, "
        f"{written.bytes / readings:,.1f} bytes/reading"
    )


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time (s) of ``repeat`` runs after one warm-up run."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def pin(cpu: int | None) -> int | None:
    """Pin this process to one CPU (default: the last one allowed); None where not supported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    chosen = sorted(os.sched_getaffinity(0))[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Readings per second of the accounting kernel, on one core.")
    ap.add_argument("--units", type=int, default=50, help="units per set of messages (default 50)")
    ap.add_argument("--minutes", type=int, default=60, help="scans per unit, one a minute (default 60)")
    ap.add_argument(
        "--readings-per-message", type=int, default=50, help="K of the merged messages (default 50)"
    )
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per figure; the median is shown")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed)")
    ap.add_argument(
        "--registry",
        choices=("sample", "bare"),
        default="sample",
        help="the simulator's registry records with meters (default) or bare ones without",
    )
    ap.add_argument("--seed", type=int, default=2026, help="fleet seed (the sample registry is for 2026)")
    ap.add_argument(
        "--fleet-units", type=int, default=2000, help="units of the fleet workload (default 2000; 0: skip it)"
    )
    ap.add_argument(
        "--fleet-minutes", type=int, default=2, help="minutes of the fleet workload per timed run (default 2)"
    )
    ap.add_argument(
        "--memory-units",
        type=int,
        default=10,
        help="units of the state-size measurement (default 10; 0: skip)",
    )
    ap.add_argument(
        "--memory-minutes",
        type=int,
        default=150,
        help="minutes of data before the state is measured (default 150: past the 2 h lateness window)",
    )
    args = ap.parse_args(argv)
    if args.units < 1 or args.minutes < 2 or args.readings_per_message < 1 or args.repeat < 1:
        ap.error("--units, --readings-per-message and --repeat must be >= 1, --minutes >= 2")
    if args.fleet_units < 0 or args.fleet_minutes < 1 or args.memory_units < 0 or args.memory_minutes < 2:
        ap.error("--fleet-units and --memory-units must be >= 0, --fleet-minutes >= 1, --memory-minutes >= 2")

    cpu = pin(args.cpu)
    # every simulated unit has at least 6 meters: enough units to merge into K per message
    fleet = Fleet.generate(units=args.units * (math.ceil(args.readings_per_message / 6) + 1), seed=args.seed)
    small = Fleet.generate(units=args.units, seed=args.seed)
    records = registry_for(fleet) if args.registry == "sample" else fleet.registry_records()
    registry = {info.unit_id: info for info in records}
    fleet_minutes = FLEET_WARM_UP + args.repeat * args.fleet_minutes
    minutes = max(args.minutes, fleet_minutes if args.fleet_units else 0)
    minutes = max(minutes, args.memory_minutes if args.memory_units else 0)
    docs, infos = merged_docs(fleet, registry, args.units, minutes, args.readings_per_message)
    merged = [orjson.dumps(doc) for minute in docs[: args.minutes] for doc in minute]
    per_message = f"{args.readings_per_message}/message"
    workloads = [
        simulator_workload(small, registry, args.minutes),
        Workload(per_message, merged, sum(len(orjson.loads(m)["readings"]) for m in merged), infos),
    ]

    print(f"python   {platform.python_implementation()} {platform.python_version()} ({sys.executable})")
    print(f"cpu      {cpu_model()}, pinned to CPU {cpu if cpu is not None else '(not pinned)'}")
    print(f"runs     median of {args.repeat} after one warm-up; {args.units} units, {args.minutes} minutes")
    if args.fleet_units:
        print(
            f"fleet    {args.fleet_units} units, {per_message}, interleaved unit by unit: each batch of "
            f"{BATCH} messages touches {BATCH} distinct units; {FLEET_WARM_UP} minutes untimed, then "
            f"{args.fleet_minutes} minutes a run"
        )
    print(f"load     {os.getloadavg()[0]:.2f} (1-minute load average before the runs)")
    for work in workloads:
        described = sum(1 for info in work.infos.values() if info.meters)
        print(f"registry {work.name}: {described} of {len(work.infos)} units with registry meters")
    print()
    print(f"{'step':<20} {'messages':<22} {'readings/s':>12} {'µs/reading':>11} {'CPU readings/s':>15}")
    accountant = Accountant()
    policy = LedgerPolicy()
    written: dict[str, Written] = {}
    for work in workloads:
        _accepted, rejected = run_ledger(work, accountant, policy)
        if rejected:
            print(f"warning: {work.name}: {rejected} of {work.readings} readings rejected", file=sys.stderr)
        label = f"{work.name} ({work.per_message:.1f}/msg)"
        steps: list[tuple[str, Callable[[], object]]] = [
            ("(a) parse", partial(run_parse, work)),
            ("(b) parse + ledger", partial(run_ledger, work, accountant, policy)),
            ("(c) processor", partial(run_processor, work, accountant, policy)),
        ]
        for step, fn in steps:
            seconds, cpu_seconds = timed(fn, args.repeat)
            print(
                f"{step:<20} {label:<22} {work.readings / seconds:>12,.0f} "
                f"{seconds / work.readings * 1e6:>11.2f} {work.readings / cpu_seconds:>15,.0f}"
            )
        written[work.name] = w = Written()
        run_processor(work, accountant, policy, w)
    print()
    print("table writes of step (c) (records and bytes written to the `ledgers` table and its changelog)")
    for work in workloads:
        w = written[work.name]
        print(
            f"  {work.name:<20} {w.records / len(work.messages):6.2f} records/message "
            f"{w.bytes / work.readings:10,.1f} bytes/reading"
        )
    if args.fleet_units:
        work = fleet_workload(docs[:fleet_minutes], infos, args.fleet_units, f"fleet {args.fleet_units}u")
        print()
        steady_fleet(work, accountant, policy, args.fleet_units, args.fleet_minutes, args.repeat)
    if args.memory_units:
        work = fleet_workload(docs[: args.memory_minutes], infos, args.memory_units, "memory")
        print()
        print(f"state    after {args.memory_minutes} minutes of {per_message} ({args.memory_units} units)")
        steady_state(work, accountant, policy, args.memory_units, min(30, args.memory_minutes // 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
