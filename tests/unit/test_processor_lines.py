"""What the processor writes beyond the ledger's figures: each meter's role on ``energy``, region and
industry on ``alert``, and the ``late``/``rejected`` counts of ``data_quality`` per unit and China day
(``energy.rejections``), continued across a restart."""

from __future__ import annotations

import orjson
import pytest

from energy.registry import MeterInfo, UnitInfo
from energy.rejections import DailyRejections
from streams.processor import BatchOutput, BatchProcessor, Totals
from streams.state import UnitStateStore
from tests.unit.test_ledger import ACCOUNTANT, MIN, POLICY
from tests.unit.test_monitor import unit
from tests.unit.test_quota import t

T = t("2026-03-02T10:00")
DAY = t("2026-03-02T00:00")  # the China day of T
NEXT_DAY = t("2026-03-03T00:00")
INFO = unit(
    cap=1000.0,
    meters=[
        MeterInfo(meter_id="E1", energy="electricity", role="main"),
        MeterInfo(meter_id="S1", energy="electricity", role="sub"),
        MeterInfo(meter_id="M1", energy="electricity", role="monthly"),
    ],
)


def readings(unit_id: str, seq: int, ts: int, value: float, meter: str = "E1") -> bytes:
    """A readings message with one cumulative electricity register (kWh)."""
    reading = {"meter_id": meter, "energy": "electricity", "kind": "cumulative", "value": value, "uom": "kWh"}
    return orjson.dumps(
        {"v": 1, "unit_id": unit_id, "source": "c1", "seq": seq, "readings": [{**reading, "ts": ts}]}
    )


def process(
    raws: list[bytes], table: dict[bytes, bytes] | None = None, info: UnitInfo | None = INFO
) -> BatchOutput:
    """One batch over ``table`` (a fresh store each time: as a restarted worker sees it)."""
    store = UnitStateStore({} if table is None else table)
    out = BatchProcessor(ACCOUNTANT, POLICY).process(raws, store, lambda unit_id: info)
    for key, value in store.end_batch():
        if table is not None and value is not None:
            table[key] = value
    return out


def of(out: BatchOutput, measurement: str) -> list[str]:
    return [line for line in out.lines if line.startswith(measurement + ",")]


def rejection_counts(out: BatchOutput) -> list[tuple[int, float, float]]:
    """(day start, late, rejected) of the late/rejected ``data_quality`` lines."""
    found = []
    for line in of(out, "data_quality"):
        _series, fields, ts = line.split(" ")
        values = dict(f.split("=") for f in fields.split(","))
        if "late" in values:
            found.append((int(ts), float(values["late"]), float(values["rejected"])))
    return found


def test_energy_points_carry_the_meters_role_and_unlisted_meters_count_as_main() -> None:
    scans = [
        readings("U1", n, T + n * MIN, 1000.0 + n, meter)
        for meter in ("E1", "S1", "M1", "X9")
        for n in (1, 2)
    ]
    roles = {
        line.split("meter_id=")[1].split(",")[0]: line.split("role=")[1].split(",")[0]
        for line in of(process(scans), "energy")
    }
    assert roles == {"E1": "main", "S1": "sub", "M1": "monthly", "X9": "main"}
    unknown_unit = of(process(scans[:2], info=None), "energy")
    assert unknown_unit and all(",role=main," in line and "region=" not in line for line in unknown_unit)


def test_alert_lines_carry_the_units_region_and_industry() -> None:
    scans = [
        readings("U1", 1, T + 1 * MIN, 1000.0),
        readings("U1", 2, T + 20 * MIN, 1000.0 + 200_000 / 0.1229),
    ]
    [alert] = of(process(scans), "alert")
    assert alert.startswith("alert,industry=cement,region=江苏,rule=dual_control,severity=red,unit_id=U1 ")


def test_late_and_rejected_are_counted_per_unit_and_china_day() -> None:
    bad = orjson.loads(readings("U1", 4, T + 3 * 60 * MIN + 5 * MIN, 1005.0))
    bad["readings"][0]["uom"] = "furlong"
    scans = [
        readings("U1", 1, T + 3 * 60 * MIN, 1000.0),  # 13:00: the unit's data time
        readings("U1", 2, T, 990.0),  # 10:00, 3 h behind: too late
        orjson.dumps(bad),  # a reading refused for its unit
        orjson.dumps({"v": 1, "unit_id": "U1", "source": "c1", "seq": "x", "readings": []}),  # whole message
    ]
    out = process(scans)
    assert rejection_counts(out) == [(DAY, 1.0, 3.0)]  # one point per day, the day's counts
    assert [orjson.loads(p)["rule"] for _, p in out.rejected] == ["too_late", "unknown_uom", "bad_envelope"]
    assert out.rejected_without_unit == 0


def test_every_day_with_data_gets_its_counts_and_a_new_day_starts_at_zero() -> None:
    table: dict[bytes, bytes] = {}
    process([readings("U1", 1, T, 1000.0), readings("U1", 2, T - 3 * 60 * MIN, 990.0)], table)
    out = process([readings("U1", 3, NEXT_DAY + 60 * MIN, 1100.0)], table)
    assert rejection_counts(out) == [(NEXT_DAY, 0.0, 0.0)]


def test_a_restart_continues_the_days_counts_instead_of_starting_again() -> None:
    table: dict[bytes, bytes] = {}
    first = process([readings("U1", 1, T, 1000.0), readings("U1", 2, T - 3 * 60 * MIN, 990.0)], table)
    assert rejection_counts(first) == [(DAY, 1.0, 1.0)]
    # a fresh store over the stored table, as after a restart: the same day goes on from 1
    again = process(
        [readings("U1", 3, T + 5 * MIN, 1001.0), readings("U1", 4, T - 4 * 60 * MIN, 980.0)], table
    )
    assert rejection_counts(again) == [(DAY, 2.0, 2.0)]


@pytest.mark.parametrize(
    ("raw", "registered"),
    [
        (b"not json", True),  # no unit id at all
        (orjson.dumps({"v": 1, "unit_id": "U1", "source": "c1", "seq": "x", "readings": []}), False),
    ],
)
def test_a_message_without_a_known_unit_is_counted_only_in_the_worker_totals(
    raw: bytes, registered: bool
) -> None:
    out = process([raw], info=INFO if registered else None)
    assert len(out.rejected) == 1 and out.rejected_without_unit == 1 and rejection_counts(out) == []
    totals = Totals()
    totals.add(out)
    assert totals.rejected == 1 and totals.rejected_without_unit == 1


def test_counts_before_the_units_first_reading_time_go_to_that_day() -> None:
    counts = DailyRejections()
    counts.count("bad_reading")
    counts.advance(None)
    assert counts.take_changed() == []
    counts.advance(T)
    counts.count("too_late")
    assert [(d.day_start_ms, d.late, d.rejected) for d in counts.take_changed()] == [(DAY, 1, 2)]
    counts.advance(T - 60 * MIN)  # the unit's time never goes back; nothing changes
    assert counts.take_changed() == [] and DailyRejections.from_json(counts.to_json()).to_json() == [
        DAY,
        1,
        2,
    ]


def energy_points(out: BatchOutput) -> dict[tuple[str, int], float]:
    """(meter, interval start) → qty of the ``energy`` lines."""
    found = {}
    for line in of(out, "energy"):
        series, fields, ts = line.split(" ")
        meter = series.split("meter_id=")[1].split(",")[0]
        found[(meter, int(ts))] = float(dict(f.split("=") for f in fields.split(","))["qty"])
    return found


def test_an_open_interval_is_written_once_the_worker_has_caught_up() -> None:
    """Working off a backlog (batches that fill) a meter's interval point is written when the unit's
    data leaves the interval; a batch that did not fill writes the open intervals too, also of units
    it did not touch."""
    processor = BatchProcessor(ACCOUNTANT, POLICY)
    store = UnitStateStore({})
    info = {"U1": INFO, "U2": INFO}.get
    u1 = [readings("U1", n, T + n * MIN, 1000.0 + n) for n in range(0, 17)]  # 10:00 … 10:16
    u2 = [readings("U2", 0, T, 50.0), readings("U2", 1, T + 5 * MIN, 55.0)]
    backlog = processor.process(u1 + u2, store, info, caught_up=False)
    # minute 16 closed U1's 10:00–10:15 (minutes 1 … 15: 15 kWh); U2's 10:00 interval is open
    assert energy_points(backlog) == {("E1", T): pytest.approx(15.0)}
    assert list(processor.unwritten) == ["U1", "U2"]
    idle = processor.process([], store, info, caught_up=True)
    assert [(line.split("unit_id=")[1].split(" ")[0], ts) for line in of(idle, "energy") for ts in
            [int(line.rsplit(" ", 1)[1])]] == [("U1", T + 15 * MIN), ("U2", T)]  # fmt: skip
    assert sorted(energy_points(idle).values()) == pytest.approx([1.0, 5.0])
    assert not processor.unwritten
    assert not of(processor.process([], store, info, caught_up=True), "energy")  # nothing new: nothing
