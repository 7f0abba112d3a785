"""A unit's dual-control monitor: period totals, quota progress, warning levels and level alerts.

:class:`UnitMonitor` sits beside the unit's ledger (``energy.ledger``). The ledger turns readings into
energy pieces; the monitor books the *counted* ones (never a repeat, and a late correction's
withdrawal with a minus sign) into the unit's :class:`~energy.periods.UnitPeriods`, takes output
reports (replacing, never adding up, an item seen before), and, each time the unit's data moves
into a new 15-minute interval, grades the unit against its year's targets
(:func:`energy.quota.quota_progress`, :func:`energy.levels.assess`) and reports the changes of level
as alerts (raised / updated / resolved).

**Storage.** A unit's full history is ~50 kB of JSON. It is kept in two parts: the *archive* (the
full history as of the last fold) and the *journal* (the pieces since). :meth:`fold` moves the
journal into the archive and returns it; ``fold_seq`` numbers the folds; the journal folded last is
kept (``prev_journal``, as stored JSON) until the next fold, so that a record whose archive is one
fold behind can still be rebuilt (:meth:`restore`). The stream app folds when it writes a unit's
snapshot and stores the archive in the snapshot with :meth:`to_json` (``streams.state``: between
snapshots it stores the messages applied, not the state).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from energy.alert import Alert
from energy.intervals import INTERVAL_MS, interval_start
from energy.ledger import EnergyPoint, registry_table
from energy.levels import (
    INDICATORS,
    Assessment,
    Level,
    LevelChange,
    LevelTracker,
    assess,
    assess_product,
    worst,
)
from energy.messages import Lang, level_alert, product_alert
from energy.operational import DayQuality, OperationalMonitor, OperationalRules
from energy.output import OutputItem
from energy.periods import (
    KEEP_DAYS,
    SCALE,
    UnitPeriods,
    energy_key,
    output_key,
    product_ids_for_meter,
    product_key,
    reference_day,
    scaled,
)
from energy.quota import product_energy, quota_progress
from energy.registry import ProductInfo, UnitInfo, WarningThresholds, YearTargets
from energy.rejections import DailyRejections
from energy.schema import Rejection

DAY_MS = 24 * 60 * 60 * 1000
#: ``energy_key(energy, excluded)`` of each (energy, excluded) booked (a handful).
_ENERGY_KEYS: dict[tuple[str, str | None], str] = {}
#: How far (ms) behind the unit's newest data an output item may be: older ones are refused
#: (``too_late``) and forgotten, so that a replay can never count one twice.
OUTPUT_MEMORY_MS = KEEP_DAYS * DAY_MS
#: How far (ms) ahead of the unit's newest data an output item may be (a month's report stamped at the
#: month's end, sent mid-month): a later one is refused (``implausible_time``), not let shift the
#: unit's period horizons into the future.
OUTPUT_AHEAD_MS = 40 * DAY_MS


@dataclass
class UnitStatus:
    """The unit's status with the data up to ``at_ts_ms`` (epoch ms): the ``unit_status`` fields
    (ARCHITECTURE.md; percentages in %, totals in tce / tCO₂, intensities per 万元), the unit's overall
    ``level`` and the level of each graded indicator, and the alerts its level changes raised."""

    at_ts_ms: int
    fields: dict[str, float | str]
    level: Level
    levels: dict[str, str]
    alerts: list[Alert] = field(default_factory=list)
    quality: list[DayQuality] = field(default_factory=list)


@dataclass
class UnitHistory:
    """Period totals and the output items they hold (``key → [quantity, value_10k_yuan]``)."""

    periods: UnitPeriods = field(default_factory=UnitPeriods)
    outputs: dict[str, list[float]] = field(default_factory=dict)

    def newest_output_ms(self) -> int | None:
        """End (epoch ms) of the newest output report held, None without one."""
        return max((int(k.rsplit("|", 1)[1]) for k in self.outputs), default=None)

    def merge(self, other: UnitHistory) -> None:
        """Fold ``other`` (a journal) into this history."""
        self.periods.merge(other.periods)
        self.outputs.update(other.outputs)
        self.forget_old_outputs()

    def forget_old_outputs(self) -> None:
        """Drop the output items older than :data:`OUTPUT_MEMORY_MS` (refused from then on)."""
        newest = self.periods.newest_ts_ms()
        if newest is not None:
            oldest = newest - OUTPUT_MEMORY_MS
            self.outputs = {k: v for k, v in self.outputs.items() if int(k.rsplit("|", 1)[1]) >= oldest}

    def to_json(self) -> dict[str, Any]:
        return {"periods": self.periods.to_json(), "outputs": self.outputs}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> UnitHistory:
        return cls(
            UnitPeriods.from_json(doc["periods"]),
            {str(k): [float(x) for x in v] for k, v in doc["outputs"].items()},
        )


def _item_doc(item: OutputItem) -> dict[str, Any]:
    return {
        "ts": item.ts_ms,
        "product_id": item.product_id,
        "quantity": item.quantity,
        "value_10k_yuan": item.value_10k_yuan,
    }


def product_fields(product: ProductInfo, assessment: Assessment | None) -> dict[str, float | str]:
    """The product's ``unit_status`` fields, all in its ``value_uom`` (e.g. kgce/t): its energy per unit
    of product ``product_<id>_value`` (when graded) and its 标杆/基准/限额 from the registry,
    ``product_<id>_benchmark`` / ``_baseline`` / ``_limit`` (those it has)."""
    prefix = f"product_{product.product_id}_"
    fields: dict[str, float | str] = {}
    if assessment is not None:
        fields[prefix + "value"] = assessment.figures["green"][0]
    standards = {"benchmark": product.benchmark, "baseline": product.baseline, "limit": product.limit}
    for name, figure in standards.items():
        if figure is not None:
            fields[prefix + name] = figure
    return fields


class UnitMonitor:
    """Period totals, level trackers and status of one unit (see the module docstring)."""

    def __init__(self, unit_id: str) -> None:
        self.unit_id = unit_id
        self.history = UnitHistory()  # everything: archive + journals (kept in memory only)
        self.journal = UnitHistory()  # since the last fold
        self.prev_journal: dict[str, Any] | None = None  # the journal folded last, as stored
        self.fold_seq = 0
        self.trackers: dict[str, LevelTracker] = {}
        self.evaluated_to: int | None = None
        self.operational = OperationalMonitor()
        self.rejections = DailyRejections()  # the data_quality late/rejected counts of the day
        # pieces booked but not yet added: (interval end ms, totals key) → [tce, tCO₂] in millionths
        self._pending: dict[tuple[int, str], list[int]] = {}

    # --- input -------------------------------------------------------------------------------

    def _pend(self, ts_ms: int, key: str, tce: int, co2: int) -> None:
        """Sum a piece (millionths) into the pending total of its interval and key."""
        slot = (interval_start(ts_ms) + INTERVAL_MS, key)
        pending = self._pending.get(slot)
        if pending is None:
            self._pending[slot] = [tce, co2]
        else:
            pending[0] += tce
            pending[1] += co2

    def flush(self) -> None:
        """Add the pending sums to the history and the journal (done before any question)."""
        for (end_ms, key), (tce, co2) in self._pending.items():
            self.history.periods.add_scaled(end_ms, key, tce, co2)
            self.journal.periods.add_scaled(end_ms, key, tce, co2)
        self._pending.clear()

    def book(
        self, counted: Iterable[EnergyPoint], withdrawn: Iterable[EnergyPoint], info: UnitInfo | None
    ) -> None:
        """Book the ledger's counted pieces (``LedgerResult.counted``) and take back the withdrawn ones
        (``LedgerResult.withdrawn``). A sub-meter's energy is already in its main meter's: it counts in
        no unit total, only in the products that list it; a meter marked ``excluded`` counts apart."""
        # Per piece (this runs for nearly every reading): for the unit totals, what _pend does,
        # written out, with the interval end kept while the time repeats (a scan's pieces share it)
        # and the totals keys made once per energy.
        observe, pending, pend = self.operational.observe, self._pending, self._pend
        # the ledger's table of the record's meters (made once per record version)
        table = registry_table(info) if info is not None and info.meters else {}
        keys = _ENERGY_KEYS
        last_ts, end = None, 0
        for sign, points in ((1.0, counted), (-1.0, withdrawn)):
            for p in points:
                meter_id, energy, ts_ms = p.meter_id, p.energy, p.ts_ms
                entry = table.get(meter_id)
                if entry is not None:
                    role, excluded, products = entry.role, entry.excluded, entry.products
                else:
                    role, excluded = "main", None
                    products = (
                        product_ids_for_meter(info, meter_id) if info is not None and info.products else ()
                    )
                piece = sign * p.tce
                observe(meter_id, energy, role, ts_ms, piece)  # raises ValueError unless finite
                tce, co2 = round(piece * SCALE), scaled(sign * p.co2_t)
                if ts_ms != last_ts:
                    last_ts, end = ts_ms, interval_start(ts_ms) + INTERVAL_MS
                if role == "main":
                    key = keys.get((energy, excluded))
                    if key is None:
                        key = keys[(energy, excluded)] = energy_key(energy, excluded)
                    totals = pending.get((end, key))
                    if totals is None:
                        pending[(end, key)] = [tce, co2]
                    else:
                        totals[0] += tce
                        totals[1] += co2
                for product_id in products:  # (few meters list products: no need to inline)
                    pend(ts_ms, product_key(product_id), tce, co2)

    def apply_output(self, items: Iterable[OutputItem]) -> list[Rejection]:
        """Take output reports; an item with the key of one seen before replaces it (only the
        difference is booked), so replays and corrections never add up twice. Returns the items
        refused: older than :data:`OUTPUT_MEMORY_MS` behind the unit's newest data, or further ahead
        than :data:`OUTPUT_AHEAD_MS` of its newest energy data."""
        refused: list[Rejection] = []
        for item in items:
            key = item.key
            newest = self.history.periods.newest_ts_ms()
            if newest is not None and item.ts_ms < newest - OUTPUT_MEMORY_MS:
                detail = (
                    f"output is more than {OUTPUT_MEMORY_MS // DAY_MS} days behind the unit's newest data"
                )
                refused.append(Rejection("too_late", detail, self.unit_id, _item_doc(item)))
                continue
            newest_energy = self.operational.newest_ts
            if newest_energy is not None and item.ts_ms > newest_energy + OUTPUT_AHEAD_MS:
                detail = (
                    f"output is more than {OUTPUT_AHEAD_MS // DAY_MS} days ahead of the unit's newest data"
                )
                refused.append(Rejection("implausible_time", detail, self.unit_id, _item_doc(item)))
                continue
            before = self.history.outputs.get(key, [0.0, 0.0])
            after = [item.quantity or 0.0, item.value_10k_yuan or 0.0]
            # the difference of the rounded figures, so that any chain of corrections stays exact
            dq = scaled(after[0]) - scaled(before[0])
            dv = scaled(after[1]) - scaled(before[1])
            for h in (self.history, self.journal):
                if dq or dv:
                    h.periods.add_scaled(item.ts_ms, output_key(item.product_id), dq, dv)
                h.outputs[key] = after
        return refused

    # --- grading -----------------------------------------------------------------------------

    def evaluate(
        self,
        newest_ts_ms: int,
        info: UnitInfo | None,
        rules: OperationalRules | None = None,
        *,
        lang: Lang = "zh",
    ) -> UnitStatus | None:
        """The unit's status with its data up to ``newest_ts_ms`` (the newest reading's time: year to
        date and schedule are both taken then), once per 15-minute interval: when the data has
        entered an interval after the one graded last; else None. Level changes (with hysteresis,
        ``energy.levels``) come as alerts at that time, and so do the operational rules'
        (``energy.operational``, with ``rules``; None: their defaults), with the days' data quality
        they closed."""
        interval = interval_start(newest_ts_ms)
        if self.evaluated_to is not None and interval <= self.evaluated_to:
            return None
        self.flush()
        self.evaluated_to = interval
        at = newest_ts_ms
        year = reference_day(at).year
        targets = info.targets_for(year) if info is not None else None
        newest_output = self.history.newest_output_ms()
        progress = quota_progress(targets or YearTargets(year=year), self.history.periods, at, newest_output)
        thresholds = info.thresholds if info is not None else WarningThresholds()
        status = UnitStatus(at, {**progress.status_fields(), **self.period_fields(at)}, "green", {})
        name = info.name if info is not None else self.unit_id
        assessments = assess(progress, thresholds)
        for indicator in INDICATORS:
            assessment = assessments.get(indicator)
            moved = self._track(indicator, assessment, at, thresholds, status)
            if moved is not None and assessment is not None:
                change, value, threshold = moved
                status.alerts.append(
                    level_alert(
                        self.unit_id,
                        name,
                        indicator,
                        change.level,
                        change.state,
                        value,
                        threshold,
                        year,
                        ts_ms=at,
                        basis=assessment.basis,
                        lang=lang,
                    )
                )
        for product in info.products if info is not None else ():
            kgce = product_energy(product, self.history.periods, at, newest_output)
            assessment = assess_product(product, kgce)
            moved = self._track(f"product:{product.product_id}", assessment, at, thresholds, status)
            status.fields.update(product_fields(product, assessment))
            if moved is not None:
                change, value, threshold = moved
                status.alerts.append(
                    product_alert(
                        self.unit_id,
                        name,
                        product,
                        change.level,
                        change.state,
                        value,
                        threshold,
                        year,
                        ts_ms=at,
                        lang=lang,
                    )
                )
        expected = [m.meter_id for m in info.meters if m.role != "monthly"] if info is not None else []
        found = self.operational.evaluate(
            self.unit_id, name, newest_ts_ms, rules or OperationalRules(), expected, lang=lang
        )
        status.alerts.extend(found.alerts)
        status.quality = found.quality
        status.level = worst(status.levels.values())
        status.fields["level"] = status.level
        for indicator, level in status.levels.items():
            status.fields[f"{indicator.replace(':', '_')}_level"] = level
        return status

    def period_fields(self, at: int) -> dict[str, float | str]:
        """The unit's totals (tce, tCO₂) of the day, month, quarter, rolling 24 h and 30 days with its
        data up to ``at``, as ``unit_status`` fields (``day_tce``, ``rolling_30d_co2_t`` …)."""
        fields: dict[str, float | str] = {}
        for period in ("day", "month", "quarter", "rolling_24h", "rolling_30d"):
            totals = self.history.periods.totals(period, at)
            fields[f"{period}_tce"] = totals.tce
            fields[f"{period}_co2_t"] = totals.co2_t
        return fields

    def _track(
        self,
        indicator: str,
        assessment: Assessment | None,
        at: int,
        thresholds: WarningThresholds,
        status: UnitStatus,
    ) -> tuple[LevelChange, float, float] | None:
        """Feed an indicator's assessment to its tracker and note its level in ``status``; return the
        change of level with the value and threshold its alert shows, or None."""
        tracker = self.trackers.setdefault(indicator, LevelTracker())
        change = tracker.update(assessment, at, thresholds)
        if assessment is None:
            return None
        status.levels[indicator] = tracker.level
        if change is None:
            return None
        value, threshold = assessment.figures[change.level]
        return change, value, threshold

    def level(self) -> Level:
        """The unit's reported level now: the worst of its indicators' (green before any grading)."""
        return worst(t.level for t in self.trackers.values())

    # --- storage -----------------------------------------------------------------------------

    def journal_buckets(self) -> int:
        """Size of the journal in period buckets (each ~100 bytes of JSON)."""
        self.flush()
        return self.journal.periods.bucket_count()

    def fold(self) -> dict[str, Any]:
        """Move the journal into the archive; return the archive record to store (before the unit's
        next record, and before this batch's messages are applied: see the module docstring)."""
        self.flush()
        self.history.forget_old_outputs()
        self.prev_journal, self.journal = self.journal.to_json(), UnitHistory()
        self.fold_seq += 1
        return {"seq": self.fold_seq, **self.history.to_json()}

    def to_json(self) -> dict[str, Any]:
        """The small record stored with the ledger after every batch (no archive)."""
        self.flush()
        return {
            "seq": self.fold_seq,
            "journal": self.journal.to_json(),
            "prev": self.prev_journal,
            "trackers": {k: t.to_json() for k, t in self.trackers.items()},
            "evaluated_to": self.evaluated_to,
            "operational": self.operational.to_json(),
            "rejections": self.rejections.to_json(),
        }

    @classmethod
    def restore(
        cls, unit_id: str, doc: dict[str, Any] | None, archive: dict[str, Any] | None
    ) -> tuple[UnitMonitor, str | None]:
        """Rebuild a monitor from its stored record and archive (either may be missing). Returns the
        monitor and a warning when the two do not fit together (then the best rebuild possible)."""
        monitor = cls(unit_id)
        warning = None
        archive_seq = int(archive["seq"]) if archive is not None else 0
        if archive is not None:
            monitor.history = UnitHistory.from_json(archive)
        if doc is None:
            monitor.fold_seq = archive_seq
            return monitor, None
        seq = int(doc["seq"])
        journal = UnitHistory.from_json(doc["journal"])
        prev = UnitHistory.from_json(doc["prev"]) if doc["prev"] is not None else None
        if archive_seq == seq:
            parts = [journal]
        elif archive_seq == seq - 1 and prev is not None:
            parts = [prev, journal]  # the last fold's archive write was lost: redo it
        elif archive_seq == seq + 1:
            parts = []  # the archive holds the journal already (the record after the fold was lost)
            journal = UnitHistory()
        else:
            parts = [journal]
            warning = f"unit {unit_id}: archive fold {archive_seq} does not fit record fold {seq}"
        for part in parts:
            monitor.history.merge(part)
        monitor.fold_seq = max(seq, archive_seq)
        monitor.journal, monitor.prev_journal = journal, doc["prev"]
        monitor.trackers = {k: LevelTracker.from_json(v) for k, v in doc["trackers"].items()}
        evaluated = doc.get("evaluated_to")
        monitor.evaluated_to = None if evaluated is None else int(evaluated)
        if doc.get("operational") is not None:
            monitor.operational = OperationalMonitor.from_json(doc["operational"])
        monitor.rejections = DailyRejections.from_json(doc.get("rejections"))
        return monitor, warning
