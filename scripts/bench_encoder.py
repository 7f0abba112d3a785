"""How many points per second our line-protocol encoders build on one core.

Not a test: a measurement to run by hand on the machine in question. It builds the arguments of
points of each of our measurements in memory (varied units, meters and values, as a worker sees
them), pins itself to one CPU (as scripts/bench_kernel.py does) and times, for each measurement, its
precompiled encoder of ``streams.sinks.measurements`` (``encode_energy(...)``), the one
``streams.processor`` calls.

``overall`` is a worker's mix: per 1,000 energy points, 60 unit_energy, 20 unit_status, 2
meter_event, 2 alert and 2 data_quality points. One warm-up run, then the median of ``--repeat``
runs, in points/s of wall time and of CPU time of this process (on a shared machine the pinned core
is shared too; the CPU figure leaves out what others took). The issue's target: ≥ 300,000 points/s
overall on one core.

Usage, from the repository root::

    python scripts/bench_encoder.py                      # 100,000 energy points per run, 7 runs
    python scripts/bench_encoder.py --points 200000 --repeat 9 --cpu 0
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_kernel import cpu_model, pin

from streams.sinks.encoders import Measurement
from streams.sinks.measurements import MEASUREMENTS

START_MS = 1_767_542_400_000
#: Points of each measurement per 1,000 energy points in a worker's output.
MIX = {"energy": 1000, "unit_energy": 60, "unit_status": 20, "meter_event": 2, "alert": 2, "data_quality": 2}
ENERGIES = ("electricity", "natural_gas", "steam", "raw_coal", "diesel")


def field_values(m: Measurement, rng: random.Random, i: int) -> list[Any]:
    """Values of the declared fields of a point: floats, a bool, short strings."""
    out: list[Any] = []
    for name, kind in m.fields.items():
        if kind.value == "float":
            out.append(round(rng.uniform(0, 500), rng.randint(1, 9)))
        elif kind.value == "bool":
            out.append(i % 7 == 0)
        else:
            out.append(f"{name} {i % 13}: 用能超过预警值")
    return out


def status_fields(rng: random.Random) -> dict[str, Any]:
    """A unit_status point's fields: ~30 numbers and a few levels, as energy.monitor gives them."""
    fields: dict[str, Any] = {f"f{k}_pct": rng.uniform(0, 150) for k in range(28)}
    fields.update(level="yellow", energy_total_level="green", co2_total_level="yellow", projection="linear")
    return fields


def workload(m: Measurement, count: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """``count`` argument tuples of ``m``'s encoder: 200 units, 20 meters each, 15-minute steps."""
    rng = random.Random(seed)
    tag_values = {
        "unit_id": lambda i: f"9132{i % 200:06d}MA1X",
        "region": lambda i: ("江苏", "浙江", "山东")[i % 3],
        "industry": lambda i: ("C30", "C26", "D44")[i % 3],
        "meter_id": lambda i: f"M{i % 20:02d}",
        "energy": lambda i: ENERGIES[i % 5],
        "role": lambda i: "sub" if i % 20 == 19 else "main",
        "event": lambda i: "meter_swap",
        "rule": lambda i: "hourly_ceiling",
        "severity": lambda i: "warning",
    }
    out = []
    for i in range(count):
        tags = [tag_values[t](i) for t in m.tags]
        extra = [status_fields(rng)] if m.dynamic_fields else []
        out.append((*tags, *field_values(m, rng, i), *extra, START_MS + (i // 4000) * 900_000))
    return out


def timed(encode: Callable[..., Any], args: list[tuple[Any, ...]], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of encoding every point of ``args`` (after one warm-up run)."""
    wall, cpu = [], []
    for run in range(repeat + 1):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        for a in args:
            encode(*a)
        if run:
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Points per second of the line-protocol encoders, on one core.")
    ap.add_argument("--points", type=int, default=100_000, help="energy points per run (default 100,000)")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs per figure; the median is shown")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed)")
    opts = ap.parse_args(argv)
    cpu = pin(opts.cpu)
    print(f"{cpu_model()}, Python {platform.python_version()}, pinned to CPU {cpu}, median of {opts.repeat}")
    print(f"{'measurement':<14}{'points':>9}{'points/s':>14}{'(cpu)/s':>12}")
    n, total_wall, total_cpu = 0, 0.0, 0.0
    for m in MEASUREMENTS:
        count = max(opts.points * MIX[m.name] // 1000, 1000)
        wall, cpu_s = timed(m.encode, workload(m, count), opts.repeat)
        share = opts.points * MIX[m.name] // 1000 / count  # the mix's share of this run
        n += round(count * share)
        total_wall += wall * share
        total_cpu += cpu_s * share
        print(f"{m.name:<14}{count:>9}{count / wall:>14,.0f}{count / cpu_s:>12,.0f}")
    print(f"{'overall (mix)':<14}{n:>9}{n / total_wall:>14,.0f}{n / total_cpu:>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
