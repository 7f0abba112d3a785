"""SQLite files that must survive a kill: the collector's store-and-forward buffer and the alert outbox.

Both open one autocommit connection shared by their threads behind their own lock, write in
``BEGIN IMMEDIATE`` transactions, use the WAL journal, and checkpoint it on close. Standard library
only, so ``collectors/`` and ``alerts/`` can import it without pulling in the rest of ``energymon``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

Synchronous = Literal["NORMAL", "FULL"]
"""``NORMAL``: a power cut may lose the last transactions (never corrupts); ``FULL``: it loses none."""


def open_wal(path: Path, synchronous: Synchronous = "FULL", timeout_s: float = 5.0) -> sqlite3.Connection:
    """An autocommit connection (usable from any thread: guard it with a lock) to the file at ``path``,
    created with its folder if missing, in WAL mode. ``timeout_s`` is how long a write waits for
    another process's lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout_s)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` when the block raises (the caller holds the
    connection's lock)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def close_checkpointed(db: sqlite3.Connection) -> None:
    """Fold the WAL into the database file and close (nothing happens when already closed)."""
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.ProgrammingError:
        return  # already closed
    db.close()


def add_missing_columns(db: sqlite3.Connection, table: str, columns: dict[str, str]) -> list[str]:
    """Add each column of ``columns`` (name → SQL type and default) that ``table`` lacks, for files
    written by an older version; returns the names added."""
    have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    added = [name for name in columns if name not in have]
    for name in added:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {columns[name]}")
    return added
