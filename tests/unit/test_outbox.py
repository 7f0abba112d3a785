"""The outbox: idempotent writes, due order, backoff, and a crash between send and record."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alerts import outbox as outbox_module
from alerts.delivery import Backoff
from alerts.lifecycle import AlertRecord, Policy, on_change
from alerts.outbox import Outbox, Pending, notification_id
from energy.alert import Alert


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def alert(n: int = 1, state: str = "raised", severity: str = "red", at_min: int = 0) -> Alert:
    return Alert(
        key=f"U{n}|hourly_ceiling|total",
        unit_id=f"U{n}",
        rule="hourly_ceiling",
        severity=severity,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        value=30.0,
        threshold=25.0,
        uom="tce",
        message="over",
        ts_ms=1_767_225_600_000 + n + at_min * 60_000,
    )


def write(
    outbox: Outbox, a: Alert, channels: tuple[str, ...] = ("hook",), unit_name: str | None = None
) -> int | None:
    """Apply ``a`` as the dispatcher does: the lifecycle's step, one notification per channel."""

    def decide(previous: AlertRecord | None) -> tuple[AlertRecord, str, list[Pending]]:
        step = on_change(previous, a, outbox.now_ms(), Policy())
        if step.kind is None:
            return step.record, step.outcome, []
        pending = [
            Pending.make(a, step.kind, c, None, "zh", unit_name=unit_name, folded=step.folded)
            for c in channels
        ]
        return step.record, step.outcome, pending

    return outbox.apply_change(a, decide)


def test_writing_the_same_change_again_adds_nothing(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    assert write(outbox, alert(), ("hook", "mail")) == 2
    assert write(outbox, alert(), ("hook", "mail")) is None  # a replayed Kafka record
    [view] = outbox.alerts()
    assert len(view.notifications) == 2 and view.record.folded == 0
    assert {n.notification.delivery_id for n in view.notifications} == {
        notification_id(alert(), "raised", c, None) for c in ("hook", "mail")
    }


def test_claims_due_notifications_oldest_first_per_channel(tmp_path: Path) -> None:
    clock = Clock()
    outbox = Outbox(tmp_path / "o.db", clock)
    for n in (1, 2, 3):
        write(outbox, alert(n), ("hook", "mail"))
        clock.t += 1
    claimed = outbox.claim("hook", outbox.now_ms(), limit=2)
    assert [c.alert.unit_id for c in claimed] == ["U1", "U2"] and {c.attempt for c in claimed} == {1}
    assert [c.alert.unit_id for c in outbox.claim("hook", outbox.now_ms())] == ["U3"]
    assert outbox.claim("hook", outbox.now_ms()) == []  # all are being sent
    assert len(outbox.claim("mail", outbox.now_ms())) == 3


def test_a_retry_waits_until_its_time_and_counts_attempts(tmp_path: Path) -> None:
    clock = Clock()
    outbox = Outbox(tmp_path / "o.db", clock)
    write(outbox, alert())
    [first] = outbox.claim("hook", outbox.now_ms())
    outbox.retry(first, outbox.now_ms() + 2_000, "HTTP 503")
    assert outbox.claim("hook", outbox.now_ms() + 1_999) == []
    assert outbox.next_due_ms("hook") == outbox.now_ms() + 2_000
    [second] = outbox.claim("hook", outbox.now_ms() + 2_000)
    assert (second.delivery_id, second.attempt) == (first.delivery_id, 2)
    outbox.delivered(second)
    [n] = outbox.notifications()
    assert (n.status, n.attempts, n.last_error) == ("delivered", 2, "HTTP 503")
    assert [(a.attempt, a.outcome) for a in n.history] == [(1, "retry"), (2, "delivered")]


def test_a_permanent_failure_is_final(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    write(outbox, alert())
    [n] = outbox.claim("hook", outbox.now_ms())
    outbox.failed(n, "HTTP 410 gone")
    assert outbox.claim("hook", outbox.now_ms() + 10**9) == []
    assert (outbox.notifications()[0].status, outbox.notifications()[0].last_error) == (
        "failed",
        "HTTP 410 gone",
    )


def test_a_crash_between_sending_and_recording_resends_with_the_same_id(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    write(outbox, alert())
    [sent] = outbox.claim("hook", outbox.now_ms())
    del outbox  # killed: no delivered/failed recorded, nothing closed
    reopened = Outbox(tmp_path / "o.db")
    assert reopened.claim("hook", reopened.now_ms()) == []  # still marked as sending
    assert reopened.recover() == 1
    [again] = reopened.claim("hook", reopened.now_ms())
    assert (again.delivery_id, again.attempt) == (sent.delivery_id, 2)
    assert [a.outcome for a in reopened.notifications()[0].history] == ["interrupted"]


def test_escalation_timers_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    outbox = Outbox(tmp_path / "o.db", clock)
    write(outbox, alert())
    due = outbox.now_ms() + Policy().escalate_after_ms  # type: ignore[operator]
    outbox.close()
    reopened = Outbox(tmp_path / "o.db", clock)
    assert reopened.escalations_due(due - 1) == []
    assert reopened.escalations_due(due) == [alert().key]


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    b = Backoff(initial_s=0.5, max_s=30.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (60, 30.0)]:
        waits = [b.delay_s(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempt, min(waits), max(waits))
        assert len(set(waits)) > 1  # jittered
    assert b.delay_s(1, retry_after_s=3) >= 3  # the peer's Retry-After is honoured...
    assert b.delay_s(1, retry_after_s=3600) <= 30  # ...up to the cap


def test_repeats_are_reported_once_to_each_recipient(tmp_path: Path) -> None:
    """Repeats fold into a message still waiting (mail) and are reported by the next message to a
    recipient whose message had already gone (hook)."""
    outbox = Outbox(tmp_path / "o.db")
    write(outbox, alert(severity="yellow"), ("hook", "mail"), unit_name="某钢铁")
    [hook_raise] = outbox.claim("hook", outbox.now_ms())
    outbox.delivered(hook_raise)
    assert write(outbox, alert(severity="yellow", at_min=1), ("hook", "mail")) == 0  # folded
    assert write(outbox, alert(severity="yellow", at_min=2), ("hook", "mail")) == 0
    [mail_raise] = outbox.claim("mail", outbox.now_ms())
    assert (mail_raise.kind, mail_raise.folded, mail_raise.unit_name) == ("raised", 2, "某钢铁")
    assert write(outbox, alert(state="updated", at_min=3), ("hook", "mail")) == 2
    [hook_update] = outbox.claim("hook", outbox.now_ms())
    [mail_update] = outbox.claim("mail", outbox.now_ms())
    assert (hook_update.kind, hook_update.folded) == ("updated", 2)  # not told yet
    assert (mail_update.kind, mail_update.folded) == ("updated", 0)  # its raise said so
    [view] = outbox.alerts()
    assert view.record.folded == 2
    assert [(n.channel, n.notification.folded) for n in view.notifications] == [
        ("hook", 0),
        ("mail", 2),
        ("hook", 2),
        ("mail", 0),
    ]


def test_an_outbox_from_before_unit_names_gets_the_new_columns(tmp_path: Path) -> None:
    new_columns = tuple(outbox_module._ADDED_COLUMNS)
    old_schema = "\n".join(
        line for line in outbox_module._SCHEMA.splitlines() if not line.lstrip().startswith(new_columns)
    )
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(old_schema)
    a = alert()
    nid = notification_id(a, "raised", "hook", None)
    db.execute(
        "INSERT INTO notifications (id, alert_key, kind, channel, recipient, lang, names, alert, status, "
        "next_at_ms, created_at_ms) VALUES (?, ?, 'raised', 'hook', NULL, 'zh', '[]', ?, 'queued', 0, 0)",
        (nid, a.key, a.to_json().decode()),
    )
    db.commit()
    db.close()
    outbox = Outbox(path)
    [old] = outbox.claim("hook", outbox.now_ms())
    assert (old.delivery_id, old.unit_name, old.folded) == (nid, None, 0)
    write(outbox, alert(2), unit_name="某钢铁")
    [new] = outbox.claim("hook", outbox.now_ms())
    assert new.unit_name == "某钢铁"
    outbox.close()
    assert Outbox(path).notifications()[1].notification.unit_name == "某钢铁"  # opening again is fine
