"""The benchmark's arithmetic and report: percentiles, latency matching, figures, ratios, the points
check, targets, the last line; and the pure parts of the run (options, paced minutes, the
producer's and the peers' configuration, the worker's command line)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from bench.figures import (
    Latency,
    RunFigures,
    last_line,
    match_latencies,
    percentile,
    point_check,
    ratio,
    render_latency,
    render_table,
    targets,
)
from bench.observe import confluent_options
from bench.peers import PeerConfig, PeerStatus
from bench.runner import BenchOptions, paced_minutes, resolve_options
from bench.stack import worker_argv

MB = 1024 * 1024


def run(name: str, readings: int = 1_000_000, window_s: float = 10.0, **extra: object) -> RunFigures:
    base: dict[str, object] = {
        "name": name,
        "readings": readings,
        "messages": readings // 50,
        "window_s": window_s,
        "points": readings,
        "cpu_s": 20.0,
        "peak_rss": 300 * MB,
        "state_rss": 100 * MB,
        "meters": 100_000,
        "energy_points": 990_000,
        "energy_tce": 1234.5,
    }
    base.update(extra)
    return RunFigures(**base)  # type: ignore[arg-type]


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1 … 100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # order does not matter
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_is_the_time_from_the_causing_message_to_the_event() -> None:
    produced = {0: 10.0, 1: 11.0, 2: 12.0}
    expected = {"a": 0, "b": 1, "c": 2, "d": 9}  # d's message was not produced in this run: not counted
    observed = {"a": 10.5, "b": 12.0, "x": 13.0}  # c never came; x was not expected
    lat = match_latencies(produced, expected, observed)
    assert (lat.expected, lat.matched, lat.missing, lat.unexpected) == (3, 2, 1, 1)
    assert lat.p50 == pytest.approx(0.75) and lat.max == pytest.approx(1.0)
    assert "n=2" in lat.text() and "1 missing" in lat.text() and "1 unmatched" in lat.text()


def test_latency_with_nothing_seen_says_so() -> None:
    lat = match_latencies({0: 1.0}, {"a": 0}, {})
    assert lat.p50 is None and lat.missing == 1
    assert lat.text() == "none seen (0 of 1)"


def test_a_runs_rates_and_costs() -> None:
    f = run("energymon", readings=2_000_000, window_s=20.0)
    assert f.readings_per_s == 100_000 and f.messages_per_s == 2_000 and f.points_per_s == 100_000
    assert f.cpu_s_per_million == pytest.approx(10.0)
    assert f.state_rss_per_10k_meters == pytest.approx(10 * MB)
    assert run("x", points=None).points_per_s is None


def test_the_table_has_every_figure_and_the_ratio_ours_over_theirs() -> None:
    ours = run("energymon", readings=1_500_000)
    quix = run("quix", readings=1_000_000, points=None)
    lines = render_table(ours, [quix])
    assert lines[0].split() == ["figure", "energymon", "quix", "ratio"]
    end_to_end = next(line for line in lines if line.startswith("end-to-end readings/s"))
    assert end_to_end.split()[-3:] == ["150,000", "100,000", "1.50×"]
    points = next(line for line in lines if line.startswith("InfluxDB points/s"))
    assert points.split()[-2:] == ["—", "—"]  # a figure the peer does not have: no ratio
    labels = ("messages/s", "CPU s per million", "peak RSS", "RSS per 10,000 meters", "energy points")
    for label in labels:
        assert any(line.startswith(label) for line in lines), label


def test_ratio_of_nothing_is_nothing() -> None:
    assert ratio(None, 1.0) is None and ratio(1.0, 0.0) is None and ratio(3.0, 2.0) == 1.5


def test_latency_lines_name_the_load_and_the_cpu_share() -> None:
    ours = run("energymon")
    ours.latency["alert p50 / p99 s, fixed 10,000 readings/s"] = Latency(5, 5, 0.2, 0.4, 0.5)
    ours.cpu_share["fixed 10,000 readings/s"] = 0.25
    lines = render_latency(ours)
    assert (
        lines[0].startswith("alert p50 / p99 s, fixed 10,000 readings/s")
        and "0.200 / 0.400 (n=5)" in lines[0]
    )
    assert lines[1].endswith("25 % of one core")


def test_a_peer_with_other_points_is_reported_loudly() -> None:
    ours = run("energymon")
    same = run("quix")
    fewer = run("naive", energy_points=989_999)
    other_tce = run("other", energy_tce=1234.6)
    lines = point_check(ours, [same, fewer, other_tce])
    assert lines[0].startswith("points check quix: same energy points")
    assert "POINTS MISMATCH naive" in lines[1] and "POINTS MISMATCH other" in lines[2]


def test_targets_of_the_issue() -> None:
    ours = run("energymon", readings=1_600_000, window_s=10.0, state_rss=150 * MB)  # 160k/s, 1.5 KB/meter
    ours.latency["alert p50 / p99 s, fixed 10,000 readings/s"] = Latency(3, 3, 0.5, 1.2, 1.3)
    quix = run("quix", readings=1_000_000)  # 100k/s: 1.6×
    naive = run("naive", readings=100_000)  # 10k/s: 16×
    verdicts = {t.text: t.met for t in targets(ours, [naive, quix])}
    assert verdicts == {
        "≥ 150,000 readings/s end to end": True,
        "≥ 1.3× quix end to end": True,
        "≥ 10× naive end to end": True,
        "p99 reading → alert ≤ 1 s at the fixed load": False,
        "≤ 2 KB of worker memory per meter": True,
    }
    alone = {t.text: t.met for t in targets(run("energymon"), [])}
    assert (
        alone["≥ 1.3× quix end to end"] is None
        and alone["p99 reading → alert ≤ 1 s at the fixed load"] is None
    )


def test_the_last_line_is_for_scripts() -> None:
    text = last_line(run("energymon", readings=1_234_567, window_s=10.0))
    assert text == "energymon end-to-end: 123457 readings/s"
    assert re.fullmatch(r"energymon end-to-end: \d+ readings/s", text)


def test_options_quick_and_full_defaults_and_overrides() -> None:
    full = resolve_options(False)
    assert full == BenchOptions()
    assert (full.units, full.meters, full.per_message, full.rate) == (2000, 50, 50, 10_000.0)
    quick = resolve_options(True, units=None, rate=5000.0)
    assert quick.quick and quick.units == 200 and quick.rate == 5000.0 and quick.duration_s < full.duration_s
    for bad in ({"units": 0}, {"per_message": 0}, {"rate": -1.0}, {"backlog_minutes": 0}):
        with pytest.raises(ValueError):
            resolve_options(False, **bad)


def test_a_paced_run_covers_its_duration_at_its_rate() -> None:
    assert paced_minutes(10_000, 30, 100_000) == 3
    assert paced_minutes(10_000, 31, 100_000) == 4  # rounded up
    assert paced_minutes(10, 1, 100_000) == 2  # at least two minutes


def test_librdkafka_options_from_kafka_python_ones() -> None:
    conf = confluent_options(
        {
            "bootstrap_servers": ["a:9092", "b:9092"],
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "u",
            "sasl_plain_password": "p",
            "ssl_cafile": "/ca.pem",
        }
    )
    assert conf == {
        "bootstrap.servers": "a:9092,b:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u",
        "sasl.password": "p",
        "ssl.ca.location": "/ca.pem",
    }
    assert confluent_options({"bootstrap_servers": "h:1"}) == {
        "bootstrap.servers": "h:1",
        "security.protocol": "PLAINTEXT",
    }


def test_a_peer_config_round_trips_and_is_private(tmp_path: Path) -> None:
    config = PeerConfig(
        peer="naive",
        topic="t",
        group="g",
        kafka={"bootstrap_servers": "h:1"},
        influx_url="http://i",
        database="d",
        influx_username="user",
        influx_password="secret",
        units={"u1": ("江苏", "华东", "steel")},
        accounting={"electricity_basis": "equivalent", "grid_series": "mee_grid_average", "region": None},
        status_path=str(tmp_path / "s.json"),
        state_dir=str(tmp_path),
    )
    path = tmp_path / "peer.json"
    config.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PeerConfig.load(path) == config
    status = PeerStatus(3, 150, 147)
    status.write(Path(config.status_path))
    assert PeerStatus.read(Path(config.status_path)) == status
    assert PeerStatus.read(tmp_path / "none.json") is None


def test_the_worker_runs_under_pyinstrument_when_profiled(tmp_path: Path) -> None:
    assert worker_argv(None)[-3:] == ["-m", "energymon", "worker"]
    argv = worker_argv(tmp_path / "worker.html")
    assert argv[1:6] == ["-m", "pyinstrument", "-r", "html", "-o"] and argv[-3:] == [
        "-m",
        "energymon",
        "worker",
    ]
    assert worker_argv(tmp_path / "worker.txt")[4] == "text"
