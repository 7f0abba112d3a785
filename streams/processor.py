"""One batch of `readings` messages in, everything it causes out — without Faust or sockets.

The Faust agent (``streams.app``) hands raw message bytes to :meth:`BatchProcessor.process` and then
carries out the result: InfluxDB lines, dead letters, alerts, and the new ledgers to store.
Keeping this step free of the framework keeps it testable in microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from energy.accounting import Accountant
from energy.alert import Alert
from energy.ledger import LedgerPolicy, UnitLedger
from energy.registry import UnitInfo
from energy.schema import MessageRejected, Rejection, parse_message
from streams.sinks.line_protocol import encode_line


@dataclass
class BatchOutput:
    """What one batch produced. ``rejected`` and ``alerts`` are (key, value) records to publish."""

    lines: list[str] = field(default_factory=list)
    rejected: list[tuple[str | None, bytes]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    ledgers: dict[str, UnitLedger] = field(default_factory=dict)
    messages: int = 0
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

    def __init__(self, accountant: Accountant, policy: LedgerPolicy) -> None:
        self.accountant = accountant
        self.policy = policy

    def process(
        self,
        raws: Sequence[bytes],
        load_ledger: Callable[[str], UnitLedger | None],
        unit_info: Callable[[str], UnitInfo | None],
    ) -> BatchOutput:
        """Apply ``raws`` in order. ``load_ledger`` gives a unit's stored ledger (None if new);
        ``unit_info`` its registry record (None if unknown: points then carry no region/industry).
        """
        out = BatchOutput()
        for raw in raws:
            out.messages += 1
            try:
                msg = parse_message(raw)
            except MessageRejected as exc:
                self._reject(out, exc.rejection)
                continue
            out.readings += len(msg.readings) + len(msg.rejections)
            ledger = out.ledgers.get(msg.unit_id) or load_ledger(msg.unit_id) or UnitLedger(msg.unit_id)
            out.ledgers[msg.unit_id] = ledger
            info = unit_info(msg.unit_id)
            result = ledger.apply(msg, self.accountant, self.policy, info)
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
        return out

    @staticmethod
    def _reject(out: BatchOutput, rejection: Rejection) -> None:
        out.rejected.append((rejection.unit_id, rejection.to_json()))
