"""Replay a JSON-lines file of readings messages into Kafka, byte for byte.

Lines are sent verbatim (only the line ending is removed), valid or not: an invalid message must
reach the stream app and be rejected there, with its reason, on `readings.rejected` — never dropped
silently here. Blank lines are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from energy.topics import READINGS

#: ``progress`` is called after every this many messages (and once at the end).
PROGRESS_EVERY = 1000


class Sender(Protocol):
    """What replay needs from a publisher (:class:`collectors.publisher.Publisher` is one)."""

    def send(self, topic: str, key: str | None, value: bytes) -> None: ...

    def flush(self, timeout_s: float = 30.0) -> None: ...


@dataclass
class ReplayResult:
    """What was sent: ``messages`` records, ``bytes`` of record values, ``skipped_blank`` lines."""

    messages: int
    bytes: int
    skipped_blank: int


def line_key(line: bytes) -> str | None:
    """The record key of a line: its ``unit_id`` if it is a JSON object with a string unit_id."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict):
        unit_id = doc.get("unit_id")
        if isinstance(unit_id, str):
            return unit_id
    return None


def replay_file(
    path: Path,
    publisher: Sender,
    topic: str = READINGS,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Send each non-blank line of ``path`` to ``topic`` and wait for the broker's acknowledgements.

    Raises FileNotFoundError naming the path when there is no such file, and whatever the publisher's
    ``flush`` raises when a record was not delivered. ``progress(messages_sent_so_far)`` is called
    every :data:`PROGRESS_EVERY` messages and at the end.
    """
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise FileNotFoundError(f"replay file {path} {what}")
    result = ReplayResult(messages=0, bytes=0, skipped_blank=0)
    with path.open("rb") as fh:
        for raw in fh:
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                result.skipped_blank += 1
                continue
            publisher.send(topic, line_key(line), line)
            result.messages += 1
            result.bytes += len(line)
            if progress is not None and result.messages % PROGRESS_EVERY == 0:
                progress(result.messages)
    publisher.flush()
    if progress is not None and (result.messages == 0 or result.messages % PROGRESS_EVERY):
        progress(result.messages)
    return result
