"""Every InfluxQL query of a dashboard's JSON: panel targets, template variables and annotations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def queries(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, query)`` for each query of dashboard ``doc``; ``where`` names its panel or variable."""
    for variable in doc.get("templating", {}).get("list", []):
        yield f"variable {variable['name']}", variable["query"]
    for annotation in doc.get("annotations", {}).get("list", []):
        yield f"annotation {annotation['name']}", annotation["target"]["query"]
    for panel in doc.get("panels", []):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["query"]
