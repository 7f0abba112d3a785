"""Build the dashboards and write them as ``grafana/dashboards/<uid>.json`` (sorted keys, stable uids),
the JSON committed and provisioned. ``python -m grafana.generate`` (or ``energymon grafana generate``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from grafana.boards import alerts, overview, unit

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"
BOARDS = (overview, unit, alerts)


def documents() -> dict[str, dict[str, Any]]:
    """Each dashboard as plain JSON data, by uid."""
    docs: dict[str, dict[str, Any]] = {}
    for board in BOARDS:
        doc = json.loads(json.dumps(board.build().build(), cls=JSONEncoder))
        docs[doc["uid"]] = doc
    return docs


def render(doc: dict[str, Any]) -> str:
    """The committed text of a dashboard: sorted keys, two-space indent, UTF-8, final newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate(out_dir: Path = DASHBOARDS) -> list[Path]:
    """Write every dashboard to ``out_dir/<uid>.json``; returns the files written (changed or not)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, doc in sorted(documents().items()):
        path = out_dir / f"{uid}.json"
        path.write_text(render(doc), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in generate():
        print(path)
