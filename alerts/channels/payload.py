"""The machine-readable form of a notification (webhook body, forwarded Kafka record)."""

from __future__ import annotations

import orjson

from ..notification import Notification


def notification_json(n: Notification) -> bytes:
    """The alert's JSON (``Alert.to_json`` fields, in order) followed by ``kind``, ``delivery_id``,
    ``unit_name`` (the registry's; null when unknown) and ``folded`` (repeats this message reports).

    ``Alert.from_json`` still parses it (unknown fields are ignored)."""
    extra = {"kind": n.kind, "delivery_id": n.delivery_id, "unit_name": n.unit_name, "folded": n.folded}
    return orjson.dumps({**n.alert.model_dump(), **extra})
