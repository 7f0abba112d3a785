"""One export file → its readings and the rows it had to skip."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from collectors.sources.base import SourceReading
from collectors.sources.files.config import Config
from collectors.sources.files.rows import RowError, RowMapper
from collectors.sources.files.tables import FileRejected, RowUnreadable, read_rows
from collectors.sources.files.timestamps import ts_parser, zone


@dataclass
class ParsedFile:
    """The readings of one file, in file order, and the skipped rows as (line, reason)."""

    readings: list[SourceReading] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def parse_file(path: Path, config: Config, now_ms: int | None = None) -> ParsedFile:
    """Parse ``path``. A bad row (one the stream would refuse too; ``now_ms`` is the collector's clock
    for readings stamped in the future) is skipped and listed in ``skipped``; FileRejected when the
    file can't be read, lacks the header or a named column, or has data rows of which none could be
    read."""
    parse_ts = ts_parser(config.ts_format, zone(config.timezone))
    mapper = RowMapper(config.columns, config.defaults, parse_ts, now_ms)
    parsed = ParsedFile()
    header_seen = config.header_row == 0
    for line, cells in read_rows(
        path, encoding=config.encoding, delimiter=config.delimiter, sheet=config.sheet
    ):
        if line < config.header_row:
            continue
        if isinstance(cells, RowUnreadable):
            if line == config.header_row:
                raise FileRejected(line, f"header row: {cells}")
            parsed.skipped.append((line, str(cells)))
        elif line == config.header_row:
            mapper.use_header(line, cells)
            header_seen = True
        elif any(c is not None and str(c).strip() for c in cells):  # blank rows are no data
            try:
                parsed.readings.append(mapper.reading(cells))
            except RowError as exc:
                parsed.skipped.append((line, str(exc)))
    if not header_seen:
        raise FileRejected(None, f"the file ends before its header row {config.header_row}")
    if parsed.skipped and not parsed.readings:
        line, reason = parsed.skipped[0]
        raise FileRejected(
            line, f"{reason} (and no row of the file could be read: {len(parsed.skipped)} bad)"
        )
    return parsed
