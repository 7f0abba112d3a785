"""The `ledgers` table as snapshots and logs (``streams.state``): a unit loaded from its snapshot and
the replay of its log is the unit the worker had, whatever the messages (late, repeated, rolled
over, refused, output reports) and wherever the batches and the generations fall; a crash anywhere
among a batch's records loses nothing and counts nothing twice."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energy.output import output_message
from energy.registry import UnitInfo
from streams.processor import BatchOutput, BatchProcessor
from streams.state import (
    UnitState,
    UnitStateStore,
    decode_log,
    decode_snapshot,
    encode_log,
    log_key,
    unit_of_key,
    write,
)
from tests.unit.test_ledger import ACCOUNTANT, MIN, POLICY
from tests.unit.test_monitor import unit
from tests.unit.test_quota import t

T = t("2026-03-02T10:00")
NOW = t("2026-03-05T00:00")  # the clock of the batches (readings more than an hour ahead are refused)
INFO = unit(cap=1000.0, meters=[{"meter_id": "E1", "register_max": 10_000.0}])
INFOS: dict[str, UnitInfo | None] = {"U1": INFO, "U2": None}

Table = dict[bytes, bytes]


def readings(unit_id: str, seq: int, ts: int, **meters: tuple[str, float]) -> bytes:
    """A readings message: ``meter=(kind, value)`` at ``ts`` (electricity, kWh / kW)."""
    docs = [
        {
            "meter_id": m,
            "energy": "electricity",
            "kind": kind,
            "value": value,
            "uom": "kW" if kind == "rate" else "kWh",
            "ts": ts,
        }
        for m, (kind, value) in meters.items()
    ]
    return orjson.dumps({"v": 1, "unit_id": unit_id, "source": "c1", "seq": seq, "readings": docs})


def state_doc(state: UnitState) -> dict[str, Any]:
    """Everything a unit's state holds, as plain data (the monitor's history included)."""
    return {**state.to_json(), "history": state.monitor.history.to_json()}


def essence(doc: dict[str, Any]) -> dict[str, Any]:
    """:func:`state_doc` without how the history was last split into archive and journal (the folds
    come with the snapshots, which come with the batches)."""
    monitor = {k: v for k, v in doc["monitor"].items() if k not in ("seq", "journal", "prev")}
    return {**doc, "monitor": monitor}


class Worker:
    """A processor and its store over ``table`` (a new one is a restarted worker: nothing cached)."""

    def __init__(
        self, table: Table, snapshot_every: int = 32, infos: dict[str, UnitInfo | None] = INFOS
    ) -> None:
        self.table = table
        self.infos = infos
        self.processor = BatchProcessor(ACCOUNTANT, POLICY)
        self.store = UnitStateStore(table, self.processor, snapshot_every=snapshot_every)

    def run(
        self, batches: Sequence[Sequence[bytes]], keep: Callable[[int, int], int] | None = None
    ) -> list[BatchOutput]:
        """Process ``batches``; ``keep(k, n)``: how many of batch k's n records reach the table."""
        outs = []
        for k, raws in enumerate(batches):
            outs.append(self.processor.process(raws, self.store, self.infos.get))
            records = self.store.end_batch()
            write(self.table, records[: keep(k, len(records)) if keep else len(records)])
        return outs

    def unit(self, unit_id: str) -> dict[str, Any]:
        state = self.store.get(unit_id, self.infos.get(unit_id))
        self.store.end_batch()
        return state_doc(state)


# --- messages --------------------------------------------------------------------------------------

step = st.tuples(
    st.sampled_from(["U1", "U1", "U1", "U2"]),
    st.sampled_from(["scan", "scan", "scan", "scan", "repeat", "repeat", "output", "broken"]),
    st.sampled_from([MIN, MIN, MIN, 5 * MIN, 15 * MIN, -3 * MIN, 0]),  # time step of a scan
    st.floats(min_value=0, max_value=400),  # register increase (kWh)
    st.sampled_from(["plain", "plain", "plain", "rollover", "jump", "too_late"]),
)


def messages(steps: list[tuple[str, str, int, float, str]]) -> list[bytes]:
    """Readings of a register (roll-over at 10 000 kWh in U1's registry), an interval and a rate
    meter; repeats of recent messages, late and too late scans, output reports and broken messages."""
    out: list[bytes] = []
    clock = {"U1": T, "U2": T}
    register = {"U1": 9_000.0, "U2": 100.0}

    def scan(unit_id: str, seq: int, ts: int, value: float, increase: float) -> None:
        meters = {"E1": ("cumulative", value), "G1": ("interval", increase), "P1": ("rate", increase)}
        out.append(readings(unit_id, seq, ts, **meters))

    for seq, (unit_id, what, dt, increase, how) in enumerate(steps):
        if what == "repeat" and out:
            out.append(out[-1 - seq % min(3, len(out))])
        elif what == "output":
            item = {"ts": clock[unit_id] - clock[unit_id] % (15 * MIN), "value_10k_yuan": increase}
            out.append(output_message(unit_id, "erp", seq, [item]))
        elif what == "broken":
            out.append(b'{"v": 1, "unit_id": "%s", "readings": "none"}' % unit_id.encode())
        elif how == "too_late":
            scan(unit_id, seq, clock[unit_id] - 150 * MIN, 1.0, increase)
        else:
            clock[unit_id] += dt
            value = register[unit_id] + increase
            if how == "rollover":  # up to just below the register's top, then past it
                scan(unit_id, seq, clock[unit_id], max(value, 9_990.0), increase)
                clock[unit_id] += MIN
                value = increase % 500.0
            elif how == "jump":
                value += 1e6
            if dt > 0:
                register[unit_id] = value
            scan(unit_id, seq, clock[unit_id], value, increase)
    return out


def split(raws: list[bytes], cuts: list[int]) -> list[list[bytes]]:
    bounds = sorted({c % (len(raws) + 1) for c in cuts} | {0, len(raws)})
    return [raws[a:b] for a, b in pairwise(bounds) if b > a]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.processor.time.time", lambda: NOW / 1000)


# --- replay equals direct application ------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(step, min_size=1, max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=12),
    snapshot_every=st.integers(min_value=1, max_value=4),
)
def test_a_unit_loaded_from_snapshot_and_log_is_the_unit_the_worker_had(
    steps: list[tuple[str, str, int, float, str]], cuts: list[int], snapshot_every: int
) -> None:
    batches = split(messages(steps), cuts)
    table: Table = {}
    worker = Worker(table, snapshot_every)
    worker.run(batches)
    direct: Table = {}
    Worker(direct, snapshot_every).run([[raw] for batch in batches for raw in batch])  # one a batch
    for unit_id in ("U1", "U2"):
        had = state_doc(worker.store.get(unit_id, INFOS[unit_id]))
        assert Worker(table, snapshot_every).unit(unit_id) == had  # restarted: snapshot + replayed log
        assert essence(Worker(direct, snapshot_every).unit(unit_id)) == essence(had)  # nor do the batches
    worker.store.end_batch()
    assert all(unit_of_key(key) in (b"U1", b"U2") for key in table)


def test_the_log_replays_with_the_registry_record_of_its_snapshot() -> None:
    table: Table = {}
    scans = [readings("U1", k, T + k * MIN, E1=("cumulative", 9_990.0 + 5 * k)) for k in range(3)]
    worker = Worker(table)
    worker.run([scans[:1], scans[1:2]])
    assert log_key("U1", 0) in table  # the second batch is a log record of snapshot 1
    wrapped = readings("U1", 9, T + 3 * MIN, E1=("cumulative", 3.0))  # a roll-over only with register_max
    worker.run([[wrapped]])
    had = state_doc(worker.store.get("U1", INFO))
    assert had["ledger"]["newest_ts_ms"] == T + 3 * MIN
    # the registry record loses the meter's register_max afterwards: the log still replays with it
    changed = INFO.model_copy(update={"meters": ()})
    restarted = Worker(table, infos={"U1": changed})
    assert restarted.unit("U1") == had
    restarted.run([[readings("U1", 10, T + 4 * MIN, E1=("cumulative", 4.0))]])
    token, snapshot = decode_snapshot(table[b"U1"])  # a new snapshot, with the new record
    assert token.startswith(b"2-") and snapshot["registry"]["meters"] == []


def test_a_batch_writes_one_record_a_unit_a_log_record_or_every_nth_a_snapshot() -> None:
    table: Table = {}
    worker = Worker(table, snapshot_every=3)
    scans = [readings("U1", k, T + k * MIN, E1=("cumulative", 1000.0 + k)) for k in range(5)]
    keys = []
    for scan in scans:
        worker.processor.process([scan], worker.store, INFOS.get)
        records = worker.store.end_batch()
        write(table, records)
        keys.append([key for key, _ in records])
    assert keys == [[b"U1"], [log_key("U1", 0)], [log_key("U1", 1)], [b"U1"], [log_key("U1", 0)]]
    token, logged = decode_log(table[log_key("U1", 0)])
    assert logged == [(NOW, scans[4])] and decode_snapshot(table[b"U1"])[0] == token
    assert decode_log(table[log_key("U1", 1)])[0] != token  # the log of the snapshot before: not replayed
    assert Worker(table).unit("U1") == state_doc(worker.store.get("U1", INFO))


def test_a_batch_with_more_than_max_log_bytes_of_messages_writes_a_snapshot() -> None:
    table: Table = {}
    worker = Worker(table)
    worker.store.max_log_bytes = 2_000
    scans = [readings("U1", k, T + k * MIN, E1=("cumulative", 1000.0 + k)) for k in range(20)]
    keys = []
    for batch in ([scans[0]], scans[1:3], scans[3:20]):  # ~200 bytes a message
        worker.processor.process(batch, worker.store, INFOS.get)
        records = worker.store.end_batch()
        write(table, records)
        keys.append([key for key, _ in records])
    assert keys == [[b"U1"], [log_key("U1", 0)], [b"U1"]]
    assert Worker(table).unit("U1") == state_doc(worker.store.get("U1", INFO))


def test_log_records_round_trip_and_refuse_what_they_are_not() -> None:
    messages_ = [(NOW, b'{"a": 1}'), (NOW + 1, b""), (-5, bytes(range(256)))]
    assert decode_log(encode_log(b"1-ab", messages_)) == (b"1-ab", messages_)
    record = encode_log(b"1-ab", messages_)
    for broken in (b'{"ledger": {}}', record[:-1], record[:12], encode_log(b"1-ab", [])[:-1]):
        with pytest.raises(ValueError):
            decode_log(broken)
    assert unit_of_key(log_key("U|periods", 3)) == b"U|periods" and unit_of_key(b"U1|periods") == b"U1"


# --- crashes ----------------------------------------------------------------------------------------

BATCHES = split(
    messages(
        [("U1", "scan", MIN, 50.0, "plain")] * 6
        + [
            ("U1", "scan", -2 * MIN, 0.0, "plain"),
            ("U1", "repeat", 0, 0.0, "plain"),
            ("U1", "output", 0, 12.5, ""),
        ]
        + [("U1", "scan", 5 * MIN, 30.0, "rollover"), ("U2", "scan", MIN, 3.0, "plain")] * 4
    ),
    [2, 3, 5, 8, 9, 11, 13, 16],
)


def totals(table: Table) -> tuple[dict[str, Any], dict[str, Any]]:
    """U1's ledger and totals per period, from a fresh load of the table."""
    state = Worker(table).unit("U1")
    ledger = state["ledger"]
    periods = state["history"]
    return ledger, periods


@pytest.mark.parametrize("snapshot_every", [1, 2, 32])
def test_a_crash_anywhere_among_a_batchs_records_loses_and_doubles_nothing(snapshot_every: int) -> None:
    table: Table = {}
    Worker(table, snapshot_every).run(BATCHES)
    expected = totals(table)
    assert expected[1]["periods"]["d"] and expected[0]["newest_ts_ms"] is not None
    cases = 0
    for k in range(len(BATCHES)):
        probe: Table = {}
        worker = Worker(probe, snapshot_every)
        worker.run(BATCHES[:k])
        worker.processor.process(BATCHES[k], worker.store, INFOS.get)
        records = worker.store.end_batch()
        for cut in range(len(records)):  # the crash: only the first `cut` records reached the table
            crashed = dict(probe)
            write(crashed, records[:cut])
            Worker(crashed, snapshot_every).run(BATCHES[k:])  # restarted: batch k again, then the rest
            assert totals(crashed) == expected, (k, cut)
            cases += 1
    assert cases > len(BATCHES)


def test_a_unit_of_the_earlier_layout_is_loaded_and_its_archive_deleted_after_its_snapshot() -> None:
    table: Table = {}
    worker = Worker(table)
    worker.run(BATCHES[:4])
    state = worker.store.get("U1", INFO)
    had = state_doc(state)
    worker.store.end_batch()
    # the earlier layout: the record without the monitor's history, the history in the archive
    table.clear()
    archive = state.monitor.fold()
    table[b"U1"] = orjson.dumps(state.to_json())
    table[b"U1|periods"] = orjson.dumps(archive)
    restarted = Worker(table)
    assert essence(restarted.unit("U1")) == essence(had)
    restarted.run(BATCHES[4:5])
    assert b"U1|periods" not in table and decode_snapshot(table[b"U1"])[0].startswith(b"1-")
    Worker(table).run(BATCHES[5:])
    fresh: Table = {}
    Worker(fresh).run(BATCHES)
    assert totals(table) == totals(fresh)
