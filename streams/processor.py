"""One batch of `readings` messages in, everything it causes out — without Faust or sockets.

The Faust agent (``streams.app``) hands raw message bytes to :meth:`BatchProcessor.process` and then
carries out the result: InfluxDB lines, dead letters, alerts, and the new ledgers to store.
Keeping this step free of the framework keeps it testable in microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from energy.accounting import Accountant
from energy.alert import Alert
from energy.ledger import LedgerPolicy
from energy.messages import Lang
from energy.monitor import UnitStatus
from energy.operational import OperationalRules
from energy.output import is_output_message, parse_output
from energy.registry import UnitInfo
from energy.schema import MessageRejected, Rejection, parse_message
from streams.sinks.line_protocol import encode_line
from streams.state import UnitState


class UnitStates(Protocol):
    """Where the processor gets a unit's state for the batch (``streams.state.UnitStateStore``)."""

    def get(self, unit_id: str) -> UnitState: ...


@dataclass
class BatchOutput:
    """What one batch produced. ``rejected`` and ``alerts`` are (key, value) records to publish."""

    lines: list[str] = field(default_factory=list)
    rejected: list[tuple[str | None, bytes]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    statuses: dict[str, UnitStatus] = field(default_factory=dict)  # the newest of each unit
    levels: dict[str, str] = field(default_factory=dict)  # each unit's dual-control level
    messages: int = 0
    outputs: int = 0
    readings: int = 0
    accepted: int = 0
    repeats: int = 0
    energy_points: int = 0
    events: int = 0


@dataclass
class Totals:
    """Running counters of a worker, for status views."""

    messages: int = 0
    readings: int = 0
    accepted: int = 0
    rejected: int = 0
    repeats: int = 0
    energy_points: int = 0
    meter_events: int = 0

    def add(self, out: BatchOutput) -> None:
        """Count one batch."""
        self.messages += out.messages
        self.readings += out.readings
        self.accepted += out.accepted
        self.rejected += len(out.rejected)
        self.repeats += out.repeats
        self.energy_points += out.energy_points
        self.meter_events += out.events


class BatchProcessor:
    """Applies batches of raw readings messages to unit ledgers."""

    def __init__(
        self,
        accountant: Accountant,
        policy: LedgerPolicy,
        lang: Lang = "zh",
        rules: OperationalRules | None = None,
    ) -> None:
        self.accountant = accountant
        self.policy = policy
        self.lang = lang
        self.rules = rules or OperationalRules(lateness_ms=policy.lateness_ms)

    def process(
        self,
        raws: Sequence[bytes],
        states: UnitStates,
        unit_info: Callable[[str], UnitInfo | None],
    ) -> BatchOutput:
        """Apply ``raws`` (readings and output messages, in order). ``states`` gives each unit's state
        for the batch; ``unit_info`` its registry record (None if unknown: points then carry no
        region/industry, and the unit has no targets to be graded against).
        """
        out = BatchOutput()
        for raw in raws:
            out.messages += 1
            if b'"outputs"' in raw and self._output(out, raw, states):
                continue
            try:
                msg = parse_message(raw)
            except MessageRejected as exc:
                self._reject(out, exc.rejection)
                continue
            out.readings += len(msg.readings) + len(msg.rejections)
            state = states.get(msg.unit_id)
            ledger = state.ledger
            info = unit_info(msg.unit_id)
            result = ledger.apply(msg, self.accountant, self.policy, info)
            state.monitor.book(result.counted, result.withdrawn, info)
            out.accepted += result.accepted
            out.repeats += result.repeats
            for rejection in result.rejections:
                self._reject(out, rejection)
            tags = {
                "unit_id": msg.unit_id,
                "region": info.region if info else None,
                "industry": info.industry if info else None,
            }
            for p in result.energy:
                line = encode_line(
                    "energy",
                    {**tags, "meter_id": p.meter_id, "energy": p.energy},
                    {"qty": p.qty, "tce": p.tce, "co2_t": p.co2_t, "estimated": p.estimated},
                    p.ts_ms,
                )
                if line:
                    out.lines.append(line)
                    out.energy_points += 1
            for iv in result.intervals:
                line = encode_line("unit_energy", tags, {"tce": iv.tce, "co2_t": iv.co2_t}, iv.start_ms)
                if line:
                    out.lines.append(line)
            for ev in result.events:
                out.events += 1
                line = encode_line(
                    "meter_event",
                    {**tags, "meter_id": ev.meter_id, "event": ev.event},
                    {"detail": ev.detail},
                    ev.ts_ms,
                )
                if line:
                    out.lines.append(line)
            for alert in result.alerts:
                self._alert(out, alert)
            if ledger.newest_ts_ms is not None:
                status = state.monitor.evaluate(ledger.newest_ts_ms, info, self.rules, lang=self.lang)
                if status is not None:
                    self._status(out, status, tags)
            out.levels[msg.unit_id] = state.monitor.level()
        return out

    def _output(self, out: BatchOutput, raw: bytes, states: UnitStates) -> bool:
        """Apply ``raw`` if it is an output message (True); False if it is not one."""
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return False
        if not is_output_message(doc):
            return False
        try:
            parsed = parse_output(doc)
        except MessageRejected as exc:
            self._reject(out, exc.rejection)
            return True
        for rejection in parsed.rejections:
            self._reject(out, rejection)
        for rejection in states.get(parsed.unit_id).monitor.apply_output(parsed.items):
            self._reject(out, rejection)
        out.outputs += len(parsed.items)
        return True

    def _status(self, out: BatchOutput, status: UnitStatus, tags: dict[str, str | None]) -> None:
        out.statuses[tags["unit_id"] or ""] = status
        line = encode_line("unit_status", tags, status.fields, status.at_ts_ms)
        if line:
            out.lines.append(line)
        for alert in status.alerts:
            self._alert(out, alert)
        for day in status.quality:
            counts = {
                "completeness_pct": day.completeness_pct,
                "expected": day.expected,
                "received": day.received,
            }
            line = encode_line("data_quality", tags, counts, day.day_start_ms)
            if line:
                out.lines.append(line)

    @staticmethod
    def _alert(out: BatchOutput, alert: Alert) -> None:
        out.alerts.append(alert)
        line = encode_line(
            "alert",
            {"unit_id": alert.unit_id, "rule": alert.rule, "severity": alert.severity},
            {
                "state": alert.state,
                "message": alert.message,
                "value": alert.value,
                "threshold": alert.threshold,
            },
            alert.ts_ms,
        )
        if line:
            out.lines.append(line)

    @staticmethod
    def _reject(out: BatchOutput, rejection: Rejection) -> None:
        out.rejected.append((rejection.unit_id, rejection.to_json()))
