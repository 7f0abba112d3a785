"""What ``energymon collect check`` and ``energymon collect status`` print."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from collectors.agent import STATUS_FILE, group_by_unit
from collectors.buffer import Buffer
from collectors.site_config import SiteConfig, create_source
from collectors.sources.base import SourceError
from collectors.sources.context import SourceContext

CST = timezone(timedelta(hours=8))
#: Readings printed per unit by ``check``.
SHOW_READINGS = 3


async def check_sources(config: SiteConfig, timeout_s: float, echo: Callable[[str], None]) -> int:
    """Read each source of ``config`` once (``read_once``) and print what it got per unit; returns
    how many sources failed."""
    context = SourceContext(config.site.id, config.state_dir)
    failed = 0
    for source_config in config.sources:
        name = f"source {source_config.name} ({source_config.type})"
        try:
            source = create_source(source_config, context)
        except (ValueError, OSError) as exc:
            echo(f"{name}: cannot start: {exc}")
            failed += 1
            continue
        try:
            readings = await asyncio.wait_for(source.read_once(timeout_s), timeout_s + 1.0)
        except (SourceError, OSError, TimeoutError) as exc:
            echo(f"{name}: FAILED: {exc or type(exc).__name__}")
            failed += 1
            continue
        finally:
            await source.close()
        groups = group_by_unit(readings)
        echo(f"{name}: {len(readings)} reading(s) of {len(groups)} unit(s)")
        for unit_id, items in groups.items():
            echo(f"  {unit_id}: {len(items)} reading(s)")
            for r in items[:SHOW_READINGS]:
                echo(f"    {r.meter_id} {r.energy} {r.kind} {r.value:g} {r.uom} at {_when(r.ts_ms / 1000)}")
            if len(items) > SHOW_READINGS:
                echo(f"    … {len(items) - SHOW_READINGS} more")
    return failed


def status_lines(config: SiteConfig, now: float | None = None) -> list[str]:
    """Backlog, oldest unsent message and per-source state from the buffer file (and the running
    collector's status file, when there is one)."""
    now = time.time() if now is None else now
    if not config.buffer.path.exists():
        return [f"no buffer at {config.buffer.path}: the collector has not run yet"]
    buffer = Buffer(config.buffer.path, config.buffer.max_mb, config.buffer.warn_pct)
    try:
        stats, stored = buffer.stats(), {s.source: s for s in buffer.sources()}
    finally:
        buffer.close()
    live = _read_status(config)
    oldest = stats.oldest_created_at
    lines = [
        f"site {config.site.id}: buffer {config.buffer.path}",
        f"backlog: {stats.messages} message(s), {stats.value_bytes / 1e6:.2f} MB of values, "
        f"{stats.used_pct:.1f}% of {config.buffer.max_mb:g} MB",
        "oldest unsent: " + (f"{_when(oldest)} ({now - oldest:.0f} s ago)" if oldest else "none"),
    ]
    if live:
        fw = live.get("forwarder", {})
        lines.append(
            f"collector (status of {_when(live['written_at'])}): "
            f"{'connected' if fw.get('connected') else 'NOT connected'}, {fw.get('sent', 0)} sent, "
            f"clock drift {live.get('clock_drift_s')} s"
            + (f", last error: {fw['last_error']}" if fw.get("last_error") else "")
        )
    for source_config in config.sources:
        state = stored.get(source_config.name)
        errors = live.get("sources", {}).get(source_config.name, {}) if live else {}
        lines.append(
            f"source {source_config.name}: last success "
            f"{_when(state.last_success) if state and state.last_success else 'never'}, last sent "
            f"{_when(state.last_sent) if state and state.last_sent else 'never'}, "
            f"seq {state.last_seq if state else 0}, refused {state.refused if state else 0}"
            + (
                f", {errors.get('errors', 0)} error(s), last: {errors.get('last_error')}"
                if errors.get("errors")
                else ""
            )
        )
    return lines


def _read_status(config: SiteConfig) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((config.state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _when(epoch_s: float) -> str:
    """Epoch seconds as China time, to the second."""
    return datetime.fromtimestamp(epoch_s, CST).isoformat(timespec="seconds")
