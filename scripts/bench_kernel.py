"""How many readings per second the accounting kernel handles on one core.

Not a test: a measurement to run by hand on the machine in question. It builds readings messages in
memory (no broker, no InfluxDB), pins itself to one CPU and times three steps:

  (a) parse            ``energy.schema.parse_message`` only (JSON and validation);
  (b) parse + ledger   (a), then ``UnitLedger.apply``: counter rules (the delta), interval split and
                       conversion to tce and tCO₂. This is the kernel figure of the issue
                       (aim: at least 200 000 readings/s);
  (c) processor        ``streams.processor.BatchProcessor.process`` on batches of 100 messages (the
                       worker's default ``stream.batch_max``), which adds InfluxDB line protocol.

Ledgers are kept in a dict, so the table store's JSON round trip is in none of them. Every run
starts from empty ledgers and applies the same messages; one warm-up run, then the median of
``--repeat`` runs is shown as readings/s and µs/reading (wall time), and as readings/s of CPU time
of this process: on a busy machine the core is shared even when pinned, and the CPU figure leaves
out the time other processes took.

Two sets of messages are timed:

* ``simulator``: ``collectors.simulator.Fleet`` scans, one message per unit per minute, as the
  simulator publishes them (about 7 readings per message);
* ``K/message``: the meters of several simulated units merged into one unit of ``K`` meters, so
  that every message carries ``K`` readings, with the same realistic registers and quantities.

Registry records are the simulator's (``collectors.simulator.registry_for``: the sample registry,
with meters and their ``register_max``, for the units it describes), so the counter rules check
roll-over limits as they do in the stack; ``--registry bare`` leaves the meters out.

Usage, from the repository root::

    python scripts/bench_kernel.py                       # 50 units, 60 minutes, 50/message, 5 runs
    python scripts/bench_kernel.py --units 200 --minutes 30 --readings-per-message 100 --repeat 7
    python scripts/bench_kernel.py --cpu 0               # the CPU to pin to (default: the last one)
    python scripts/bench_kernel.py --registry bare       # registry records without meters

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

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.simulator import MINUTE_MS, Fleet, SimUnit, registry_for
from energy.accounting import Accountant
from energy.ledger import LedgerPolicy, UnitLedger
from energy.registry import UnitInfo
from energy.schema import parse_message
from streams.processor import BatchProcessor
from streams.state import UnitStateStore

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


def merged_workload(
    fleet: Fleet, registry: dict[str, UnitInfo], units: int, minutes: int, per_message: int
) -> Workload:
    """``units`` units of ``per_message`` meters each, made of the meters of consecutive simulated
    units (meter ids stay unique: they start with the simulated unit's id). A merged unit has the
    registry record of its first simulated unit (province, grid region) with the registry meters of
    all of them."""
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
    messages: list[bytes] = []
    readings = 0
    for step in range(minutes):
        t = START_MS + step * MINUTE_MS
        for group in groups:
            scans = [fleet.scan(u, t, seq=t, previous_t_ms=t - MINUTE_MS) for u in group]
            merged = [r for scan in scans for r in scan["readings"]][:per_message]
            readings += len(merged)
            doc = {"v": 1, "unit_id": group[0].unit_id, "source": "bench", "seq": t, "readings": merged}
            messages.append(orjson.dumps(doc))
    infos = {
        group[0].unit_id: registry[group[0].unit_id].model_copy(
            update={"meters": tuple(m for u in group for m in registry[u.unit_id].meters)}
        )
        for group in groups
    }
    return Workload(f"{per_message}/message", messages, readings, infos)


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


def run_processor(work: Workload, accountant: Accountant, policy: LedgerPolicy) -> tuple[int, int]:
    """(c): the worker's batch step; returns (lines, rejections)."""
    processor = BatchProcessor(accountant, policy)
    table: dict[bytes, bytes] = {}
    states = UnitStateStore(table)
    lines = rejected = 0
    messages = work.messages
    for i in range(0, len(messages), BATCH):
        out = processor.process(messages[i : i + BATCH], states, work.infos.get)
        table.update(states.end_batch())
        lines += len(out.lines)
        rejected += len(out.rejected)
    return lines, rejected


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
    args = ap.parse_args(argv)
    if args.units < 1 or args.minutes < 2 or args.readings_per_message < 1 or args.repeat < 1:
        ap.error("--units, --readings-per-message and --repeat must be >= 1, --minutes >= 2")

    cpu = pin(args.cpu)
    # every simulated unit has at least 6 meters: enough units to merge into K per message
    fleet = Fleet.generate(units=args.units * (math.ceil(args.readings_per_message / 6) + 1), seed=args.seed)
    small = Fleet.generate(units=args.units, seed=args.seed)
    records = registry_for(fleet) if args.registry == "sample" else fleet.registry_records()
    registry = {info.unit_id: info for info in records}
    workloads = [
        simulator_workload(small, registry, args.minutes),
        merged_workload(fleet, registry, args.units, args.minutes, args.readings_per_message),
    ]

    print(f"python   {platform.python_implementation()} {platform.python_version()} ({sys.executable})")
    print(f"cpu      {cpu_model()}, pinned to CPU {cpu if cpu is not None else '(not pinned)'}")
    print(f"runs     median of {args.repeat} after one warm-up; {args.units} units, {args.minutes} minutes")
    for work in workloads:
        described = sum(1 for info in work.infos.values() if info.meters)
        print(f"registry {work.name}: {described} of {len(work.infos)} units with registry meters")
    print()
    print(f"{'step':<20} {'messages':<22} {'readings/s':>12} {'µs/reading':>11} {'CPU readings/s':>15}")
    accountant = Accountant()
    policy = LedgerPolicy()
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
