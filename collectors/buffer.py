"""The store-and-forward buffer of a site collector: an SQLite file (WAL journal) of messages not yet
acknowledged by the broker (values zlib-compressed), plus each source's ``seq`` counter and last
success.

A message is written (:meth:`Buffer.put_many`, one transaction) before anything is sent, read back
oldest first (:meth:`Buffer.oldest`) and deleted (:meth:`Buffer.delete`) only once the broker
acknowledged it. The file is bounded by ``max_mb``: past ``warn_pct`` a warning is logged, and when
it is full new messages are refused with :class:`BufferFull` (and counted) — unsent data is never
dropped to make room. Every committed transaction survives a kill of the process (WAL); with
``synchronous=FULL`` (the default, see collectors/README.md) also a power cut.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from energymon.sqlite import Synchronous, close_checkpointed, open_wal, transaction

log = logging.getLogger("energymon.collect.buffer")

MB = 1024 * 1024
#: zlib level of stored values: a 10-reading JSON message of ~1.5 kB shrinks to ~0.3 kB.
ZLIB_LEVEL = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT,
    value BLOB NOT NULL,  -- zlib-compressed
    unit_id TEXT NOT NULL,
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_success REAL,
    last_sent REAL,
    refused INTEGER NOT NULL DEFAULT 0
);
"""


class BufferFull(RuntimeError):
    """The buffer reached ``max_mb``: the messages were refused (nothing stored was dropped)."""


@dataclass(frozen=True, slots=True)
class Record:
    """A message to buffer: its Kafka ``topic``, ``key`` and ``value`` bytes, and for bookkeeping the
    ``unit_id``, the producing ``source`` (source name) and its ``seq``."""

    topic: str
    key: str | None
    value: bytes
    unit_id: str
    source: str
    seq: int


@dataclass(frozen=True, slots=True)
class Stored:
    """A buffered message: its row ``id`` (send order), the :class:`Record` and ``created_at`` (epoch s)."""

    id: int
    record: Record
    created_at: float


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the buffer keeps per source: last ``seq`` given out, last success (readings buffered) and
    last delivery (a message acknowledged) as epoch seconds, and messages refused when full."""

    source: str
    last_seq: int
    last_success: float | None
    last_sent: float | None
    refused: int


@dataclass(frozen=True, slots=True)
class BufferStats:
    """Backlog (``messages``, ``value_bytes`` of their compressed values), ``used_bytes`` of the
    file's pages in use, the bound ``max_bytes``, and ``oldest_created_at`` of the oldest unsent
    message (epoch s)."""

    messages: int
    value_bytes: int
    used_bytes: int
    max_bytes: int
    oldest_created_at: float | None

    @property
    def used_pct(self) -> float:
        """How full the buffer is, in % of ``max_bytes``."""
        return 100.0 * self.used_bytes / self.max_bytes


class Buffer:
    """The buffer file at ``path`` (created with its folder if missing); thread-safe (one connection
    behind a lock), so the agent may call it from worker threads."""

    def __init__(
        self,
        path: Path,
        max_mb: float = 1024.0,
        warn_pct: float = 80.0,
        synchronous: Synchronous = "FULL",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_mb * MB)
        self.warn_pct = warn_pct
        self._clock = clock
        self._lock = threading.Lock()
        self._db = open_wal(self.path, synchronous)
        self._db.executescript(_SCHEMA)
        self._page_size: int = self._db.execute("PRAGMA page_size").fetchone()[0]
        self._warned = False

    # -- writing -------------------------------------------------------------------------------

    def put_many(self, records: Sequence[Record], success_at: float | None = None) -> list[int]:
        """Store ``records`` in one transaction (all or none) and advance each source's ``last_seq``
        (and ``last_success`` to ``success_at``, epoch s, when given); returns their ids in order.
        Raises :class:`BufferFull` (counting the refusal per source) when they do not fit."""
        if not records:
            return []
        now = self._clock()
        blobs = [zlib.compress(r.value, ZLIB_LEVEL) for r in records]
        incoming = sum(
            len(b) + len(r.unit_id) * 2 + len(r.source) + len(r.topic) + 48
            for r, b in zip(records, blobs, strict=True)
        )
        with self._lock:
            used = self._used_bytes()
            if used + incoming > self.max_bytes:
                self._count_refusal(records)
                raise BufferFull(
                    f"buffer {self.path} is full ({used / MB:.1f} of {self.max_bytes / MB:g} MB): "
                    f"refused {len(records)} new message(s); unsent messages are kept"
                )
            with self._transaction():
                ids = [
                    self._db.execute(
                        "INSERT INTO messages (topic, key, value, unit_id, source, seq, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (r.topic, r.key, blob, r.unit_id, r.source, r.seq, now),
                    ).lastrowid
                    or 0
                    for r, blob in zip(records, blobs, strict=True)
                ]
                last: dict[str, int] = {}
                for r in records:
                    last[r.source] = max(last.get(r.source, 0), r.seq)
                for source, seq in last.items():
                    self._db.execute(
                        "INSERT INTO sources (source, last_seq, last_success) VALUES (?, ?, ?) "
                        "ON CONFLICT(source) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), "
                        "last_success = coalesce(excluded.last_success, last_success)",
                        (source, seq, success_at),
                    )
            self._warn_if_filling(used + incoming)
        return ids

    def delete(self, ids: Iterable[int], sent_at: float | None = None) -> int:
        """Remove acknowledged messages (call only after the broker acknowledged them) and set their
        sources' ``last_sent`` to ``sent_at`` (epoch s, default now); returns how many were removed."""
        id_list = list(ids)
        if not id_list:
            return 0
        when = self._clock() if sent_at is None else sent_at
        removed = 0
        with self._lock, self._transaction():
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                marks = ",".join("?" * len(chunk))
                self._db.execute(
                    f"UPDATE sources SET last_sent = ? WHERE source IN "
                    f"(SELECT DISTINCT source FROM messages WHERE id IN ({marks}))",
                    (when, *chunk),
                )
                removed += self._db.execute(f"DELETE FROM messages WHERE id IN ({marks})", chunk).rowcount
        return removed

    # -- reading -------------------------------------------------------------------------------

    def oldest(self, n: int) -> list[Stored]:
        """The ``n`` oldest unsent messages, oldest first (the order they were put in)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, key, value, unit_id, source, seq, created_at FROM messages "
                "ORDER BY id LIMIT ?",
                (n,),
            ).fetchall()
        return [
            Stored(row[0], Record(row[1], row[2], zlib.decompress(row[3]), *row[4:7]), row[7]) for row in rows
        ]

    def last_seq(self, source: str) -> int:
        """The last ``seq`` stored for ``source`` (0 before its first message); survives restarts."""
        with self._lock:
            row = self._db.execute("SELECT last_seq FROM sources WHERE source = ?", (source,)).fetchone()
        return int(row[0]) if row else 0

    def sources(self) -> list[SourceState]:
        """The state of every source that ever stored a message or was refused, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT source, last_seq, last_success, last_sent, refused FROM sources ORDER BY source"
            ).fetchall()
        return [SourceState(*row) for row in rows]

    def stats(self) -> BufferStats:
        """Backlog, size and the age of the oldest unsent message (a full scan: ~0.1 s per 10⁶ rows)."""
        with self._lock:
            count, value_bytes = self._db.execute(
                "SELECT count(*), coalesce(sum(length(value)), 0) FROM messages"
            ).fetchone()
            oldest = self._db.execute("SELECT created_at FROM messages ORDER BY id LIMIT 1").fetchone()
            used = self._used_bytes()
        return BufferStats(count, value_bytes, used, self.max_bytes, oldest[0] if oldest else None)

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close (safe to call twice)."""
        with self._lock:
            close_checkpointed(self._db)

    # -- internals -----------------------------------------------------------------------------

    def _transaction(self) -> AbstractContextManager[None]:
        return transaction(self._db)

    def _used_bytes(self) -> int:
        pages: int = self._db.execute("PRAGMA page_count").fetchone()[0]
        free: int = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * self._page_size

    def _count_refusal(self, records: Sequence[Record]) -> None:
        counts: dict[str, int] = {}
        for r in records:
            counts[r.source] = counts.get(r.source, 0) + 1
        with self._transaction():
            for source, n in counts.items():
                self._db.execute(
                    "INSERT INTO sources (source, refused) VALUES (?, ?) "
                    "ON CONFLICT(source) DO UPDATE SET refused = refused + excluded.refused",
                    (source, n),
                )
        log.error(
            "buffer %s is FULL (max %g MB): refusing new messages from %s; nothing stored is dropped",
            self.path,
            self.max_bytes / MB,
            ", ".join(sorted(counts)),
        )

    def _warn_if_filling(self, used: int) -> None:
        pct = 100.0 * used / self.max_bytes
        if pct >= self.warn_pct and not self._warned:
            log.warning(
                "buffer %s is %.0f%% full (%.1f of %g MB; warning at %g%%): the broker has not "
                "acknowledged messages for a while; new messages are refused at 100%%",
                self.path,
                pct,
                used / MB,
                self.max_bytes / MB,
                self.warn_pct,
            )
        self._warned = pct >= self.warn_pct
