"""The benchmark's arithmetic and its report: percentiles, latencies matched to the messages that
caused them, the figures of one system's run, and the table of ours against the peers with ratios.
Pure: no clock, no I/O (the runner prints what :func:`render` returns)."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

#: The last line of the report, for scripts: ``energymon end-to-end: N readings/s``.
LAST_LINE = "energymon end-to-end: {:d} readings/s"
MB = 1024 * 1024
Event = TypeVar("Event", bound=Hashable)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, interpolated linearly between closest ranks
    (numpy's default); ValueError for no values or ``q`` outside 0..100."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is not within 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class Latency:
    """Latencies (s) of one kind of event: how many were expected, matched, missing, and p50/p99/max
    of the matched ones (None when none matched)."""

    expected: int
    matched: int
    p50: float | None
    p99: float | None
    max: float | None
    unexpected: int = 0

    @property
    def missing(self) -> int:
        return self.expected - self.matched

    def text(self) -> str:
        """``p50 / p99 s (n=…)`` for the table."""
        if self.p50 is None or self.p99 is None:
            return f"none seen (0 of {self.expected})"
        note = f"n={self.matched}"
        if self.missing:
            note += f", {self.missing} missing"
        if self.unexpected:
            note += f", {self.unexpected} unmatched"
        return f"{self.p50:.3f} / {self.p99:.3f} ({note})"


def match_latencies(
    produced_at: Mapping[int, float],
    expected: Mapping[Event, int],
    observed: Mapping[Event, float],
) -> Latency:
    """Latency of each observed event that was expected: observed time minus the production time of
    the message that causes it (``expected``: event → message index; ``produced_at``: message index
    → time, the same clock as ``observed``). Expected events whose message was not produced in this
    run do not count; observed events nobody expected are counted as ``unexpected``."""
    wanted = {event: index for event, index in expected.items() if index in produced_at}
    values = [observed[event] - produced_at[index] for event, index in wanted.items() if event in observed]
    unexpected = sum(1 for event in observed if event not in expected)
    if not values:
        return Latency(len(wanted), 0, None, None, None, unexpected)
    return Latency(
        len(wanted), len(values), percentile(values, 50), percentile(values, 99), max(values), unexpected
    )


@dataclass
class RunFigures:
    """What one system did with the backlog: ``readings`` and ``messages`` in ``window_s`` (first
    produce → the last closed interval's points visible), ``points`` written to InfluxDB, CPU
    seconds, peak RSS and the RSS its state took (bytes, RSS after the run minus RSS idle before it),
    ``energy_points`` (one per meter and 15-minute interval) up to that interval and the sum of their
    tce found in InfluxDB afterwards."""

    name: str
    readings: int
    messages: int
    window_s: float
    points: int | None
    cpu_s: float
    peak_rss: int
    state_rss: int
    meters: int
    energy_points: int
    energy_tce: float
    latency: dict[str, Latency] = field(default_factory=dict)
    #: paced run → CPU of the system meanwhile, as a share of one core
    cpu_share: dict[str, float] = field(default_factory=dict)
    complete: bool = True

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.window_s if self.window_s > 0 else 0.0

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.window_s if self.window_s > 0 else 0.0

    @property
    def points_per_s(self) -> float | None:
        return None if self.points is None or self.window_s <= 0 else self.points / self.window_s

    @property
    def cpu_s_per_million(self) -> float:
        return self.cpu_s / self.readings * 1e6 if self.readings else 0.0

    @property
    def state_rss_per_10k_meters(self) -> float:
        return self.state_rss * 10_000 / self.meters if self.meters else 0.0


@dataclass(frozen=True)
class Row:
    """A row of the table: its label, how to get the figure, its format, and whether more is better
    (the ratio is always ours ÷ theirs; the label says which way is good)."""

    label: str
    value: Callable[[RunFigures], float | None]
    fmt: str
    higher_is_better: bool


ROWS: tuple[Row, ...] = (
    Row("end-to-end readings/s (↑)", lambda f: f.readings_per_s, "{:,.0f}", True),
    Row("messages/s (↑)", lambda f: f.messages_per_s, "{:,.0f}", True),
    Row("InfluxDB points/s written (↑)", lambda f: f.points_per_s, "{:,.0f}", True),
    Row("CPU s per million readings (↓)", lambda f: f.cpu_s_per_million, "{:,.1f}", False),
    Row("peak RSS MB (↓)", lambda f: f.peak_rss / MB, "{:,.0f}", False),
    Row("RSS per 10,000 meters MB (↓)", lambda f: f.state_rss_per_10k_meters / MB, "{:,.2f}", False),
    Row("energy points in InfluxDB", lambda f: float(f.energy_points), "{:,.0f}", True),
)


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours ÷ theirs, None when either is missing or theirs is 0."""
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def render_table(ours: RunFigures, peers: Sequence[RunFigures]) -> list[str]:
    """The figures table: one row per figure, our column, then each peer's figure and the ratio
    ours ÷ theirs."""
    header = [f"{'figure':<34}", f"{ours.name:>14}"]
    for p in peers:
        header += [f"{p.name:>14}", f"{'ratio':>7}"]
    lines = ["  ".join(header)]
    for row in ROWS:
        mine = row.value(ours)
        cells = [f"{row.label:<34}", f"{_cell(mine, row.fmt):>14}"]
        for p in peers:
            theirs = row.value(p)
            r = ratio(mine, theirs)
            cells += [f"{_cell(theirs, row.fmt):>14}", f"{_cell(r, '{:.2f}×'):>7}"]
        lines.append("  ".join(cells))
    return lines


def render_latency(ours: RunFigures) -> list[str]:
    """Our latency lines (p50 / p99 seconds from production to each kind of event, per load) and
    our CPU share during each paced run."""
    lines = [f"{label:<58} {lat.text()}" for label, lat in ours.latency.items()]
    lines += [
        f"{'CPU, ' + label:<58} {share * 100:.0f} % of one core" for label, share in ours.cpu_share.items()
    ]
    return lines


def point_check(ours: RunFigures, peers: Sequence[RunFigures], rel_tol: float = 1e-6) -> list[str]:
    """A line per peer saying whether it wrote the same `energy` points as ours (count, and the sum
    of their tce within ``rel_tol``); a mismatch is written loudly, in capitals."""
    lines = []
    for p in peers:
        same_count = p.energy_points == ours.energy_points
        same_tce = math.isclose(p.energy_tce, ours.energy_tce, rel_tol=rel_tol, abs_tol=1e-9)
        if same_count and same_tce:
            lines.append(
                f"points check {p.name}: same energy points as {ours.name} "
                f"({p.energy_points:,}, Σtce {p.energy_tce:,.3f})"
            )
        else:
            lines.append(
                f"!!! POINTS MISMATCH {p.name}: {p.energy_points:,} energy points (Σtce {p.energy_tce:,.6f}) "
                f"against {ours.name}'s {ours.energy_points:,} (Σtce {ours.energy_tce:,.6f}) !!!"
            )
    return lines


@dataclass(frozen=True)
class Target:
    """One target of issue 8: its text, and whether the figure meets it (None: not measured)."""

    text: str
    figure: str
    met: bool | None

    def line(self) -> str:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[self.met]
        return f"target {self.text:<46} {self.figure:<28} {verdict}"


def targets(ours: RunFigures, peers: Sequence[RunFigures]) -> list[Target]:
    """Issue 8's targets against this run's figures."""
    found: list[Target] = [
        Target(
            "≥ 150,000 readings/s end to end",
            f"{ours.readings_per_s:,.0f} readings/s",
            ours.readings_per_s >= 150_000,
        )
    ]
    for name, wanted in (("quix", 1.3), ("naive", 10.0)):
        peer = next((p for p in peers if p.name == name), None)
        r = ratio(ours.readings_per_s, peer.readings_per_s) if peer else None
        found.append(
            Target(
                f"≥ {wanted:g}× {name} end to end",
                "—" if r is None else f"{r:.2f}×",
                None if r is None else r >= wanted,
            )
        )
    alert = next(
        (lat for label, lat in ours.latency.items() if label.startswith("alert") and "fixed" in label), None
    )
    p99 = alert.p99 if alert else None
    found.append(
        Target(
            "p99 reading → alert ≤ 1 s at the fixed load",
            "—" if p99 is None else f"{p99:.3f} s",
            None if p99 is None else p99 <= 1.0,
        )
    )
    per_meter = ours.state_rss / ours.meters if ours.meters else None
    found.append(
        Target(
            "≤ 2 KB of worker memory per meter",
            "—" if per_meter is None else f"{per_meter / 1024:.2f} KB/meter",
            None if per_meter is None else per_meter <= 2048,
        )
    )
    return found


def last_line(ours: RunFigures) -> str:
    """``energymon end-to-end: N readings/s``."""
    return LAST_LINE.format(round(ours.readings_per_s))
