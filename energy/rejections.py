"""What a unit's data had refused, counted per China day: the ``late`` and ``rejected`` fields of the
``data_quality`` measurement (ARCHITECTURE.md; ``completeness_pct`` comes from ``energy.operational``).

``rejected`` counts every dead letter of the unit: a reading, an output item, or a whole message whose
unit is known; ``late`` those of them refused as too late (rule ``too_late``: a reading older than the
lateness window, an output item older than the monitor's memory), so ``late`` ≤ ``rejected``.

**The day** is the Asia/Shanghai day of the unit's newest reading time when the refusal happened:
event time, like completeness, never a wall clock. That time only moves forward, so a day's counts
are final once the unit's data has entered the next day, and one small record holds them. A refusal
before the unit has any reading time is counted in the day of its first one.

:class:`DailyRejections` is part of the unit's monitor state (``energy.monitor``), stored with the
ledger after every batch: a restarted worker continues the day's counts instead of starting again
from zero and overwriting the day's point with a partial count. (A batch processed again after a
crash, before its offsets were committed, counts its refusals again, as it sends its dead letters
again: at least once.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from energy.intervals import CST_OFFSET_MS
from energy.periods import DAY_MS, day_index

#: Rules of refusals that count as late.
LATE_RULES = frozenset({"too_late"})


@dataclass(frozen=True)
class DayRejections:
    """A unit's refusals on the local day starting at ``day_start_ms`` (epoch ms, 00:00 China time):
    ``late`` and ``rejected`` (counts, ``late`` included in ``rejected``)."""

    day_start_ms: int
    late: int
    rejected: int


@dataclass
class DailyRejections:
    """The counts of the unit's current day (see the module docstring). ``day_start_ms`` is None
    before the unit's first reading time; ``changed`` holds the days whose counts changed since
    :meth:`take_changed` (not stored: the worker writes them in the batch that changed them)."""

    day_start_ms: int | None = None
    late: int = 0
    rejected: int = 0
    changed: dict[int, DayRejections] = field(default_factory=dict)

    def _mark(self) -> None:
        if self.day_start_ms is not None:
            self.changed[self.day_start_ms] = DayRejections(self.day_start_ms, self.late, self.rejected)

    def advance(self, now_ts_ms: int | None) -> None:
        """Follow the unit's newest reading time ``now_ts_ms`` (epoch ms; None: none yet). A new day
        starts at zero and is reported as changed, so every day with data has its counts."""
        if now_ts_ms is None:
            return
        if self.day_start_ms is not None and now_ts_ms < self.day_start_ms + DAY_MS:
            return  # the usual case: still the same day
        start = day_index(now_ts_ms) * DAY_MS - CST_OFFSET_MS
        if self.day_start_ms is not None:
            if start <= self.day_start_ms:
                return
            self.late = self.rejected = 0
        self.day_start_ms = start
        self._mark()

    def count(self, rule: str) -> None:
        """Count one refusal by ``rule`` (a :class:`energy.schema.Rejection` rule) in the current day."""
        self.rejected += 1
        if rule in LATE_RULES:
            self.late += 1
        self._mark()

    def take_changed(self) -> list[DayRejections]:
        """The days whose counts changed since the last call, oldest first (and forget them)."""
        if not self.changed:
            return []
        days = [self.changed[d] for d in sorted(self.changed)]
        self.changed.clear()
        return days

    def to_json(self) -> list[int | None]:
        """``[day_start_ms, late, rejected]`` (what is stored; ``changed`` is not)."""
        return [self.day_start_ms, self.late, self.rejected]

    @classmethod
    def from_json(cls, doc: Any) -> DailyRejections:
        """Inverse of :meth:`to_json`; None (a record from before these counts) gives empty counts."""
        if doc is None:
            return cls()
        day, late, rejected = doc
        return cls(None if day is None else int(day), int(late), int(rejected))
