"""``UnitLedger._oldest_kept`` keeps a floor of the meters' newest reading times instead of passing
over every meter per message: whatever the readings (meters silent for hours, late and too late
readings, new meters with old readings), it must answer what the pass over every meter answers."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from energy.intervals import INTERVAL_MS, interval_start
from energy.ledger import FINE_SPAN_MS, LedgerPolicy, UnitLedger
from tests.unit.test_ledger import MIN, POLICY, T0, apply, reading


def scanned(ledger: UnitLedger, policy: LedgerPolicy) -> int:
    """The answer of the pass over every meter (the definition)."""
    newest = ledger.newest_ts_ms
    if newest is None:
        return 0
    oldest = newest - policy.lateness_ms
    for meter in ledger.meters.values():
        last = meter.last_ts_ms
        if last is not None and last < oldest:
            oldest = last
    return interval_start(max(oldest, newest - max(FINE_SPAN_MS, policy.lateness_ms))) - INTERVAL_MS


scan = st.lists(
    st.tuples(
        st.sampled_from(["E1", "E2", "E3", "E4"]),
        st.sampled_from([0, 1, 1, 1, 5, 30, 90, 180, 600, -3, -60, -100, -150]),  # minutes after the clock
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(scan, min_size=1, max_size=80))
# a new meter whose reading is older than every other meter's newest, then silent
@example([[("E1", 0)], [("E1", 180)], [("E2", -100)], [("E1", 30)]])
def test_the_floor_answers_as_the_pass_over_every_meter(scans: list[list[tuple[str, int]]]) -> None:
    ledger = UnitLedger("U1")
    clock = T0
    registers: dict[str, float] = {}
    for readings in scans:
        batch = []
        for meter, minutes in readings:
            ts = clock + minutes * MIN
            registers[meter] = registers.get(meter, 100.0) + 1.0
            batch.append(reading(ts, registers[meter], meter=meter))
            clock = max(clock, ts)
        apply(ledger, *batch)  # refused readings come back as rejections
        assert ledger._oldest_kept(POLICY) == scanned(ledger, POLICY)
        clock += MIN
