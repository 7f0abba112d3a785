"""Per-unit state in the `ledgers` table: the ledger and the monitor's small record under the unit's
key, the monitor's archive under ``<unit>|periods`` (``energy.monitor`` explains the split).

:class:`UnitStateStore` loads a unit once per batch (from an in-memory cache while the stored record
is the one this worker wrote last, so the ~50 kB archive is parsed only after a restart or a
rebalance), folds its journal into the archive when that is due (before the batch's messages are
applied), and gives back the records to write at the end of the batch: archives first, then the
units' records, so the archive never holds a piece that the stored ledger does not know of.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from energy.ledger import UnitLedger
from energy.monitor import UnitMonitor

log = logging.getLogger("energymon.streams")

ARCHIVE_SUFFIX = "|periods"


def archive_key(unit_id: str) -> bytes:
    """The table key of a unit's archive (partitioned like the unit: see ``streams.app``)."""
    return f"{unit_id}{ARCHIVE_SUFFIX}".encode()


def unit_of_key(key: bytes) -> bytes:
    """The unit id part of a table key (the key itself for a unit's record)."""
    return key[: -len(ARCHIVE_SUFFIX)] if key.endswith(ARCHIVE_SUFFIX.encode()) else key


@dataclass
class UnitState:
    """Everything the worker keeps of one unit."""

    ledger: UnitLedger
    monitor: UnitMonitor

    def to_json(self) -> dict[str, Any]:
        return {"ledger": self.ledger.to_json(), "monitor": self.monitor.to_json()}


class UnitStateStore:
    """Loads, caches and stores unit states over a bytes → bytes table (a Faust Table or a dict).

    A journal is folded when it holds ``fold_buckets`` period buckets or more, or when it is not
    empty and ``fold_every_s`` seconds (``clock``) have passed since the unit's last fold."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        *,
        fold_buckets: int = 200,
        fold_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self.fold_buckets = fold_buckets
        self.fold_every_s = fold_every_s
        self.clock = clock
        self.folds = 0
        self._cache: dict[str, tuple[bytes | None, UnitState, float]] = {}
        self._batch: dict[str, UnitState] = {}
        self._archives: dict[str, bytes] = {}

    def get(self, unit_id: str) -> UnitState:
        """The unit's state for this batch (new if the unit was never seen)."""
        state = self._batch.get(unit_id)
        if state is not None:
            return state
        raw = self.table.get(unit_id.encode())
        cached = self._cache.get(unit_id)
        if cached is not None and cached[0] == raw:
            state, folded_at = cached[1], cached[2]
        else:
            state, folded_at = self._load(unit_id, raw), self.clock()
        monitor = state.monitor
        buckets = monitor.journal_buckets()
        if buckets >= self.fold_buckets or (buckets and self.clock() - folded_at >= self.fold_every_s):
            self._archives[unit_id] = orjson.dumps(monitor.fold())
            self.folds += 1
            folded_at = self.clock()
        self._cache[unit_id] = (raw, state, folded_at)
        self._batch[unit_id] = state
        return state

    def _load(self, unit_id: str, raw: bytes | None) -> UnitState:
        doc = orjson.loads(raw) if raw else None
        archive_raw = self.table.get(archive_key(unit_id))
        archive = orjson.loads(archive_raw) if archive_raw else None
        if doc is not None and "ledger" not in doc:  # a record from before the monitor existed
            doc = {"ledger": doc, "monitor": None}
        ledger = UnitLedger.from_json(doc["ledger"]) if doc else UnitLedger(unit_id)
        monitor, warning = UnitMonitor.restore(unit_id, doc["monitor"] if doc else None, archive)
        if warning:
            log.warning("%s", warning)
        return UnitState(ledger, monitor)

    def touched(self) -> dict[str, UnitState]:
        """The units loaded in this batch."""
        return self._batch

    def end_batch(self) -> list[tuple[bytes, bytes]]:
        """The records to write for this batch, in order (archives first), and forget the batch."""
        records = [(archive_key(unit), raw) for unit, raw in self._archives.items()]
        for unit_id, state in self._batch.items():
            raw = orjson.dumps(state.to_json())
            records.append((unit_id.encode(), raw))
            _, _, folded_at = self._cache[unit_id]
            self._cache[unit_id] = (raw, state, folded_at)
        self._batch, self._archives = {}, {}
        return records

    def forget(self) -> None:
        """Drop the cache (after a rebalance: another worker may have changed the table)."""
        self._cache.clear()
