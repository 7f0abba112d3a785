"""The live view of `energymon up` shows the units by dual-control level and the units most at risk,
from the worker's status file (rendered to text; no broker needed: the alert tail is not started)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from energymon.live import AlertTail, LiveView
from energymon.settings import Settings
from streams.app import at_risk
from streams.status import STATUS_FILE, write_status


def status(**extra: object) -> dict[str, object]:
    counters = ("messages", "readings", "rejected", "influx_retries", "points_written")
    return {"ts": 1.0, **{k: 0 for k in counters}, **extra}


def render(tmp_path: Path, doc: dict[str, object] | None) -> str:
    settings = Settings(state_dir=tmp_path)
    if doc is not None:
        write_status(tmp_path / STATUS_FILE, doc)
    console = Console(record=True, width=140)
    console.print(LiveView(settings, [], console).render(AlertTail(settings)))
    return console.export_text()


def test_the_view_counts_units_by_level_and_lists_the_units_most_at_risk(tmp_path: Path) -> None:
    watch = {
        "U-green": {"level": "green", "used_pct": 40.0, "schedule_pct": 50.0, "projected_pct": 80.0},
        "U-red": {"level": "red", "used_pct": 60.2, "schedule_pct": 50.0, "projected_pct": 120.4},
        "U-yellow": {"level": "yellow", "used_pct": 47.5, "schedule_pct": 50.0, "projected_pct": 95.0},
        "U-nocap": {"level": "green"},
    }
    levels = {u: str(f["level"]) for u, f in watch.items()}
    text = render(tmp_path, status(levels=levels, at_risk=at_risk(watch, top=2)))
    assert "red 1" in text and "yellow 1" in text and "green 2" in text
    lines = [line for line in text.splitlines() if line.lstrip("│ ").startswith("U-")]
    assert [line.split()[1] for line in lines] == ["U-red", "U-yellow"], text
    assert "120.4" in lines[0] and "60.2" in lines[0]


def test_the_view_says_the_worker_is_starting_before_any_status(tmp_path: Path) -> None:
    assert "starting (no status yet)" in render(tmp_path, None)


def test_units_without_a_projection_are_not_ranked() -> None:
    watch = {"A": {"level": "green"}, "B": {"level": "yellow", "projected_pct": 91.0}}
    assert at_risk(watch) == [{"unit_id": "B", "level": "yellow", "projected_pct": 91.0}]
