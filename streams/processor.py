"""One batch of `readings` messages in, everything it causes out — without Faust or sockets.

The Faust agent (``streams.app``) hands raw message bytes to :meth:`BatchProcessor.process` and then
carries out the result: InfluxDB lines, dead letters, alerts, and the new ledgers to store.
Keeping this step free of the framework keeps it testable in microseconds.

Points are encoded by the precompiled encoders of ``streams.sinks.measurements``. A meter's `energy`
point covers a 15-minute interval (``energy.meter_intervals``): a batch writes those of the intervals
its messages closed, and, when the worker has caught up with its input (``caught_up``: the batch did
not fill), those of every open interval not yet written, so that a live dashboard sees the running
interval within a batch and a worker working off a backlog writes each point about once (the worker
also writes them when its input pauses after a full batch: ``streams.app``).

Each refusal is a dead letter; it is also counted in its unit's ``data_quality`` (``late``, ``rejected``:
``energy.rejections``) when it has a unit: a reading or output item always, a whole message when its
``unit_id`` is in the registry. The others (no unit id, an unparseable one, or one the registry does
not know) are counted only in the worker's ``Totals.rejected_without_unit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from energy.accounting import Accountant
from energy.alert import Alert
from energy.ledger import LedgerPolicy, LedgerResult, MeterInterval
from energy.messages import Lang
from energy.monitor import UnitStatus
from energy.operational import OperationalRules
from energy.output import is_output_message, parse_output
from energy.registry import UnitInfo
from energy.schema import MessageRejected, Rejection, parse_message
from streams.sinks.measurements import (
    encode_alert,
    encode_data_quality,
    encode_energy,
    encode_meter_event,
    encode_unit_energy,
    encode_unit_status,
)
from streams.state import UnitState

#: Units not in a batch whose open intervals a batch writes at most (the rest: the next batches).
OPEN_UNITS_PER_BATCH = 2000


class UnitStates(Protocol):
    """Where the processor gets a unit's state for the batch, and notes the messages applied to it
    (``streams.state.UnitStateStore``)."""

    def get(self, unit_id: str, info: UnitInfo | None) -> UnitState: ...

    def log(self, unit_id: str, now_ms: int, raw: bytes) -> None: ...


@dataclass
class BatchOutput:
    """What one batch produced. ``rejected`` and ``alerts`` are (key, value) records to publish;
    ``rejected_without_unit`` counts the dead letters not counted in any unit's ``data_quality``."""

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
    rejected_without_unit: int = 0
    caught_up: bool = False  # processed as a batch that found no more input waiting


@dataclass
class Totals:
    """Running counters of a worker, for status views. ``rejected`` counts every dead letter,
    ``rejected_without_unit`` those that no unit's ``data_quality`` counts (see the module docstring)."""

    messages: int = 0
    readings: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_without_unit: int = 0
    repeats: int = 0
    energy_points: int = 0
    meter_events: int = 0
    batches: int = 0
    batches_caught_up: int = 0  # batches that did not fill: they write the open intervals too

    def add(self, out: BatchOutput) -> None:
        """Count one batch."""
        self.batches += 1
        self.batches_caught_up += out.caught_up
        self.messages += out.messages
        self.readings += out.readings
        self.accepted += out.accepted
        self.rejected += len(out.rejected)
        self.rejected_without_unit += out.rejected_without_unit
        self.repeats += out.repeats
        self.energy_points += out.energy_points
        self.meter_events += out.events


@dataclass
class _Unit:
    """A unit as one batch writes it: its tags and its state."""

    unit_id: str
    region: str | None
    industry: str | None
    state: UnitState


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
        self._roles: dict[str, tuple[UnitInfo, dict[str, str]]] = {}
        #: the units whose open interval has consumption not yet written (an ordered set)
        self.unwritten: dict[str, None] = {}

    def meter_roles(self, info: UnitInfo | None) -> dict[str, str]:
        """Each registered meter's role (``main``, ``sub``, ``monthly``), the first entry of a meter
        listed twice, as the ledger takes it. A meter not listed, or any meter of a unit not in the
        registry (None), is not in this map: the ledger counts it in the unit's totals, so it is
        written as ``main``. Made once per registry version of the unit."""
        if info is None:
            return {}
        cached = self._roles.get(info.unit_id)
        if cached is None or cached[0] is not info:
            roles: dict[str, str] = {m.meter_id: m.role for m in reversed(info.meters)}
            cached = self._roles[info.unit_id] = (info, roles)
        return cached[1]

    def process(
        self,
        raws: Sequence[bytes],
        states: UnitStates,
        unit_info: Callable[[str], UnitInfo | None],
        *,
        caught_up: bool = True,
    ) -> BatchOutput:
        """Apply ``raws`` (readings and output messages, in order). ``states`` gives each unit's state
        for the batch; ``unit_info`` its registry record (None if unknown: points then carry no
        region/industry, every meter is written as ``main``, and the unit has no targets to be graded
        against). A reading stamped more than an hour ahead of this machine's clock is refused
        (``energy.schema.MAX_AHEAD_MS``). When ``caught_up`` (no more input waiting), the points of
        the open intervals not yet written are written too (:attr:`unwritten`).
        """
        out = BatchOutput(caught_up=caught_up)
        now_ms = round(time.time() * 1000)
        touched: dict[str, _Unit] = {}
        changed: list[str] = []  # the unit the message in hand changed

        def unit_of(unit_id: str, info: UnitInfo | None) -> _Unit:
            unit = touched.get(unit_id)
            if unit is None:
                region, industry = (info.region, info.industry) if info is not None else (None, None)
                unit = touched[unit_id] = _Unit(unit_id, region, industry, states.get(unit_id, info))
            changed.append(unit_id)
            return unit

        for raw in raws:
            out.messages += 1
            self._apply(raw, now_ms, unit_of, unit_info, out, write=True)
            if changed:
                states.log(changed[0], now_ms, raw)  # the unit's log replays it (streams.state)
                changed.clear()
        for unit in touched.values():
            self._rejection_counts(out, unit)
        if caught_up and self.unwritten:
            self._open_points(out, states, unit_info, touched)
        return out

    def _open_points(
        self,
        out: BatchOutput,
        states: UnitStates,
        unit_info: Callable[[str], UnitInfo | None],
        touched: dict[str, _Unit],
    ) -> None:
        """The `energy` lines of the open intervals of the :attr:`unwritten` units (``touched``: the
        units of this batch, the others are got from ``states``), at most :data:`OPEN_UNITS_PER_BATCH`
        of those not in the batch (loading a unit may replay its log)."""
        others = 0
        for unit_id in list(self.unwritten):
            info = unit_info(unit_id)
            unit = touched.get(unit_id)
            if unit is None:
                if others == OPEN_UNITS_PER_BATCH:
                    continue
                others += 1
                region, industry = (info.region, info.industry) if info is not None else (None, None)
                unit = _Unit(unit_id, region, industry, states.get(unit_id, info))
            self._energy(out, unit, unit.state.ledger.open_points(), self.meter_roles(info))
            del self.unwritten[unit_id]

    def replay(self, state: UnitState, info: UnitInfo | None, now_ms: int, raw: bytes) -> None:
        """Apply a message of a unit's log to the unit's ``state`` as :meth:`process` applied it — the
        same code, with the registry record ``info`` and the clock ``now_ms`` it was applied with —
        making no lines; what it would send is dropped (``streams.state``)."""
        unit = _Unit(state.ledger.unit_id, None, None, state)
        self._apply(
            raw, now_ms, lambda _unit_id, _info: unit, lambda _unit_id: info, BatchOutput(), write=False
        )

    def _apply(
        self,
        raw: bytes,
        now_ms: int,
        unit_of: Callable[[str, UnitInfo | None], _Unit],
        unit_info: Callable[[str], UnitInfo | None],
        out: BatchOutput,
        *,
        write: bool,
    ) -> None:
        """Apply one message: the one place where a message changes a unit's state, in a batch and in
        the replay of a unit's log. ``unit_of`` gives the state of a unit (with the registry record
        ``unit_info`` gives); its outputs go to ``out``, lines only when ``write``."""

        def reject_message(rejection: Rejection) -> None:
            """A whole message refused: counted for its unit when the registry knows the unit."""
            unit_id = rejection.unit_id
            info = unit_info(unit_id) if unit_id else None
            if unit_id and info is not None:
                self._reject(out, rejection, unit_of(unit_id, info).state)
            else:
                self._reject(out, rejection, None)
                out.rejected_without_unit += 1

        if b'"outputs"' in raw and self._output(out, raw, unit_of, unit_info, reject_message):
            return
        try:
            msg = parse_message(raw, now_ms)
        except MessageRejected as exc:
            reject_message(exc.rejection)
            return
        out.readings += len(msg.readings) + len(msg.rejections)
        info = unit_info(msg.unit_id)
        unit = unit_of(msg.unit_id, info)
        state = unit.state
        ledger, monitor = state.ledger, state.monitor
        result = ledger.apply(msg, self.accountant, self.policy, info)
        monitor.book(result.counted, result.withdrawn, info)
        out.accepted += result.accepted
        out.repeats += result.repeats
        for rejection in result.rejections:
            self._reject(out, rejection, state)
        monitor.rejections.advance(ledger.newest_ts_ms)
        if write:
            self._points(out, unit, result, self.meter_roles(info))
            if result.accepted:
                self.unwritten[msg.unit_id] = None
            for alert in result.alerts:
                self._alert(out, alert, unit)
        if ledger.newest_ts_ms is not None:
            status = monitor.evaluate(ledger.newest_ts_ms, info, self.rules, lang=self.lang)
            if status is not None and write:
                self._status(out, status, unit)
        out.levels[msg.unit_id] = monitor.level()

    @staticmethod
    def _energy(
        out: BatchOutput, unit: _Unit, points: Sequence[MeterInterval], roles: dict[str, str]
    ) -> None:
        """The ``energy`` lines of meter interval points of ``unit``."""
        unit_id, region, industry = unit.unit_id, unit.region, unit.industry
        lines = out.lines
        for p in points:
            role = roles.get(p.meter_id, "main")
            line = encode_energy(
                unit_id,
                region,
                industry,
                p.meter_id,
                p.energy,
                role,
                p.qty,
                p.tce,
                p.co2_t,
                p.estimated,
                p.start_ms,
            )
            if line:
                lines.append(line)
                out.energy_points += 1

    def _points(self, out: BatchOutput, unit: _Unit, result: LedgerResult, roles: dict[str, str]) -> None:
        """The ``energy``, ``unit_energy`` and ``meter_event`` lines of one message's result."""
        self._energy(out, unit, result.energy, roles)
        unit_id, region, industry = unit.unit_id, unit.region, unit.industry
        lines = out.lines
        for iv in result.intervals:
            line = encode_unit_energy(unit_id, region, industry, iv.tce, iv.co2_t, iv.start_ms)
            if line:
                lines.append(line)
        for ev in result.events:
            out.events += 1
            line = encode_meter_event(unit_id, region, industry, ev.meter_id, ev.event, ev.detail, ev.ts_ms)
            if line:
                lines.append(line)

    def _output(
        self,
        out: BatchOutput,
        raw: bytes,
        unit_of: Callable[[str, UnitInfo | None], _Unit],
        unit_info: Callable[[str], UnitInfo | None],
        reject_message: Callable[[Rejection], None],
    ) -> bool:
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
            reject_message(exc.rejection)
            return True
        state = unit_of(parsed.unit_id, unit_info(parsed.unit_id)).state
        for rejection in parsed.rejections:
            self._reject(out, rejection, state)
        for rejection in state.monitor.apply_output(parsed.items):
            self._reject(out, rejection, state)
        out.outputs += len(parsed.items)
        return True

    def _status(self, out: BatchOutput, status: UnitStatus, unit: _Unit) -> None:
        unit_id, region, industry = unit.unit_id, unit.region, unit.industry
        out.statuses[unit_id] = status
        line = encode_unit_status(unit_id, region, industry, status.fields, status.at_ts_ms)
        if line:
            out.lines.append(line)
        for alert in status.alerts:
            self._alert(out, alert, unit)
        for day in status.quality:
            line = encode_data_quality(
                unit_id,
                region,
                industry,
                day.completeness_pct,
                day.expected,
                day.received,
                None,
                None,
                day.day_start_ms,
            )
            if line:
                out.lines.append(line)

    @staticmethod
    def _rejection_counts(out: BatchOutput, unit: _Unit) -> None:
        """The ``late``/``rejected`` part of the unit's ``data_quality`` points of the days whose counts
        changed in this batch."""
        for day in unit.state.monitor.rejections.take_changed():
            line = encode_data_quality(
                unit.unit_id,
                unit.region,
                unit.industry,
                None,
                None,
                None,
                float(day.late),
                float(day.rejected),
                day.day_start_ms,
            )
            if line:
                out.lines.append(line)

    @staticmethod
    def _alert(out: BatchOutput, alert: Alert, unit: _Unit) -> None:
        """An alert of ``unit`` (its region and industry as tags)."""
        out.alerts.append(alert)
        line = encode_alert(
            alert.unit_id,
            unit.region,
            unit.industry,
            alert.rule,
            alert.severity,
            alert.state,
            alert.message,
            alert.value,
            alert.threshold,
            alert.ts_ms,
        )
        if line:
            out.lines.append(line)

    @staticmethod
    def _reject(out: BatchOutput, rejection: Rejection, state: UnitState | None) -> None:
        """A dead letter; counted in ``state``'s day (when given), on the unit's newest reading time."""
        out.rejected.append((rejection.unit_id, rejection.to_json()))
        if state is not None:
            counts = state.monitor.rejections
            counts.advance(state.ledger.newest_ts_ms)
            counts.count(rejection.rule)
