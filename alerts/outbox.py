"""The durable outbox of alert notifications: an SQLite file (WAL journal).

Tables: ``alerts`` (one :class:`~alerts.lifecycle.AlertRecord` per key, with its escalation time),
``changes`` (every alert change seen: the guard against a replayed Kafka record, and the history),
``notifications`` (one row per message to one recipient over one channel: ``queued`` → ``sending``
→ ``delivered`` or ``failed``, with ``next_at_ms`` for backoff) and ``attempts`` (every try and its
outcome). A change, its record and its notifications are written in one transaction
(:meth:`Outbox.apply_change`); notification ids are unique, so writing them again adds nothing.

A notification is marked ``sending`` before its channel is called (:meth:`Outbox.claim`) and
``delivered``/``failed`` after. A process killed in between leaves it ``sending``:
:meth:`Outbox.recover` (run at start) queues it again, and it is resent with the same id — the
receivers' idempotency key. One dispatcher per outbox file. Times are epoch milliseconds.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import orjson

from energy.alert import Alert
from energymon.sqlite import add_missing_columns, close_checkpointed, open_wal, transaction

from .lifecycle import AlertRecord
from .notification import Lang, Notification, NotificationKind

Status = Literal["queued", "sending", "delivered", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    key TEXT PRIMARY KEY,
    unit_id TEXT NOT NULL,
    open INTEGER NOT NULL,
    escalate_at_ms INTEGER,
    updated_at_ms INTEGER NOT NULL,
    record TEXT NOT NULL  -- JSON of the AlertRecord
);
CREATE INDEX IF NOT EXISTS alerts_escalation ON alerts (escalate_at_ms) WHERE escalate_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS changes (
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (key, state, severity, ts_ms)
);
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    alert_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT,
    lang TEXT NOT NULL,
    names TEXT NOT NULL,
    alert TEXT NOT NULL,
    unit_name TEXT,
    folded INTEGER NOT NULL DEFAULT 0,  -- repeats this message reports (see Outbox.apply_change)
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    done_at_ms INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (channel, status, next_at_ms);
CREATE INDEX IF NOT EXISTS notifications_alert ON notifications (alert_key);
CREATE TABLE IF NOT EXISTS attempts (
    notification_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,  -- delivered, retry, failed, interrupted
    detail TEXT
);
CREATE INDEX IF NOT EXISTS attempts_notification ON attempts (notification_id);
"""
#: Columns added after the first release: an older outbox file gets them when it is opened.
_ADDED_COLUMNS = {"unit_name": "TEXT", "folded": "INTEGER NOT NULL DEFAULT 0"}


def notification_id(alert: Alert, kind: NotificationKind, channel: str, recipient: str | None) -> str:
    """The delivery id: hex ``sha256(key|state|ts_ms|channel|recipient|kind)`` — the same for the same
    message on every try and after every restart."""
    text = f"{alert.key}|{alert.state}|{alert.ts_ms}|{channel}|{recipient or ''}|{kind}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Pending:
    """A notification to enqueue: its :class:`Notification` (attempt unused; ``folded``: the repeats
    since the previous notification of the alert, before :meth:`Outbox.apply_change` takes away those
    the recipient's previous message already reported), the named ``channel`` and the contacts'
    ``names``."""

    notification: Notification
    channel: str
    names: tuple[str, ...] = ()

    @classmethod
    def make(
        cls,
        alert: Alert,
        kind: NotificationKind,
        channel: str,
        recipient: str | None,
        lang: Lang,
        names: tuple[str, ...] = (),
        *,
        unit_name: str | None = None,
        folded: int = 0,
    ) -> Pending:
        """A pending notification with its delivery id."""
        nid = notification_id(alert, kind, channel, recipient)
        n = Notification(alert, kind, recipient, nid, lang, unit_name=unit_name, folded=folded)
        return cls(n, channel, names)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try: its number, when (epoch ms), ``delivered``/``retry``/``failed``/``interrupted``, detail."""

    attempt: int
    at_ms: int
    outcome: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class StoredNotification:
    """A notification row: the message, where it goes, and its delivery state."""

    notification: Notification
    channel: str
    names: tuple[str, ...]
    status: Status
    attempts: int
    next_at_ms: int
    created_at_ms: int
    done_at_ms: int | None
    last_error: str | None
    history: tuple[Attempt, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert for ``alerts list``: its record and its notifications (oldest first)."""

    record: AlertRecord
    updated_at_ms: int
    notifications: tuple[StoredNotification, ...]


#: What a lifecycle step hands the outbox: the new record, the outcome to record, the notifications.
Decision = tuple[AlertRecord, str, Sequence[Pending]]


class Outbox:
    """The outbox file at ``path`` (created with its folder); thread-safe (one connection, a lock)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._db = open_wal(self.path, "FULL", timeout_s=10)
        self._db.executescript(_SCHEMA)
        add_missing_columns(self._db, "notifications", _ADDED_COLUMNS)

    def now_ms(self) -> int:
        """The outbox clock in epoch ms."""
        return round(self._clock() * 1000)

    # -- alert records -------------------------------------------------------------------------

    def record(self, key: str) -> AlertRecord | None:
        """The record of alert ``key``, if it was ever seen."""
        with self._lock:
            row = self._db.execute("SELECT record FROM alerts WHERE key = ?", (key,)).fetchone()
        return _load_record(row[0]) if row else None

    def apply_change(self, alert: Alert, decide: Callable[[AlertRecord | None], Decision]) -> int | None:
        """Record one alert change in one transaction: ``decide(previous record)`` gives the new
        record, the outcome and the notifications. Returns how many notifications were added, or
        None when this change was already recorded (a replayed record: nothing is done).

        A ``folded`` change is counted into the last notification's messages still queued (they
        report it when they go); a new notification reports the repeats since the previous one less
        those the same recipient's previous message reported."""
        now = self.now_ms()
        with self._transaction():
            seen = self._db.execute(
                "SELECT 1 FROM changes WHERE key = ? AND state = ? AND severity = ? AND ts_ms = ?",
                (alert.key, alert.state, alert.severity, alert.ts_ms),
            ).fetchone()
            if seen:
                return None
            record, outcome, pending = decide(self.record(alert.key))
            self._db.execute(
                "INSERT INTO changes (key, state, severity, ts_ms, outcome, received_at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (alert.key, alert.state, alert.severity, alert.ts_ms, outcome, now),
            )
            self._save(record, now)
            if outcome == "folded":
                self._db.execute(
                    f"UPDATE notifications SET folded = folded + 1 WHERE {_OF_CHANGE} AND status = 'queued'",
                    (record.key, record.notified_state, record.notified_ts_ms),
                )
            return self._enqueue([self._less_reported(p) for p in pending], now)

    def update(
        self, key: str, decide: Callable[[AlertRecord], tuple[AlertRecord, Sequence[Pending]]]
    ) -> bool:
        """Change the record of ``key`` in one transaction (``decide`` gives the new record and any
        notifications); False when there is no such alert."""
        now = self.now_ms()
        with self._transaction():
            record = self.record(key)
            if record is None:
                return False
            new, pending = decide(record)
            self._save(new, now)
            self._enqueue(pending, now)
        return True

    def escalations_due(self, now_ms: int) -> list[str]:
        """Keys whose escalation time has come."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM alerts WHERE escalate_at_ms IS NOT NULL AND escalate_at_ms <= ? "
                "ORDER BY escalate_at_ms",
                (now_ms,),
            ).fetchall()
        return [r[0] for r in rows]

    # -- delivery ------------------------------------------------------------------------------

    def recover(self) -> int:
        """Queue again every notification left ``sending`` by a killed process; returns how many."""
        now = self.now_ms()
        with self._transaction():
            rows = self._db.execute(
                "SELECT id, attempts FROM notifications WHERE status = 'sending'"
            ).fetchall()
            for nid, attempt in rows:
                self._log_attempt(nid, attempt, now, "interrupted", "the dispatcher stopped during the send")
            self._db.execute("UPDATE notifications SET status = 'queued' WHERE status = 'sending'")
        return len(rows)

    def claim(self, channel: str, now_ms: int, limit: int = 10) -> list[Notification]:
        """Mark up to ``limit`` due notifications of ``channel`` as ``sending`` (oldest due first) and
        return them with their ``attempt`` number."""
        with self._transaction():
            rows = self._db.execute(
                f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications "
                "WHERE channel = ? AND status = 'queued' AND next_at_ms <= ? "
                "ORDER BY next_at_ms, seq LIMIT ?",
                (channel, now_ms, limit),
            ).fetchall()
            self._db.executemany(
                "UPDATE notifications SET status = 'sending', attempts = attempts + 1 WHERE id = ?",
                [(r[0],) for r in rows],
            )
        return [_notification(row, attempt=row[5] + 1) for row in rows]

    def next_due_ms(self, channel: str) -> int | None:
        """When the next queued notification of ``channel`` is due (None: nothing queued)."""
        with self._lock:
            row = self._db.execute(
                "SELECT min(next_at_ms) FROM notifications WHERE channel = ? AND status = 'queued'",
                (channel,),
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def delivered(self, n: Notification) -> None:
        """Record that ``n`` was accepted."""
        self._finish(n, "delivered", "delivered", None, None)

    def retry(self, n: Notification, at_ms: int, detail: str) -> None:
        """Record a retryable failure of ``n``: queued again, due at ``at_ms``."""
        self._finish(n, "queued", "retry", detail, at_ms)

    def failed(self, n: Notification, detail: str) -> None:
        """Record that ``n`` failed for good."""
        self._finish(n, "failed", "failed", detail, None)

    def _finish(
        self, n: Notification, status: Status, outcome: str, detail: str | None, at: int | None
    ) -> None:
        now = self.now_ms()
        done = None if status == "queued" else now
        with self._transaction():
            self._db.execute(
                "UPDATE notifications SET status = ?, next_at_ms = coalesce(?, next_at_ms), "
                "done_at_ms = ?, last_error = coalesce(?, last_error) WHERE id = ?",
                (status, at, done, detail, n.delivery_id),
            )
            self._log_attempt(n.delivery_id, n.attempt, now, outcome, detail)

    # -- reading -------------------------------------------------------------------------------

    def alerts(self, *, open_only: bool = False, unit: str | None = None, limit: int = 50) -> list[AlertView]:
        """Alerts, most recently changed first, each with its notifications and their attempts."""
        where, args = ["1 = 1"], []
        if open_only:
            where.append("open = 1")
        if unit is not None:
            where.append("unit_id = ?")
            args.append(unit)
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, record, updated_at_ms FROM alerts WHERE {' AND '.join(where)} "
                "ORDER BY updated_at_ms DESC, key LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [AlertView(_load_record(rec), at, tuple(self.notifications(key))) for key, rec, at in rows]

    def notifications(self, alert_key: str | None = None) -> list[StoredNotification]:
        """Notifications (of one alert, or all) in the order they were queued, with their attempts."""
        query = (
            f"SELECT {_NOTIFICATION_COLUMNS}, channel, names, status, next_at_ms, "
            "created_at_ms, done_at_ms, last_error FROM notifications"
        )
        args: tuple[Any, ...] = ()
        if alert_key is not None:
            query += " WHERE alert_key = ?"
            args = (alert_key,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
            history: dict[str, list[Attempt]] = {}
            for nid, *attempt in self._db.execute(
                "SELECT notification_id, attempt, at_ms, outcome, detail FROM attempts ORDER BY rowid"
            ).fetchall():
                history.setdefault(nid, []).append(Attempt(*attempt))
        return [
            StoredNotification(
                _notification(row, attempt=row[5]),
                row[8],
                tuple(orjson.loads(row[9])),
                row[10],
                row[5],
                row[11],
                row[12],
                row[13],
                row[14],
                tuple(history.get(row[0], ())),
            )
            for row in rows
        ]

    def close(self) -> None:
        """Checkpoint the WAL and close (safe to call twice)."""
        with self._lock:
            close_checkpointed(self._db)

    # -- internals -----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One SQLite transaction under the lock."""
        with self._lock, transaction(self._db):
            yield

    def _save(self, record: AlertRecord, now: int) -> None:
        self._db.execute(
            "INSERT INTO alerts (key, unit_id, open, escalate_at_ms, updated_at_ms, record) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET open = excluded.open, "
            "escalate_at_ms = excluded.escalate_at_ms, updated_at_ms = excluded.updated_at_ms, "
            "record = excluded.record",
            (record.key, record.alert.unit_id, record.open, record.escalate_at_ms, now, _dump_record(record)),
        )

    def _less_reported(self, p: Pending) -> Pending:
        """``p`` without the repeats its recipient's message about the alert's last notified change
        already reported (folded into it while it was queued)."""
        n = p.notification
        if not n.folded or n.kind == "escalated":
            return p
        last = self._db.execute(
            "SELECT json_extract(alert, '$.state'), json_extract(alert, '$.ts_ms') FROM notifications "
            "WHERE alert_key = ? AND kind != 'escalated' ORDER BY seq DESC LIMIT 1",
            (n.alert.key,),
        ).fetchone()
        if last is None:
            return p
        row = self._db.execute(
            f"SELECT folded FROM notifications WHERE {_OF_CHANGE} AND channel = ? AND recipient IS ?",
            (n.alert.key, *last, p.channel, n.recipient),
        ).fetchone()
        reported = row[0] if row else 0
        return replace(p, notification=replace(n, folded=max(0, n.folded - reported)))

    def _enqueue(self, pending: Sequence[Pending], now: int) -> int:
        added = 0
        for p in pending:
            n = p.notification
            added += self._db.execute(
                "INSERT OR IGNORE INTO notifications (id, alert_key, kind, channel, recipient, lang, names, "
                "alert, unit_name, folded, status, next_at_ms, created_at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                (
                    n.delivery_id,
                    n.alert.key,
                    n.kind,
                    p.channel,
                    n.recipient,
                    n.lang,
                    orjson.dumps(list(p.names)).decode(),
                    n.alert.to_json().decode(),
                    n.unit_name,
                    n.folded,
                    now,
                    now,
                ),
            ).rowcount
        return added

    def _log_attempt(self, nid: str, attempt: int, at: int, outcome: str, detail: str | None) -> None:
        self._db.execute(
            "INSERT INTO attempts (notification_id, attempt, at_ms, outcome, detail) VALUES (?, ?, ?, ?, ?)",
            (nid, attempt, at, outcome, detail),
        )


#: The notifications of one alert change (key, state, ts_ms): parameters key, state, ts_ms.
_OF_CHANGE = (
    "alert_key = ? AND kind != 'escalated' AND json_extract(alert, '$.state') = ? "
    "AND json_extract(alert, '$.ts_ms') = ?"
)
#: The columns :func:`_notification` reads, in its order.
_NOTIFICATION_COLUMNS = "id, alert, kind, recipient, lang, attempts, unit_name, folded"


def _notification(row: Sequence[Any], attempt: int) -> Notification:
    nid, alert, kind, recipient, lang, _, unit_name, folded = row[:8]
    return Notification(
        Alert.from_json(alert), kind, recipient, nid, lang, attempt, unit_name=unit_name, folded=folded
    )


def _dump_record(record: AlertRecord) -> str:
    data = asdict(record)
    data["alert"] = record.alert.model_dump()
    return orjson.dumps(data).decode()


def _load_record(raw: str) -> AlertRecord:
    data = orjson.loads(raw)
    data["alert"] = Alert.model_validate(data["alert"])
    return AlertRecord(**data)
