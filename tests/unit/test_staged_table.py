"""The worker stores a batch's state records only once the batch's effects are carried out, while it
processes the next batch (``streams.app``): the next batch reads the table through a ``StagedTable``.
Processing that way must give the lines and the stored states that processing batch after batch
gives, and find every unit in its cache (no reload, no replay)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.processor import BatchProcessor
from streams.state import StagedTable, UnitStateStore
from tests.unit.test_ledger import ACCOUNTANT, POLICY
from tests.unit.test_state_log import INFOS, Table, Worker, essence, messages, step


def test_staged_records_read_as_written_until_stored() -> None:
    table: Table = {b"a": b"1", b"b": b"2"}
    staged = StagedTable(table)
    first = staged.stage([(b"a", b"10"), (b"b", None), (b"c", b"30")])
    assert (staged.get(b"a"), staged.get(b"b"), staged.get(b"c"), staged.get(b"d")) == (
        b"10",
        None,
        b"30",
        None,
    )
    assert dict(staged) == {b"a": b"10", b"c": b"30"} and len(staged) == 2
    assert table == {b"a": b"1", b"b": b"2"}  # nothing written yet
    second = staged.stage([(b"a", b"11")])
    staged.store(first, [(b"a", b"10"), (b"b", None), (b"c", b"30")])
    assert table == {b"a": b"10", b"c": b"30"}
    assert staged.get(b"a") == b"11" and staged.staged() == 1  # the later batch's record still staged
    staged.store(second, [(b"a", b"11")])
    assert table == {b"a": b"11", b"c": b"30"} and staged.staged() == 0
    staged.stage([(b"c", None)])
    staged.drop()
    assert staged.get(b"c") == b"30" and staged.staged() == 0


def pipelined(batches: Sequence[Sequence[bytes]], table: Table) -> tuple[list[list[str]], UnitStateStore]:
    """Process ``batches`` as the worker does: each batch's records staged, and stored only after the
    next batch was processed."""
    processor = BatchProcessor(ACCOUNTANT, POLICY)
    staged = StagedTable(table)
    store = UnitStateStore(staged, processor, snapshot_every=3)
    lines = []
    in_flight: tuple[int, list[tuple[bytes, bytes | None]]] | None = None
    for raws in batches:
        lines.append(processor.process(raws, store, INFOS.get).lines)
        records = store.end_batch()
        batch = staged.stage(records)
        if in_flight is not None:
            staged.store(*in_flight)
        in_flight = batch, records
    if in_flight is not None:
        staged.store(*in_flight)
    assert staged.staged() == 0
    return lines, store


@settings(max_examples=40, deadline=None)
@given(st.lists(step, min_size=1, max_size=30), st.integers(min_value=1, max_value=4))
def test_pipelined_batches_give_the_same_lines_and_states(
    steps: list[tuple[str, str, int, float, str]], size: int
) -> None:
    raws = messages(steps)
    batches = [raws[i : i + size] for i in range(0, len(raws), size)]
    sequential = Worker({}, snapshot_every=3)
    expected = [out.lines for out in sequential.run(batches)]
    table: Table = {}
    lines, store = pipelined(batches, table)
    assert lines == expected
    assert store.replayed == 0  # every unit stayed in the cache: none was read back from the table
    assert store.folds == sequential.store.folds
    for unit_id in INFOS:
        assert essence(Worker(table).unit(unit_id)) == essence(Worker(sequential.table).unit(unit_id))
