"""The store-and-forward buffer (collectors/buffer.py) on a real SQLite file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.buffer import Buffer, BufferFull, Record


def rec(seq: int, unit: str = "u1", source: str = "sim", size: int = 100) -> Record:
    """A message of ``size`` bytes that do not compress (like the full buffer needs)."""
    return Record("readings", unit, os.urandom(size), unit, source, seq)


def test_oldest_returns_messages_in_the_order_they_were_put(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.db")
    buf.put_many([rec(1, "u1"), rec(2, "u2")])
    buf.put_many([rec(3, "u1")])
    assert [(s.record.seq, s.record.unit_id) for s in buf.oldest(10)] == [(1, "u1"), (2, "u2"), (3, "u1")]
    assert [s.record.seq for s in buf.oldest(2)] == [1, 2]


def test_messages_stay_until_deleted_after_the_ack(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.db")
    records = [rec(1), rec(2), rec(3)]
    buf.put_many(records)
    first = buf.oldest(2)
    assert [s.record for s in first] == records[:2]  # values come back as they were put
    assert buf.stats().messages == 3  # reading does not remove
    assert buf.delete([s.id for s in first], sent_at=123.0) == 2
    assert [s.record.seq for s in buf.oldest(10)] == [3]
    assert buf.sources()[0].last_sent == 123.0


def test_a_full_buffer_refuses_new_messages_and_keeps_the_old_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buf = Buffer(tmp_path / "b.db", max_mb=0.25, warn_pct=50)
    with caplog.at_level(logging.WARNING, "energymon.collect.buffer"):
        stored = 0
        with pytest.raises(BufferFull, match="full"):
            for seq in range(1, 1000):
                buf.put_many([rec(seq, size=2000)])
                stored = seq
    assert stored > 10
    assert "% full" in caplog.text and "FULL" in caplog.text  # the warning, then the refusal
    assert buf.stats().messages == stored  # nothing old dropped
    assert buf.last_seq("sim") == stored  # the refused seq was not taken
    with pytest.raises(BufferFull):
        buf.put_many([rec(stored + 1, size=2000)])
    assert buf.sources()[0].refused == 2
    buf.delete([s.id for s in buf.oldest(stored)])
    assert buf.put_many([rec(stored + 1, size=2000)])  # room again after the ack


def test_a_reopened_buffer_has_its_messages_and_seq_counters(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.db")
    buf.put_many([rec(1, source="a"), rec(7, source="b")], success_at=50.0)
    buf.close()
    again = Buffer(tmp_path / "b.db")
    assert [s.record.seq for s in again.oldest(10)] == [1, 7]
    assert (again.last_seq("a"), again.last_seq("b"), again.last_seq("new")) == (1, 7, 0)
    assert [s.last_success for s in again.sources()] == [50.0, 50.0]


def test_committed_messages_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    code = (
        "import os, signal; from collectors.buffer import Buffer, Record; "
        f"b = Buffer({str(path)!r}); "
        "b.put_many([Record('readings', 'u', b'v', 'u', 's', i) for i in range(1, 6)]); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=False)
    assert proc.returncode == -9
    assert [s.record.seq for s in Buffer(path).oldest(10)] == [1, 2, 3, 4, 5]


def test_stats_report_backlog_and_the_oldest_unsent_time(tmp_path: Path) -> None:
    now = [1000.0]
    buf = Buffer(tmp_path / "b.db", clock=lambda: now[0])
    assert buf.stats().oldest_created_at is None
    buf.put_many([rec(1, size=10)])
    now[0] = 2000.0
    buf.put_many([rec(2, size=30)])
    stats = buf.stats()
    assert (stats.messages, stats.oldest_created_at) == (2, 1000.0)
    assert stats.value_bytes > 40  # compressed random bytes: a little more than put
