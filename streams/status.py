"""The worker's status file: counters a local status view reads (written atomically)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

#: The worker's status file, in the state directory.
STATUS_FILE = "worker-status.json"


def write_status(path: Path, doc: dict[str, Any]) -> None:
    """Replace ``path`` with ``doc`` as JSON, atomically (write, then rename)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(doc))
    os.replace(tmp, path)


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status written to ``path``, or None if there is none (yet)."""
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None
