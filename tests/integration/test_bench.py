"""`energymon bench` end to end on a tiny fleet: its own tansu and influxd (free ports), the real
worker and both peers. Figures are printed, not asserted (they are noise at this size); what is
asserted is that every figure is there, the last line is the one scripts read, and the peers wrote
the same `energy` points as the worker."""

from __future__ import annotations

import io
import re

import pytest

from bench.runner import Progress, resolve_options, run_bench
from energymon.settings import Settings

pytestmark = pytest.mark.integration


@pytest.mark.timeout(180)
def test_a_tiny_bench_prints_every_figure_and_the_peers_match_our_points() -> None:
    options = resolve_options(
        True, units=8, meters=5, per_message=5, backlog_minutes=15, duration_s=2.0, rate=400.0
    )
    out, progress = io.StringIO(), io.StringIO()
    code = run_bench(Settings(), options, out=out, progress=Progress(progress))
    text = out.getvalue()
    print(progress.getvalue(), text)
    assert code == 0, progress.getvalue()[-2000:]
    lines = text.rstrip("\n").splitlines()
    match = re.fullmatch(r"energymon end-to-end: (\d+) readings/s", lines[-1])
    assert match and int(match.group(1)) > 0
    header = next(line for line in lines if line.startswith("figure"))
    assert header.split() == ["figure", "energymon", "naive", "ratio", "quix", "ratio"]
    for label in (
        "end-to-end readings/s",
        "messages/s",
        "InfluxDB points/s written",
        "energy points in InfluxDB",
    ):
        row = next(line for line in lines if line.startswith(label))
        assert "—" not in row, row  # every system has the figure, every ratio is there
    for label in ("CPU s per million readings", "peak RSS MB", "RSS per 10,000 meters MB"):
        assert any(line.startswith(label) for line in lines), label  # tiny runs: near 0, maybe no ratio
    for kind in ("unit_status", "alert"):
        for load in ("fixed 400 readings/s", "saturation"):
            row = next(line for line in lines if line.startswith(f"{kind} p50 / p99 s, {load}"))
            assert "n=" in row, row
    checks = [line for line in lines if line.startswith("points check")]
    assert [c.split(":")[0] for c in checks] == ["points check naive", "points check quix"]
    assert all("same energy points as energymon" in c for c in checks), checks
    assert not any("MISMATCH" in line or "INCOMPLETE" in line for line in lines)
