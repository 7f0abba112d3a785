"""Unit state in the table (``streams.state``: cache, folds, record order, crash recovery) and the batch
processor that feeds it readings and output messages (``streams.processor``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest

from energy.output import output_message
from energy.periods import PERIODS
from energy.registry import UnitInfo
from streams.processor import BatchOutput, BatchProcessor
from streams.state import UnitState, UnitStateStore, decode_snapshot, write
from tests.unit.test_ledger import ACCOUNTANT, MIN, POLICY
from tests.unit.test_monitor import history, point, unit
from tests.unit.test_quota import t

Table = dict[bytes, bytes]
T = t("2026-03-02T10:00")  # an interval boundary


def readings(unit_id: str, seq: int, ts: int, value: float, meter: str = "E1") -> bytes:
    """A readings message with one cumulative electricity register (kWh)."""
    reading = {
        "meter_id": meter,
        "energy": "electricity",
        "kind": "cumulative",
        "value": value,
        "uom": "kWh",
        "ts": ts,
    }
    return orjson.dumps({"v": 1, "unit_id": unit_id, "source": "c1", "seq": seq, "readings": [reading]})


def book(state: UnitState, *minutes: int) -> None:
    """Book 1 tce pieces ending ``minutes`` after :data:`T` into the unit's monitor."""
    state.monitor.book([point(T + m * MIN, 1.0) for m in minutes], [], None)


# --- the store (without a replayer: a snapshot after every batch; the log: test_state_log.py) ------


def test_a_cached_state_is_used_again_without_parsing_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    table: Table = {}
    store = UnitStateStore(table)
    loads: list[str] = []
    load = store._load

    def counting_load(unit_id: str, raw: bytes | None) -> Any:
        loads.append(unit_id)
        return load(unit_id, raw)

    monkeypatch.setattr(store, "_load", counting_load)
    first = store.get("U1")
    assert store.get("U1") is first  # the same batch
    book(first, 15)
    write(table, store.end_batch())
    again = store.get("U1")
    assert again is first and loads == ["U1"]  # the record in the table is the one it wrote
    assert history(again.monitor).periods.totals("day", T).tce == 1.0
    write(table, store.end_batch())
    store.forget()  # a rebalance
    reloaded = store.get("U1")
    assert reloaded is not first and loads == ["U1", "U1"]
    assert history(reloaded.monitor).periods.totals("day", T).tce == 1.0


def test_a_record_written_by_another_worker_is_loaded_again() -> None:
    table: Table = {}
    mine = UnitStateStore(table)
    other = UnitStateStore(table)
    book(mine.get("U1"), 15)
    write(table, mine.end_batch())
    book(other.get("U1"), 30)  # the unit moved to another worker for a while
    write(table, other.end_batch())
    state = mine.get("U1")
    assert history(state.monitor).periods.totals("day", T).tce == 2.0  # both pieces: reloaded


def test_a_snapshot_carries_the_history_with_the_journal_folded_into_it() -> None:
    table: Table = {}
    store = UnitStateStore(table)
    book(store.get("U1"), 15)
    write(table, store.end_batch())
    book(store.get("U1"), 30)
    records = store.end_batch()
    assert [k for k, _ in records] == [b"U1"] and store.folds == 2
    _token, snapshot = decode_snapshot(records[0][1] or b"")
    assert snapshot["archive"]["seq"] == snapshot["monitor"]["seq"] == 2
    assert snapshot["monitor"]["journal"]["periods"]["d"] == {} and snapshot["archive"]["periods"]["d"] != {}
    assert history(UnitStateStore(dict(records)).get("U1").monitor).periods.totals("day", T).tce == 2.0


# --- crash between the records of a batch -----------------------------------------------------------

INFO = unit(cap=1000.0)
#: Ten batches of two scans 5 minutes apart; every 3rd batch also carries a late scan that splits
#: the segment before it, and batch 4 an output report.
BATCHES: list[list[bytes]] = []
for _k in range(10):
    _ts = T + _k * 10 * MIN
    _batch = [
        readings("U1", 2 * _k, _ts, 1000.0 + 70 * _k),
        readings("U1", 2 * _k + 1, _ts + 5 * MIN, 1040.0 + 70 * _k),
    ]
    if _k % 3 == 2:
        _batch.append(readings("U1", 100 + _k, _ts - 2 * MIN, 1000.0 + 70 * _k - 11.0))
    if _k == 4:
        _batch.append(output_message("U1", "erp", _k, [{"ts": _ts, "value_10k_yuan": 12.5}]))
    BATCHES.append(_batch)


def run(
    table: Table, batches: Sequence[Sequence[bytes]], lose: Callable[[bytes], bool] = lambda key: False
) -> list[BatchOutput]:
    """Process ``batches`` with a new store over ``table``; the records for which ``lose`` is true are
    not written (a crash before they reached the table)."""
    store = UnitStateStore(table)
    processor = BatchProcessor(ACCOUNTANT, POLICY)
    outs = []
    for raws in batches:
        outs.append(processor.process(raws, store, lambda unit_id: INFO))
        write(table, [(k, v) for k, v in store.end_batch() if not lose(k)])
    return outs


def totals(table: Table, at: int) -> dict[str, Any]:
    """The unit's totals per period, from a fresh load of the table."""
    periods = history(UnitStateStore(table).get("U1").monitor).periods
    return {p: periods.totals(p, at) for p in PERIODS}


def test_a_crash_before_the_record_of_a_batch_loses_and_doubles_nothing() -> None:
    at = T + 100 * MIN
    table: Table = {}
    outs = run(table, BATCHES)
    assert sum(o.accepted for o in outs) == 23 and [o.rejected for o in outs] == [[]] * 10  # 3 late scans
    expected = totals(table, at)
    assert expected["day"].tce == pytest.approx((1040 + 70 * 9 - 1000) * 0.1229 / 1000, rel=1e-9)
    assert expected["day"].output_value_10k_yuan == 12.5

    for k in (1, 4, 5):
        crashed: Table = {}
        run(crashed, BATCHES[:k])
        run(crashed, [BATCHES[k]], lambda key: key == b"U1")  # batch k: its record lost
        run(crashed, BATCHES[k:])  # restarted: batch k again (at least once), then the rest
        assert totals(crashed, at) == expected, k


# --- the processor ----------------------------------------------------------------------------------


def process(raws: Sequence[bytes], info: UnitInfo | None = INFO) -> tuple[BatchOutput, UnitStateStore]:
    store = UnitStateStore({})
    return BatchProcessor(ACCOUNTANT, POLICY).process(raws, store, lambda unit_id: info), store


def lines(out: BatchOutput, measurement: str, unit_id: str = "U1") -> list[str]:
    return [line for line in out.lines if line.startswith(f"{measurement},") and f"unit_id={unit_id}" in line]


def test_an_output_message_goes_to_the_monitor() -> None:
    item = {"ts": T, "product_id": "clinker", "quantity": 5200.0, "value_10k_yuan": 1480.5}
    out, store = process([output_message("U1", "erp", 1, [item]), readings("U1", 1, T + MIN, 1000.0)])
    assert out.rejected == [] and out.outputs == 1 and out.messages == 2
    day = history(store.get("U1").monitor).periods.totals("day", T)
    assert day.output == {"clinker": 5200.0} and day.output_value_10k_yuan == 1480.5


@pytest.mark.parametrize(
    "doc",
    [
        {"v": 1, "unit_id": "U1", "source": "erp", "seq": "x", "outputs": [{"ts": T, "value_10k_yuan": 1.0}]},
        {"v": 1, "unit_id": "U1", "source": "erp", "seq": 1, "outputs": []},
        {"v": 2, "unit_id": "U1", "source": "erp", "seq": 1, "outputs": [{"ts": T, "value_10k_yuan": 1.0}]},
    ],
)
def test_a_broken_output_message_is_a_dead_letter(doc: dict[str, Any]) -> None:
    out, store = process([orjson.dumps(doc)])
    assert out.outputs == 0 and len(out.rejected) == 1
    key, payload = out.rejected[0]
    rejection = orjson.loads(payload)
    assert key == "U1" and rejection["rule"] == "bad_envelope"
    assert rejection["payload"]["outputs"] == doc["outputs"]
    # its unit is in the registry: counted in the unit's data_quality (energy.rejections), nothing applied
    [state] = store.touched().values()
    assert state.monitor.rejections.rejected == 1 and history(state.monitor).outputs == {}


def test_a_bad_output_item_is_rejected_alone() -> None:
    good = {"ts": T, "value_10k_yuan": 3.0}
    out, store = process([output_message("U1", "erp", 1, [good, {"ts": T, "quantity": 5.0}])])  # no product
    assert out.outputs == 1 and [orjson.loads(p)["rule"] for _, p in out.rejected] == ["bad_output"]
    assert history(store.get("U1").monitor).periods.totals("day", T).output_value_10k_yuan == 3.0


def test_unit_status_once_per_interval_advance_per_unit() -> None:
    scans = [
        readings("U1", 1, T + 1 * MIN, 1000.0),
        readings("U2", 1, T + 3 * MIN, 500.0),
        readings("U1", 2, T + 5 * MIN, 1010.0),  # same interval as 10:01: no new status
        readings("U1", 3, T + 16 * MIN, 1020.0),  # 10:15 – 10:30
        readings("U2", 2, T + 14 * MIN, 510.0),  # U2 still in 10:00 – 10:15
        readings("U1", 4, T + 20 * MIN, 1030.0),
        readings("U1", 5, T + 10 * MIN, 1008.0),  # late: no new status either
    ]
    out, _ = process(scans)
    u1, u2 = lines(out, "unit_status"), lines(out, "unit_status", "U2")
    assert len(u1) == 2 and len(u2) == 1
    # each at the time of the data it grades: the first reading of the interval
    assert [line.rsplit(" ", 1)[1] for line in u1] == [str(T + 1 * MIN), str(T + 16 * MIN)]
    assert all('level="green"' in line and "quota_tce=1000.0" in line for line in u1 + u2)
    assert out.statuses["U1"].at_ts_ms == T + 16 * MIN and out.levels == {"U1": "green", "U2": "green"}


def test_a_level_change_comes_as_an_alert_line() -> None:
    # cap 1000 tce; at 10:20 on 2 March 60.43 days of 365 are gone (16.56 %): 200 tce projects to ~1,208
    scans = [
        readings("U1", 1, T + 1 * MIN, 1000.0),  # baseline: nothing counted, 0 % projected
        readings("U1", 2, T + 20 * MIN, 1000.0 + 200_000 / 0.1229),  # 200 tce
    ]
    out, _ = process(scans)
    statuses = lines(out, "unit_status")
    assert 'level="green"' in statuses[0] and 'level="red"' in statuses[1]
    [alert] = lines(out, "alert")
    assert alert.startswith("alert,industry=cement,region=江苏,rule=dual_control,severity=red,unit_id=U1 ")
    assert 'state="raised"' in alert and "一级预警" in alert and alert.endswith(f" {T + 20 * MIN}")
    assert [a.key for a in out.alerts] == ["U1|dual_control|energy_total"]
    assert out.statuses["U1"].fields["projected_pct"] == pytest.approx(  # 1,208 %
        200 / ((31 + 28 + 1 + (10 + 20 / 60) / 24) / 365) / 1000 * 100, rel=1e-9
    )
    assert out.levels == {"U1": "red"}
