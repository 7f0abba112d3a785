"""Measure the collector's store-and-forward buffer (collectors/buffer.py): write rate and size on disk.

Writes realistic readings messages (one unit scan: 10 meters, as the agent builds them) into a fresh
buffer file, once per ``synchronous`` mode, one message per transaction (a site's sources emit scan by
scan) and in batches of 50 (all units of one 15-minute round), then extrapolates the file size to six
months of 15-minute data from 500 meters (50 units × 10 meters: 50 messages per 15 min, 876 000
messages in 182.5 days) — or writes them all with ``--full``.

    .venv/bin/python scripts/bench_buffer.py [--dir /var/lib/energymon] [--sample 20000] [--full]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import orjson

from collectors.agent import readings_message
from collectors.buffer import MB, Buffer, Record, Synchronous
from collectors.sources.base import SourceReading

UNITS = 50
METERS_PER_UNIT = 10
SIX_MONTHS_MESSAGES = UNITS * 4 * 24 * 365 // 2  # 876 000
T0_MS = 1_767_196_800_000  # 2026-01-01 00:00 +08:00


def message(i: int) -> Record:
    """The i-th message: unit i % 50's 15-minute scan of its 10 meters (cumulative registers)."""
    unit = f"9132050{i % UNITS:04d}MA1XXXXX0A"
    ts = T0_MS + (i // UNITS) * 900_000
    readings = [
        SourceReading(
            unit, f"{unit}.EL{m:02d}", "electricity", "cumulative", 1_234_567.891 + i * 3.7, "kWh", ts
        )
        for m in range(METERS_PER_UNIT)
    ]
    value = orjson.dumps(readings_message(unit, "js-suzhou-steel/modbus-main", i + 1, readings))
    return Record("readings", unit, value, unit, "modbus-main", i + 1)


def on_disk(path: Path) -> int:
    """Bytes of the database file and its WAL."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def run(folder: Path, sync: Synchronous, n: int, batch: int) -> tuple[float, int, int]:
    """Messages per second, bytes on disk and mean message size for ``n`` messages in ``batch``es."""
    path = folder / f"bench-{sync}-{batch}.db"
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    buf = Buffer(path, max_mb=100_000, synchronous=sync)
    elapsed, value_bytes = 0.0, 0
    for k in range(0, n, batch):
        records = [message(i) for i in range(k, min(k + batch, n))]  # built outside the timing
        value_bytes += sum(len(r.value) for r in records)
        start = time.perf_counter()
        buf.put_many(records)
        elapsed += time.perf_counter() - start
    rate = n / elapsed
    buf.close()
    size = on_disk(path)
    path.unlink()
    return rate, size, value_bytes // n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", type=Path, default=None, help="folder on the disk to measure (default: temp)"
    )
    parser.add_argument("--sample", type=int, default=20_000, help="messages per batched run")
    parser.add_argument("--full", action="store_true", help="write all 876 000 messages (slow)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-buffer-"))
    print(f"folder {folder} (fs {os.statvfs(folder).f_bsize} B blocks)")
    for sync in ("NORMAL", "FULL"):
        rate1, _, _ = run(folder, sync, 2_000, 1)
        print(f"synchronous={sync}: {rate1:,.0f} messages/s one per transaction")
    n = SIX_MONTHS_MESSAGES if args.full else args.sample
    rate, size, msg_bytes = run(folder, "FULL", n, UNITS)
    six_months = size * SIX_MONTHS_MESSAGES / n
    print(
        f"synchronous=FULL, {UNITS} per transaction: {rate:,.0f} messages/s; message {msg_bytes} B "
        f"({METERS_PER_UNIT} readings); {n:,} messages = {size / MB:.1f} MB on disk "
        f"({size / n:.0f} B/message) → six months of {UNITS * METERS_PER_UNIT} meters "
        f"({SIX_MONTHS_MESSAGES:,} messages): {six_months / MB:,.0f} MB"
        + ("" if args.full else " (extrapolated)")
    )


if __name__ == "__main__":
    main()
