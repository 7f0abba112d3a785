"""Per-unit state in the `ledgers` table: a snapshot of each unit and a log of the messages applied
to it since (event sourcing), so that a batch writes about as many bytes as it read.

**Keys.** All of a unit's keys go to the unit's changelog partition (``streams.app.UnitTable``
partitions by :func:`unit_of_key`); the separator ``\\x1f`` cannot occur in a unit id (control
characters are refused by ``energy.schema``):

* ``<unit>`` — the *snapshot*: the unit's ledger, its monitor with the full period history
  (``UnitMonitor.fold``) and the registry record the unit was accounted with, under a generation
  number ``gen`` and a random token;
* ``<unit>\\x1flog\\x1f<n>`` — the *log*: the messages applied to the unit in the n-th batch after
  the snapshot (readings and output messages, and refused messages that count for the unit), as
  received, each with the clock reading the batch was processed with (``energy.schema`` refuses
  readings too far ahead of it), under the snapshot's token. The keys are used again after each
  snapshot, so a record whose token is not the snapshot's belongs to an earlier one: the log ends
  before it, and no record is ever deleted;

both as ``EMSNAP1`` / ``EMLOG1``, the token, and a zlib-compressed body (JSON of the snapshot; the
log's messages framed by their length): ~20 bytes a reading in the log, ~2 kB a meter in a
snapshot. No pickle: the changelog is data read back from a topic;
* ``<unit>|periods`` — the archive of the earlier layout (the whole state written after every
  batch, the period history beside it): read when a unit's record is of that layout, deleted after
  the unit's first snapshot.

**Writing.** After a batch, each unit the batch changed gets one record: its log record (about the
size of its messages) or a new snapshot (generation + 1, a new token). A snapshot is written instead
of the ``snapshot_every``-th log record, when the log (compressed) and the batch's messages hold
``max_log_bytes`` (so no record outgrows a Kafka message, and a replay stays short), when the monitor's
journal holds ``fold_buckets`` buckets, when the unit's registry record differs from the
snapshot's, and for a new unit or one of the earlier layout.

**Loading** (after a restart or a rebalance; otherwise the state cached in memory is used, while
the table holds the snapshot this worker wrote last and no log record it did not write): the
snapshot, then its log in order through the function the processor applies messages with
(:class:`Replayer`, its outputs discarded), with the snapshot's registry record and each batch's
clock. Applying a message is deterministic given the state, the message, the registry record, that
clock and the worker's settings, so the loaded state is the state the worker had.

**Crashes.** Records reach the table and its changelog in the order written. After a crash amid a
batch's records the batch is processed again: a unit whose log record was written sees its
messages as repeats (the ledger remembers recent readings), and logs them again, so a later replay
goes the same way; a unit whose snapshot was written has the batch in it, and a unit whose record
was lost has neither. Changing settings that change the accounting (lateness window, coefficients)
before a restart replays the log under the new settings.
"""

from __future__ import annotations

import logging
import secrets
import struct
import zlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from energy.ledger import UnitLedger
from energy.monitor import UnitMonitor
from energy.registry import UnitInfo

log = logging.getLogger("energymon.streams")

ARCHIVE_SUFFIX = "|periods"
#: Separates a unit id from the rest of its log keys (a control character: never in a unit id).
SEP = "\x1f"
_SNAPSHOT_MAGIC = b"EMSNAP1"
_LOG_MAGIC = b"EMLOG1"
_TOKEN_LENGTH = struct.Struct("<H")
_LOG_FRAME = struct.Struct("<qI")  # clock (epoch ms), message length


def archive_key(unit_id: str) -> bytes:
    """The table key of a unit's archive in the earlier layout."""
    return f"{unit_id}{ARCHIVE_SUFFIX}".encode()


def log_key(unit_id: str, n: int) -> bytes:
    """The table key of the ``n``-th log record after a unit's snapshot."""
    return f"{unit_id}{SEP}log{SEP}{n}".encode()


def units_in(table: Mapping[bytes, bytes]) -> list[str]:
    """The ids of the units with a state in ``table`` (their snapshot or earlier-layout record)."""
    sep = SEP.encode()
    return [key.decode() for key in table if sep not in key and not key.endswith(ARCHIVE_SUFFIX.encode())]


def unit_of_key(key: bytes) -> bytes:
    """The unit id part of a table key (the key itself for a unit's snapshot)."""
    cut = key.find(SEP.encode())
    if cut >= 0:
        return key[:cut]
    return key[: -len(ARCHIVE_SUFFIX)] if key.endswith(ARCHIVE_SUFFIX.encode()) else key


# Both records are ``magic, token length (2 bytes), token, zlib-compressed body`` (JSON compresses
# ~7×: a log record is ~20 bytes a reading, a snapshot of a 50-meter unit ~100 kB).


def _prefix(magic: bytes, token: bytes) -> bytes:
    return magic + _TOKEN_LENGTH.pack(len(token)) + token


def _record(magic: bytes, token: bytes, body: bytes) -> bytes:
    return _prefix(magic, token) + zlib.compress(body, 1)


def _unpack(magic: bytes, record: bytes) -> tuple[bytes, bytes]:
    """The token and the body of a record (raises ValueError on a record of another kind)."""
    at = len(magic) + _TOKEN_LENGTH.size
    if not record.startswith(magic) or len(record) < at:
        raise ValueError(f"not a {magic.decode()} record of the unit state")
    (size,) = _TOKEN_LENGTH.unpack_from(record, len(magic))
    token = record[at : at + size]
    try:
        return token, zlib.decompress(record[at + size :])
    except zlib.error as exc:
        raise ValueError(f"{magic.decode()} record cut short or damaged: {exc}") from exc


def log_prefix(token: bytes) -> bytes:
    """How a log record of the snapshot with ``token`` begins."""
    return _prefix(_LOG_MAGIC, token)


def snapshot_prefix(token: bytes) -> bytes:
    """How the snapshot record with ``token`` begins."""
    return _prefix(_SNAPSHOT_MAGIC, token)


def encode_log(token: bytes, messages: Sequence[tuple[int, bytes]]) -> bytes:
    """A log record of the snapshot with ``token``: each ``(clock ms, raw message)`` framed by its
    length (the messages as received, no JSON re-encoding)."""
    frames = b"".join(_LOG_FRAME.pack(now_ms, len(raw)) + raw for now_ms, raw in messages)
    return _record(_LOG_MAGIC, token, frames)


def decode_log(record: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Inverse of :func:`encode_log`: the token and the messages (raises ValueError on a record it
    did not make)."""
    token, frames = _unpack(_LOG_MAGIC, record)
    messages = []
    at, end = 0, len(frames)
    while at < end:
        if at + _LOG_FRAME.size > end:
            raise ValueError("log record cut short")
        now_ms, size = _LOG_FRAME.unpack_from(frames, at)
        at += _LOG_FRAME.size
        if at + size > end:
            raise ValueError("log record cut short")
        messages.append((now_ms, frames[at : at + size]))
        at += size
    return token, messages


def decode_snapshot(record: bytes) -> tuple[bytes, dict[str, Any]]:
    """The token and the document of a snapshot record (raises ValueError on another record)."""
    token, body = _unpack(_SNAPSHOT_MAGIC, record)
    doc: dict[str, Any] = orjson.loads(body)
    return token, doc


def write(table: MutableMapping[bytes, bytes], records: Sequence[tuple[bytes, bytes | None]]) -> None:
    """Carry out :meth:`UnitStateStore.end_batch`'s records in order (None: delete the key)."""
    for key, value in records:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value


class StagedTable(Mapping[bytes, bytes]):
    """The table as it reads once the records of the batches in flight are written: the records staged
    (:meth:`stage`) for a batch whose effects are still being carried out (``streams.app`` stores a
    batch's records only after its points are written, and processes the next batch meanwhile) over
    the table itself, so that the next batch finds its units as this worker left them.
    :meth:`store` writes a staged batch's records to the table; :meth:`drop` forgets every staged
    record (the batches in flight will not be stored)."""

    def __init__(self, table: MutableMapping[bytes, bytes]) -> None:
        self.table = table
        self._staged: dict[bytes, tuple[int, bytes | None]] = {}  # key → (batch, value; None: deleted)
        self._batches = 0

    def stage(self, records: Sequence[tuple[bytes, bytes | None]]) -> int:
        """Read ``records`` (:meth:`UnitStateStore.end_batch`) as written until they are stored;
        returns the batch number :meth:`store` takes."""
        self._batches += 1
        for key, value in records:
            self._staged[key] = (self._batches, value)
        return self._batches

    def store(self, batch: int, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Write the records staged as ``batch`` to the table (:func:`write`), and read them from it."""
        write(self.table, records)
        for key, _ in records:
            staged = self._staged.get(key)
            if staged is not None and staged[0] == batch:  # else a later batch's record is staged
                del self._staged[key]

    def drop(self) -> None:
        """Forget the staged records: the table is what was stored."""
        self._staged.clear()

    def staged(self) -> int:
        """How many records are staged."""
        return len(self._staged)

    def get(self, key: bytes, default: Any = None) -> Any:
        staged = self._staged.get(key)
        if staged is None:
            return self.table.get(key, default)
        return default if staged[1] is None else staged[1]

    def __getitem__(self, key: bytes) -> bytes:
        staged = self._staged.get(key)
        if staged is None:
            return self.table[key]
        if staged[1] is None:
            raise KeyError(key)
        return staged[1]

    def __iter__(self) -> Iterator[bytes]:
        for key in self.table:
            if key not in self._staged:
                yield key
        for key, (_, value) in self._staged.items():
            if value is not None:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class UnitState:
    """Everything the worker keeps of one unit."""

    ledger: UnitLedger
    monitor: UnitMonitor

    def to_json(self) -> dict[str, Any]:
        return {"ledger": self.ledger.to_json(), "monitor": self.monitor.to_json()}


class Replayer(Protocol):
    """Applies one logged message to a unit's state as the processor applied it (outputs discarded):
    ``streams.processor.BatchProcessor``."""

    def replay(self, state: UnitState, info: UnitInfo | None, now_ms: int, raw: bytes) -> None: ...


@dataclass
class _Unit:
    """A unit as the store keeps it: its state, what the table holds of it, and this batch's log."""

    state: UnitState
    token: bytes = b""  # the token of the snapshot this worker wrote or read last (b"": none)
    gen: int = 0
    logged: int = 0  # log records of the snapshot in the table
    log_bytes: int = 0
    info: UnitInfo | None = None  # the registry record of the snapshot
    batch_info: UnitInfo | None = None  # the registry record of this batch
    snapshot: bool = False  # write a snapshot after this batch (if anything was applied)
    stale: list[bytes] = field(default_factory=list)  # keys to delete after the snapshot (an archive)
    pending: list[tuple[int, bytes]] = field(default_factory=list)  # this batch's messages
    pending_bytes: int = 0

    def holds(self, raw: bytes | None, log_record: bytes | None) -> bool:
        """Whether the table holds what this unit was last written as: the snapshot ``raw`` is the one
        of :attr:`token`, and the record after its log (``log_record``) is not of its log."""
        return (
            bool(self.token)
            and raw is not None
            and raw.startswith(snapshot_prefix(self.token))
            and (log_record is None or not log_record.startswith(log_prefix(self.token)))
        )


class UnitStateStore:
    """Loads, caches and stores unit states over a bytes → bytes table (a Faust Table or a dict, or a
    :class:`StagedTable` over one), as snapshots and logs (see the module docstring). Without a
    ``replayer`` nothing is logged: a snapshot is written after every batch that touched the unit."""

    def __init__(
        self,
        table: Mapping[bytes, bytes],
        replayer: Replayer | None = None,
        *,
        snapshot_every: int = 32,
        max_log_bytes: int = 1 << 18,
        fold_buckets: int = 200,
    ) -> None:
        if snapshot_every < 1 or max_log_bytes < 1 or fold_buckets < 1:
            raise ValueError("snapshot_every, max_log_bytes and fold_buckets must be at least 1")
        self.table = table
        self.replayer = replayer
        self.snapshot_every = snapshot_every
        self.max_log_bytes = max_log_bytes
        self.fold_buckets = fold_buckets
        self.folds = 0  # snapshots written (each folds the unit's journal into its history)
        self.replayed = 0  # messages replayed from logs
        self._cache: dict[str, _Unit] = {}
        self._batch: dict[str, _Unit] = {}

    def get(self, unit_id: str, info: UnitInfo | None = None) -> UnitState:
        """The unit's state for this batch (new if the unit was never seen); ``info``: the registry
        record the batch applies the unit's messages with."""
        unit = self._batch.get(unit_id)
        if unit is None:
            raw = self.table.get(unit_id.encode())
            unit = self._cache.get(unit_id)
            if unit is None or not unit.holds(raw, self.table.get(log_key(unit_id, unit.logged))):
                unit = self._cache[unit_id] = self._load(unit_id, raw)
            self._batch[unit_id] = unit
        unit.batch_info = info
        if info is not unit.info:
            if info == unit.info:
                unit.info = info  # the same record (another object: compared once)
            else:
                unit.snapshot = True  # the log must replay with the registry record it was applied with
        return unit.state

    def log(self, unit_id: str, now_ms: int, raw: bytes) -> None:
        """Note that message ``raw`` was applied to the unit (got with :meth:`get` in this batch) with
        the clock reading ``now_ms``."""
        unit = self._batch[unit_id]
        unit.pending.append((now_ms, raw))
        unit.pending_bytes += len(raw)

    def _load(self, unit_id: str, raw: bytes | None) -> _Unit:
        if raw is None:
            return _Unit(UnitState(UnitLedger(unit_id), UnitMonitor(unit_id)), snapshot=True)
        if not raw.startswith(_SNAPSHOT_MAGIC):
            return self._load_earlier(unit_id, orjson.loads(raw))
        token, doc = decode_snapshot(raw)
        registry = doc["registry"]
        info = UnitInfo.model_validate(registry) if registry is not None else None
        monitor, warning = UnitMonitor.restore(unit_id, doc["monitor"], doc["archive"])
        if warning:
            log.warning("%s", warning)
        state = UnitState(UnitLedger.from_json(doc["ledger"]), monitor)
        unit = _Unit(state, token, int(doc["gen"]), info=info)
        prefix = log_prefix(unit.token)
        while (record := self.table.get(log_key(unit_id, unit.logged))) is not None and record.startswith(
            prefix
        ):
            if self.replayer is None:
                raise RuntimeError(f"unit {unit_id}: its log cannot be replayed without a replayer")
            for now_ms, message in decode_log(record)[1]:
                self.replayer.replay(state, info, now_ms, message)
                self.replayed += 1
            unit.logged += 1
            unit.log_bytes += len(record)
        return unit

    def _load_earlier(self, unit_id: str, doc: dict[str, Any]) -> _Unit:
        """A unit stored in the earlier layout: record (ledger, monitor's journal) and archive."""
        archive_raw = self.table.get(archive_key(unit_id))
        archive = orjson.loads(archive_raw) if archive_raw else None
        if "ledger" not in doc:  # a record from before the monitor existed
            doc = {"ledger": doc, "monitor": None}
        monitor, warning = UnitMonitor.restore(unit_id, doc["monitor"], archive)
        if warning:
            log.warning("%s", warning)
        state = UnitState(UnitLedger.from_json(doc["ledger"]), monitor)
        return _Unit(state, snapshot=True, stale=[archive_key(unit_id)] if archive_raw else [])

    def cached_states(self) -> list[UnitState]:
        """The states kept in memory (for measurements)."""
        return [unit.state for unit in self._cache.values()]

    def touched(self) -> dict[str, UnitState]:
        """The units loaded in this batch."""
        return {unit_id: unit.state for unit_id, unit in self._batch.items()}

    def end_batch(self) -> list[tuple[bytes, bytes | None]]:
        """The records to write for this batch, in order (None: delete the key; see :func:`write`),
        and forget the batch."""
        records: list[tuple[bytes, bytes | None]] = []
        for unit_id, unit in self._batch.items():
            if self.replayer is not None and not unit.pending:
                unit.snapshot = False
                continue  # nothing applied to it
            if (
                self.replayer is None
                or unit.snapshot
                or unit.logged + 1 >= self.snapshot_every
                or unit.log_bytes + unit.pending_bytes >= self.max_log_bytes
                # (without flushing the pieces not yet added: a flush per batch would undo their summing)
                or unit.state.monitor.journal.periods.bucket_count() >= self.fold_buckets
            ):
                records.append((unit_id.encode(), self._snapshot(unit)))
                records += [(key, None) for key in unit.stale]
                unit.logged = unit.log_bytes = 0
                unit.stale = []
            else:
                record = encode_log(unit.token, unit.pending)
                records.append((log_key(unit_id, unit.logged), record))
                unit.logged += 1
                unit.log_bytes += len(record)
            unit.pending, unit.pending_bytes, unit.snapshot = [], 0, False
        self._batch = {}
        return records

    def _snapshot(self, unit: _Unit) -> bytes:
        """The unit's snapshot record, of the next generation (its journal folded into its history)."""
        state = unit.state
        archive = state.monitor.fold()
        self.folds += 1
        unit.gen += 1
        unit.token = f"{unit.gen:x}-{secrets.token_hex(8)}".encode()
        unit.info = unit.batch_info
        registry = orjson.Fragment(unit.info.to_json()) if unit.info is not None else None
        doc = {
            "gen": unit.gen,
            "registry": registry,
            "ledger": state.ledger.to_json(),
            "monitor": state.monitor.to_json(),
            "archive": archive,
        }
        return _record(_SNAPSHOT_MAGIC, unit.token, orjson.dumps(doc))

    def forget(self) -> None:
        """Drop the cache (the table may hold what another worker wrote, or lack what this batch
        was to write)."""
        self._cache.clear()
        self._batch = {}
