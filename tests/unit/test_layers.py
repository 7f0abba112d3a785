"""The layout's import rules (ARCHITECTURE.md, "Layout"), checked on the source.

- `energy/` imports nothing of ours but itself (the pure kernel).
- The adapters (`collectors/`, `streams/`, `alerts/`, `grafana/`) import `energy/` and never each
  other; of `energymon/` (the command line, "the one place that knows every part") only the leaf
  modules below, which import no adapter themselves: the settings types and small shared helpers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("energy", "collectors", "streams", "alerts", "grafana", "energymon", "bench")
ADAPTERS = ("collectors", "streams", "alerts", "grafana")
#: What an adapter may use of energymon/: settings, log redaction, registry files, SQLite, HTTP guard.
ENERGYMON_LEAVES = {
    "energymon.settings",
    "energymon.redact",
    "energymon.registry_files",
    "energymon.sqlite",
    "energymon.httpguard",
}


def imports_of(package: str) -> list[tuple[str, int, str]]:
    """(file, line, imported module) for every import of one of our packages under ``package``."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in OURS:
                    found.append((str(path.relative_to(ROOT)), node.lineno, name))
    return found


def test_the_kernel_imports_nothing_of_ours_but_itself() -> None:
    bad = [f"{f}:{line}: {m}" for f, line, m in imports_of("energy") if m.split(".")[0] != "energy"]
    assert bad == []


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_adapter_imports_the_kernel_and_energymons_leaf_modules_only(adapter: str) -> None:
    bad = [
        f"{f}:{line}: {m}"
        for f, line, m in imports_of(adapter)
        if m.split(".")[0] not in ("energy", adapter) and m not in ENERGYMON_LEAVES
    ]
    assert bad == []


def test_energymons_leaf_modules_import_no_adapter() -> None:
    bad = [
        f"{f}:{line}: {m}"
        for f, line, m in imports_of("energymon")
        if f.removesuffix(".py").replace("/", ".") in ENERGYMON_LEAVES and m.split(".")[0] in ADAPTERS
    ]
    assert bad == []
