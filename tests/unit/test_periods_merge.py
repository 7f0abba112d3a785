"""Folding a journal of recent pieces into a unit's history: ``UnitPeriods.merge`` is exact (integers in
millionths) and gives what adding every piece to one object gives; ``bucket_count`` measures the size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energy.intervals import INTERVAL_MS
from energy.periods import PERIODS, UnitPeriods
from tests.unit.test_periods import t

#: A piece: (what, ts_ms, name, a, b) — what is "energy" (name = energy code, or "feedstock:<code>"
#: for an excluded one), "product" (name = product id) or "output" (name = product id, "" for value only).
Piece = tuple[str, int, str, float, float]

BASE = t("2025-06-01T00:00")


def add(p: UnitPeriods, piece: Piece) -> None:
    what, ts, name, a, b = piece
    if what == "energy":
        excluded, _, energy = name.rpartition(":")
        p.add(ts, energy, a, b, excluded or None)
    elif what == "product":
        p.add_product_energy(ts, name, a, b)
    else:
        p.add_output(ts, name or None, a, b)


def built(pieces: Sequence[Piece]) -> UnitPeriods:
    p = UnitPeriods()
    for piece in pieces:
        add(p, piece)
    return p


def merged(first: Sequence[Piece], second: Sequence[Piece]) -> UnitPeriods:
    """``first`` added to one object, ``second`` to another (the journal), then folded in."""
    history, journal = built(first), built(second)
    history.merge(journal)
    return history


def by_key(p: UnitPeriods) -> dict[str, Any]:
    """``to_json`` with each bucket as {key: (a, b)} without zeros: the same content whatever order
    the keys were first seen in."""
    doc = p.to_json()
    keys = doc["keys"]
    out: dict[str, Any] = {"first": doc["first"], "newest": doc["newest"]}
    for table in "ihdmy":
        out[table] = {}
        for k, bucket in doc[table].items():
            pairs = {
                keys[i]: (bucket[2 * i], bucket[2 * i + 1] if 2 * i + 1 < len(bucket) else 0)
                for i in range(len(keys))
                if 2 * i < len(bucket)
            }
            pairs = {key: ab for key, ab in pairs.items() if ab != (0, 0)}
            if pairs:
                out[table][k] = pairs
    return out


PIECES: list[Piece] = [
    ("energy", t("2026-03-01T08:15"), "electricity", 1.25, 0.75),
    ("energy", t("2026-03-01T08:30"), "raw_coal", 3.5, 9.1),
    ("output", t("2026-03-01T09:00"), "clinker", 120.0, 30.5),
    ("energy", t("2026-03-01T09:00"), "feedstock:natural_gas", 2.0, 4.0),
    ("product", t("2026-03-01T09:00"), "clinker", 1.0, 2.5),
    ("energy", t("2026-03-02T00:00"), "electricity", 0.5, 0.25),  # closes 1 March
    ("energy", t("2026-03-01T08:30"), "raw_coal", -3.5, -9.1),  # a withdrawal, late
    ("output", t("2026-03-02T00:15"), "", 0.0, 7.25),
    ("energy", t("2026-03-02T11:45"), "electricity", 4.0, 2.0),  # moves the interval horizon on
]


def test_pieces_split_between_history_and_journal_merge_to_the_single_object() -> None:
    whole = built(PIECES)
    for cut in range(len(PIECES) + 1):
        assert merged(PIECES[:cut], PIECES[cut:]).to_json() == whole.to_json(), cut
    # the figures, worked out: 1 March holds 1.25 + 0.5 electricity (the piece at 00:00 of the 2nd),
    # raw coal in and out again, 2.0 feedstock apart; 2 March the 4.0 of 11:45
    back = merged(PIECES[:4], PIECES[4:])
    day1 = back.totals("day", t("2026-03-01T12:00"))
    assert day1.tce == 1.75 and day1.by_energy == {"electricity": 1.75}
    assert day1.excluded_tce == 2.0 and day1.output == {"clinker": 120.0}
    assert day1.product_tce == {"clinker": 1.0} and day1.output_value_10k_yuan == 30.5
    month = back.totals("month", t("2026-03-02T11:45"))
    assert month.tce == 5.75 and month.co2_t == 3.0 and month.output_value_10k_yuan == 37.75
    # 08:15's interval is older than the 8 intervals kept back from 11:45: dropped in both forms
    assert back.totals("interval", t("2026-03-01T08:15")).tce == 0.0
    assert back.totals("interval", t("2026-03-02T11:45")).tce == 4.0


def test_pieces_dealt_to_either_side_in_any_order_give_the_same_totals() -> None:
    whole = built(PIECES)
    journal_side = [PIECES[k] for k in (0, 2, 5, 8)]  # the journal has the newest piece, and old ones
    history_side = [p for p in PIECES if p not in journal_side]
    back = merged(history_side, journal_side)
    assert by_key(back) == by_key(whole)
    for period in PERIODS:
        assert back.totals(period, t("2026-03-02T11:45")) == whole.totals(period, t("2026-03-02T11:45"))
    # a journal older than the history's horizons: its old intervals are dropped, as add() drops them
    late = merged(PIECES[8:], PIECES[:8])
    assert late.to_json() == built(PIECES[8:] + PIECES[:8]).to_json()
    assert list(late.to_json()["i"]) == [str(t("2026-03-02T11:30"))]


def test_merging_an_empty_journal_changes_nothing_and_into_an_empty_history_copies() -> None:
    history = built(PIECES)
    before = history.to_json()
    history.merge(UnitPeriods())
    assert history.to_json() == before
    empty = UnitPeriods()
    empty.merge(built(PIECES))
    assert empty.to_json() == before
    assert empty.first_ts_ms() == t("2026-03-01T08:00") and empty.newest_ts_ms() == t("2026-03-02T11:30")


def test_a_merge_is_exact_in_millionths() -> None:
    history, journal = UnitPeriods(), UnitPeriods()
    for _ in range(10):
        history.add(t("2026-03-01T08:15"), "electricity", 0.1, 0.2)
        journal.add(t("2026-03-01T08:15"), "electricity", -0.1, -0.2)
    history.merge(journal)
    # 0.1 ten times and back again: exactly nothing (floats would leave ~1e-16 behind)
    assert history.totals("year", t("2026-03-01T08:15")).tce == 0.0
    assert history.to_json()["y"] == {}


def test_bucket_count_counts_the_buckets_kept() -> None:
    p = UnitPeriods()
    assert p.bucket_count() == 0
    p.add(t("2026-03-02T10:15"), "electricity", 1.0, 1.0)
    assert p.bucket_count() == 5  # one interval, hour, day, month and year
    p.add(t("2026-03-02T10:30"), "raw_coal", 1.0, 1.0)
    assert p.bucket_count() == 6  # a new interval; the hour is 10:00–11:00 still
    p.add(t("2026-03-02T11:15"), "electricity", 1.0, 1.0)
    assert p.bucket_count() == 8  # a new interval and a new hour
    p.add(t("2026-03-03T10:15"), "electricity", 1.0, 1.0)
    # a day on: the three old intervals are past the 8 kept (dropped), the hours are inside 48
    assert p.bucket_count() == 1 + 3 + 2 + 1 + 1
    journal = UnitPeriods()
    journal.add(t("2026-03-03T10:15"), "electricity", 1.0, 1.0)  # buckets p has already
    p.merge(journal)
    assert p.bucket_count() == 8


_near = st.integers(0, 12 * 3)  # quarters of 5 minutes within 3 hours: interval and hour horizons
_far = st.integers(0, 600 * 24 * 12)  # within 600 days: day and month horizons
_ts = st.one_of(_near, _far).map(lambda k: BASE + k * INTERVAL_MS // 3)
_a = st.integers(-5_000_000, 5_000_000).map(lambda x: x / 1_000_000)
_b = st.integers(-5_000, 5_000).map(lambda x: x / 1_000)
_pieces = st.lists(
    st.one_of(
        st.tuples(
            st.just("energy"),
            _ts,
            st.sampled_from(["electricity", "raw_coal", "feedstock:natural_gas", "renewable:electricity"]),
            _a,
            _b,
        ),
        st.tuples(st.just("product"), _ts, st.sampled_from(["cement", "steel"]), _a, _b),
        st.tuples(st.just("output"), _ts, st.sampled_from(["cement", ""]), _a, _b),
    ),
    max_size=30,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=_pieces, cut=st.integers(0, 30), sides=st.lists(st.booleans(), min_size=30, max_size=30))
def test_merge_is_adding_the_same_pieces_to_one_object(
    pieces: list[Piece], cut: int, sides: list[bool]
) -> None:
    whole = built(pieces)
    # history then journal, as the monitor folds them: byte for byte the same record
    assert merged(pieces[:cut], pieces[cut:]).to_json() == whole.to_json()
    # any deal of the pieces: the same content, keys perhaps in another order
    dealt = merged(
        [p for p, s in zip(pieces, sides, strict=False) if s],
        [p for p, s in zip(pieces, sides, strict=False) if not s],
    )
    assert by_key(dealt) == by_key(whole)
    assert UnitPeriods.from_json(dealt.to_json()).to_json() == dealt.to_json()
