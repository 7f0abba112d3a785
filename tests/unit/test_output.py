"""The output message: denominators of intensity, replaced (not added) when sent again."""

import orjson
import pytest

from energy.output import is_output_message, output_message, parse_output
from energy.schema import MessageRejected


def doc(items: list[dict[str, object]]) -> dict[str, object]:
    return orjson.loads(output_message("U1", "erp", 1, items))  # type: ignore[no-any-return]


def test_valid_items_and_their_keys() -> None:
    parsed = parse_output(doc([
        {"ts": "2026-11-24T00:00:00+08:00", "product_id": "clinker", "quantity": 5200.0},
        {"ts": "2026-11-24T00:00:00+08:00", "value_10k_yuan": 1480.5},
    ]))
    assert [i.key for i in parsed.items] == ["clinker|1795449600000", "|1795449600000"]
    assert not parsed.rejections


@pytest.mark.parametrize(
    "item",
    [
        {"ts": "2026-11-24T00:00:00+08:00"},  # neither quantity nor value
        {"ts": "2026-11-24T00:00:00+08:00", "quantity": 3.0},  # quantity of no product
        {"ts": "2026-11-24T00:00:00+08:00", "value_10k_yuan": -1.0},
        {"ts": "2026-11-24T00:00:00", "value_10k_yuan": 1.0},  # no offset
    ],
)
def test_bad_items_are_rejected_alone(item: dict[str, object]) -> None:
    parsed = parse_output(doc([item, {"ts": 1_795_449_600_000, "value_10k_yuan": 2.0}]))
    assert len(parsed.items) == 1
    assert [r.rule for r in parsed.rejections] == ["bad_output"]


def test_a_broken_envelope_is_rejected_whole() -> None:
    with pytest.raises(MessageRejected) as info:
        parse_output({"v": 1, "unit_id": "U1", "outputs": []})
    assert info.value.rejection.rule == "bad_envelope"


def test_output_and_readings_messages_are_told_apart() -> None:
    assert is_output_message({"outputs": []})
    assert not is_output_message({"readings": []})
    assert not is_output_message([1, 2])
