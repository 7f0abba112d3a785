"""The output message on the `output` topic: what a unit produced, the denominators of intensity.

One message carries 1..N items; each is the output of the period ending at ``ts``: a product's
quantity (in the product's uom: t, m², 重量箱 …) and/or the output value in 万元 (10⁴ yuan) that
万元产值综合能耗 divides by. Sending the same item again (same product and ``ts``) replaces it,
so corrections and replays never add up twice.

    {"v": 1, "unit_id": "U1", "source": "erp", "seq": 3,
     "outputs": [{"ts": "2026-11-24T00:00:00+08:00", "product_id": "clinker", "quantity": 5200.0,
                  "value_10k_yuan": 1480.5}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from energy.schema import (
    MAX_VALUE,
    TEXT_PATTERN,
    EnvelopeHead,
    MessageRejected,
    Rejection,
    epoch_ms_field,
    unit_id_of,
    validation_rejection,
)


def _figure() -> Any:
    """An item's figure (quantity in the product's uom, or 万元): a JSON number, finite, 0..10¹⁵."""
    return Field(None, strict=True, allow_inf_nan=False, ge=0, le=MAX_VALUE)


class OutputItem(BaseModel):
    """Output of the period ending at ``ts_ms`` (epoch ms): ``quantity`` of ``product_id`` and/or
    ``value_10k_yuan`` (万元); ``product_id`` None means the unit as a whole (value only)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ts_ms: int = Field(alias="ts")
    product_id: str | None = Field(None, min_length=1, max_length=64, pattern=TEXT_PATTERN)
    quantity: float | None = _figure()
    value_10k_yuan: float | None = _figure()

    @field_validator("ts_ms", mode="before")
    @classmethod
    def _to_epoch_ms(cls, v: Any) -> int:
        return epoch_ms_field(v)

    @model_validator(mode="after")
    def _something(self) -> OutputItem:
        if self.quantity is None and self.value_10k_yuan is None:
            raise PydanticCustomError("missing", "an output item needs quantity or value_10k_yuan")
        if self.quantity is not None and self.product_id is None:
            raise PydanticCustomError("missing", "a quantity needs the product_id it is of")
        return self

    @property
    def key(self) -> str:
        """Identity of the item: a later item with the same key replaces it."""
        return f"{self.product_id or ''}|{self.ts_ms}"


class OutputEnvelope(EnvelopeHead):
    """The message around the items."""

    outputs: list[Any] = Field(min_length=1, max_length=10_000)


@dataclass
class ParsedOutput:
    """An output message whose envelope was valid: its good items and its rejected ones."""

    unit_id: str
    items: list[OutputItem] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def is_output_message(doc: Any) -> bool:
    """Whether a decoded message is an output message (it has ``outputs``, not ``readings``)."""
    return isinstance(doc, dict) and "outputs" in doc and "readings" not in doc


def parse_output(doc: dict[str, Any]) -> ParsedOutput:
    """Validate a decoded output message; raises :class:`MessageRejected` for a broken envelope."""
    try:
        env = OutputEnvelope.model_validate(doc)
    except ValidationError as exc:
        raise MessageRejected(validation_rejection("bad_envelope", exc, unit_id_of(doc), doc)) from exc
    parsed = ParsedOutput(unit_id=env.unit_id)
    for item in env.outputs:
        try:
            parsed.items.append(OutputItem.model_validate(item))
        except ValidationError as exc:
            parsed.rejections.append(validation_rejection("bad_output", exc, env.unit_id, item, "item"))
    return parsed


def output_message(unit_id: str, source: str, seq: int, items: list[dict[str, Any]]) -> bytes:
    """Encode an output message (items as dicts with ``ts`` and the figures)."""
    return orjson.dumps({"v": 1, "unit_id": unit_id, "source": source, "seq": seq, "outputs": items})
