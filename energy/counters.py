"""Turning what a meter reports into the quantity consumed since its previous report.

Three kinds of reading (ARCHITECTURE.md):

* ``cumulative``: a register; the quantity is the increase since the previous reading. The first
  reading only sets the baseline. A register that goes down is rejected (``counter_decrease``) and
  becomes the new baseline: roll-over and meter replacement are handled in a later issue.
* ``interval``: the quantity used in the period ending at ``ts``, taken as it is.
* ``rate``: an instantaneous rate per hour; the quantity is the trapezoid between this reading and
  the previous one.

Every result is kept for the last :data:`RECENT_READINGS` readings of the meter, so that a reading
processed again (a replay, or redelivery after a crash) gives back exactly the quantity it gave the
first time instead of being counted twice or lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from energy.intervals import HOUR_MS

#: How many recent readings per meter are remembered for idempotent re-processing.
RECENT_READINGS = 64


class CounterRejected(ValueError):
    """A reading the counter rules refuse; ``rule`` names the rule."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True)
class Delta:
    """The quantity (canonical uom of the energy) attributed to a reading at ``ts_ms``.

    ``baseline`` is true when the reading only started a counter and carries no quantity;
    ``repeat`` is true when the reading was seen before and this is the remembered result.
    """

    ts_ms: int
    qty: float
    baseline: bool = False
    repeat: bool = False


@dataclass
class MeterState:
    """What is remembered of one meter: its kind, its last reading and recent results.

    ``last_value`` is the canonical register value (cumulative) or rate per hour (rate);
    ``recent`` maps a reading's ts (epoch ms) to ``[value, qty, baseline]``.
    """

    kind: str
    energy: str
    last_ts_ms: int | None = None
    last_value: float | None = None
    recent: dict[int, list[Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the table store (JSON keys must be strings)."""
        return {
            "kind": self.kind,
            "energy": self.energy,
            "last_ts_ms": self.last_ts_ms,
            "last_value": self.last_value,
            "recent": {str(ts): v for ts, v in self.recent.items()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MeterState:
        """Inverse of :meth:`to_json`."""
        return cls(
            kind=doc["kind"],
            energy=doc["energy"],
            last_ts_ms=doc["last_ts_ms"],
            last_value=doc["last_value"],
            recent={int(ts): v for ts, v in doc["recent"].items()},
        )


def counter_delta(state: MeterState, kind: str, ts_ms: int, value: float) -> Delta:
    """Apply one reading (``value`` already in the energy's canonical uom, or per hour for rates)
    to ``state`` and return the quantity it contributes. Raises :class:`CounterRejected`.
    """
    if kind != state.kind:
        raise CounterRejected(
            "kind_changed", f"meter reported {kind!r} but was {state.kind!r}; a meter keeps its kind"
        )
    seen = state.recent.get(ts_ms)
    if seen is not None:
        if seen[0] != value:
            raise CounterRejected(
                "duplicate_conflict", f"a reading at the same time had value {seen[0]}, this one {value}"
            )
        return Delta(ts_ms, float(seen[1]), baseline=bool(seen[2]), repeat=True)

    if kind == "interval":
        if value < 0:
            raise CounterRejected("negative_quantity", f"interval quantity {value} is negative")
        delta = Delta(ts_ms, value)
    else:
        delta = _register_or_rate(state, kind, ts_ms, value)
        if state.last_ts_ms is None or ts_ms > state.last_ts_ms:
            state.last_ts_ms, state.last_value = ts_ms, value

    state.recent[ts_ms] = [value, delta.qty, delta.baseline]
    if len(state.recent) > RECENT_READINGS:
        for old in sorted(state.recent)[: len(state.recent) - RECENT_READINGS]:
            del state.recent[old]
    return delta


def _register_or_rate(state: MeterState, kind: str, ts_ms: int, value: float) -> Delta:
    if kind == "rate" and value < 0:
        raise CounterRejected("negative_quantity", f"rate {value} is negative")
    if state.last_ts_ms is None or state.last_value is None:
        return Delta(ts_ms, 0.0, baseline=True)
    if ts_ms < state.last_ts_ms:
        raise CounterRejected(
            "out_of_order",
            f"{kind} reading at {ts_ms} is older than the meter's last reading at {state.last_ts_ms}",
        )
    if kind == "cumulative":
        if value < state.last_value:
            previous = state.last_value
            # Re-baseline so the meter's following readings count again; remember the reading so
            # that processing it again is a no-op rather than a second rejection.
            state.last_ts_ms, state.last_value = ts_ms, value
            state.recent[ts_ms] = [value, 0.0, True]
            raise CounterRejected(
                "counter_decrease", f"register fell from {previous} to {value}; taken as the new baseline"
            )
        return Delta(ts_ms, value - state.last_value)
    hours = (ts_ms - state.last_ts_ms) / HOUR_MS
    return Delta(ts_ms, (state.last_value + value) / 2.0 * hours)
