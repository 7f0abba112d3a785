"""The files source on real temporary folders: CSV (UTF-8, GBK), XLSX, bad rows, unparseable files,
moving files only after emit, the settle rule, read_once, and the testcases/ folders."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import Workbook
from pydantic import ValidationError

from collectors.sources.base import SourceError, SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.files.plugin import SOURCE_TYPES, Config, FilesSource, create
from collectors.sources.files.timestamps import ts_parser, zone

CASES = Path(__file__).parents[2] / "collectors/sources/files/testcases"
NOW_S = 1_772_400_000.0  # 2026-03-01 21:20 UTC
T0_MS = 1_772_323_200_000  # 2026-03-01 08:00 +08:00
HEADER = "ts,meter,value\n"

pytestmark = pytest.mark.timeout(20)


class Emitted:
    """An emit that records chunks; raises while ``fail`` is set; can look at the inbox meanwhile."""

    def __init__(self, fail: bool = False, watch: Path | None = None) -> None:
        self.chunks: list[list[SourceReading]] = []
        self.fail = fail
        self.watch = watch
        self.file_there_during_emit: list[bool] = []

    async def __call__(self, readings: list[SourceReading]) -> None:
        if self.watch is not None:
            self.file_there_during_emit.append(self.watch.exists())
        if self.fail:
            raise OSError("buffer disk full")
        self.chunks.append(readings)

    @property
    def readings(self) -> list[SourceReading]:
        return [r for chunk in self.chunks for r in chunk]


def source(inbox: Path, clock_s: float = NOW_S, **fields: Any) -> FilesSource:
    raw = {
        "name": "legacy",
        "type": "files",
        "path": str(inbox),
        "settle_s": 5,
        "columns": {"ts": "ts", "meter_id": "meter", "value": "value"},
        "defaults": {"unit_id": "U1", "energy": "electricity", "uom": "kWh"},
        **fields,
    }
    context = SourceContext(site_id="site", state_dir=inbox.parent, clock=lambda: clock_s)
    return create(Config.model_validate(raw), context)


def drop(inbox: Path, name: str, data: str | bytes, age_s: float = 60.0) -> Path:
    """Write a file into the inbox, last modified ``age_s`` before NOW_S."""
    inbox.mkdir(exist_ok=True)
    path = inbox / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.utime(path, (NOW_S - age_s, NOW_S - age_s))
    return path


def rows(n: int, start_ms: int = T0_MS) -> str:
    """A CSV of ``n`` rows a minute apart from ``start_ms``, values 0.5, 1.5, …"""
    times = (datetime.fromtimestamp((start_ms + i * 60_000) / 1000, UTC).isoformat() for i in range(n))
    return HEADER + "".join(f"{ts},EL01,{i}.5\n" for i, ts in enumerate(times))


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def skipped_note(done_file: Path) -> list[str]:
    note = done_file.with_name(done_file.name + ".skipped.txt")
    return note.read_text(encoding="utf-8").splitlines() if note.exists() else []


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
async def test_testcase_gives_the_readings_of_its_expected_json(case: str, inbox: Path) -> None:
    folder = CASES / case
    raw = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    (data,) = [p for p in folder.iterdir() if p.name not in ("config.yaml", "expected.json")]
    drop(inbox, data.name, data.read_bytes())
    context = SourceContext(site_id="site", state_dir=inbox.parent, clock=lambda: NOW_S)
    src = create(Config.model_validate({**raw, "path": str(inbox)}), context)
    emit = Emitted()
    await src.poll(emit)
    assert [asdict(r) for r in emit.readings] == expected["readings"]
    moved = inbox / expected["moved_to"] / data.name
    assert moved.read_bytes() == data.read_bytes()
    assert skipped_note(moved) == [f"line {line}: {reason}" for line, reason in expected["skipped"]]


async def test_utf8_csv_with_bom_reads_iso_times_in_the_files_timezone(inbox: Path) -> None:
    drop(inbox, "a.csv", "\ufeff" + HEADER + "2026-03-01 08:00,EL01,1.5\n2026-03-01T08:00:00+09:00,EL02,2\n")
    emit = Emitted()
    await source(inbox).poll(emit)
    assert [(r.meter_id, r.ts_ms, r.value) for r in emit.readings] == [
        ("EL01", T0_MS, 1.5),
        ("EL02", T0_MS - 3_600_000, 2.0),
    ]


async def test_gbk_csv_with_chinese_headers_is_read(inbox: Path) -> None:
    text = "时间,表号,读数\n2026-03-01 08:00,一号电表,10.5\n"
    drop(inbox, "gbk.csv", text.encode("gbk"))
    columns = {"ts": "时间", "meter_id": "表号", "value": "读数"}
    emit = Emitted()
    await source(inbox, encoding="gbk", columns=columns).poll(emit)
    assert [(r.meter_id, r.value, r.ts_ms) for r in emit.readings] == [("一号电表", 10.5, T0_MS)]


async def test_xlsx_workbook_is_read_with_date_cells_in_the_files_timezone(inbox: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "能耗"
    sheet.append(["某厂能耗报表"])
    sheet.append(["ts", "meter", "value", "uom"])
    sheet.append([datetime(2026, 3, 1, 8, 0), "EL01", 12.25, None])
    sheet.append(["2026-03-01T08:15:00+08:00", "NG01", 3, "m³"])
    inbox.mkdir(exist_ok=True)
    book.save(inbox / "export.xlsx")
    os.utime(inbox / "export.xlsx", (NOW_S - 60, NOW_S - 60))
    columns = {"ts": "ts", "meter_id": "meter", "value": "value", "uom": "uom"}
    emit = Emitted()
    src = source(inbox, pattern="*.xlsx", header_row=2, sheet="能耗", columns=columns)
    await src.poll(emit)
    assert [(r.meter_id, r.ts_ms, r.value, r.uom) for r in emit.readings] == [
        ("EL01", T0_MS, 12.25, "kWh"),
        ("NG01", T0_MS + 900_000, 3.0, "m³"),
    ]
    assert (inbox / "done/export.xlsx").exists()


async def test_a_bad_row_is_skipped_counted_and_listed_next_to_the_done_file(inbox: Path) -> None:
    drop(inbox, "a.csv", HEADER + f"{T0_MS},EL01,1\nyesterday,EL01,2\n{T0_MS},,3\n{T0_MS},EL01,4\n")
    emit = Emitted()
    src = source(inbox, ts_format="epoch_ms")
    await src.poll(emit)
    assert [r.value for r in emit.readings] == [1.0, 4.0]
    assert (src.stats.rows_skipped, src.stats.readings, src.stats.files_done) == (2, 2, 1)
    assert skipped_note(inbox / "done/a.csv") == [
        "line 3: time 'yesterday' is not epoch milliseconds",
        "line 4: meter_id: String should have at least 1 character",
    ]


async def test_an_undecodable_file_goes_to_failed_with_the_line_and_reason(inbox: Path) -> None:
    drop(inbox, "a.csv", (HEADER + "2026-03-01 08:00,电表,1\n").encode("gbk"))
    emit = Emitted()
    src = source(inbox)  # utf-8 expected
    await src.poll(emit)
    assert emit.chunks == []
    assert not (inbox / "a.csv").exists()
    assert (inbox / "failed/a.csv").exists()
    error = (inbox / "failed/a.csv.error.txt").read_text(encoding="utf-8")
    assert error.startswith("line 2: not utf-8 text (byte 0xb5)")
    assert src.stats.files_failed == 1


async def test_a_missing_column_fails_the_file_naming_the_header_line(inbox: Path) -> None:
    drop(inbox, "a.csv", "time,meter,value\n2026-03-01 08:00,EL01,1\n")
    await source(inbox).poll(Emitted())
    error = (inbox / "failed/a.csv.error.txt").read_text(encoding="utf-8")
    assert error.startswith("line 1: no column 'ts' for ts in the header ['time', 'meter', 'value']")


async def test_a_file_whose_every_row_is_bad_fails(inbox: Path) -> None:
    drop(inbox, "a.csv", HEADER + "2026-03-01 08:00,EL01,n/a\n2026-03-01 08:15,EL01,n/a\n")
    await source(inbox).poll(Emitted())
    error = (inbox / "failed/a.csv.error.txt").read_text(encoding="utf-8")
    assert error == "line 2: value 'n/a' is not a number (and no row of the file could be read: 2 bad)\n"


async def test_a_file_stays_when_emit_raises_and_moves_after_a_later_emit_succeeds(inbox: Path) -> None:
    drop(inbox, "a.csv", rows(3))
    emit = Emitted(fail=True)
    src = source(inbox)
    await src.poll(emit)
    assert (inbox / "a.csv").exists()
    assert not (inbox / "done").exists()
    emit.fail = False
    await src.poll(emit)
    assert [r.value for r in emit.readings] == [0.5, 1.5, 2.5]
    assert (inbox / "done/a.csv").exists()


async def test_the_file_is_moved_only_after_every_chunk_was_emitted(inbox: Path) -> None:
    path = drop(inbox, "a.csv", rows(7))
    emit = Emitted(watch=path)
    await source(inbox, chunk_size=3).poll(emit)
    assert [len(chunk) for chunk in emit.chunks] == [3, 3, 1]
    assert emit.file_there_during_emit == [True, True, True]
    assert not path.exists()


async def test_files_modified_within_settle_s_wait(inbox: Path) -> None:
    drop(inbox, "fresh.csv", rows(1), age_s=2)
    drop(inbox, "settled.csv", rows(1), age_s=6)
    emit = Emitted()
    await source(inbox, settle_s=5).poll(emit)
    assert len(emit.chunks) == 1
    assert (inbox / "fresh.csv").exists()
    assert (inbox / "done/settled.csv").exists()


async def test_files_are_taken_oldest_first_and_others_are_left_alone(inbox: Path) -> None:
    drop(inbox, "b.csv", rows(1, T0_MS + 1000), age_s=10)
    drop(inbox, "a.csv", rows(1, T0_MS + 2000), age_s=20)
    drop(inbox, ".c.csv", rows(1), age_s=30)  # hidden: a file being written under a temporary name
    drop(inbox, "d.txt", rows(1), age_s=30)
    emit = Emitted()
    await source(inbox).poll(emit)
    assert [r.ts_ms for r in emit.readings] == [T0_MS + 2000, T0_MS + 1000]
    assert sorted(p.name for p in inbox.iterdir()) == [".c.csv", "d.txt", "done"]


async def test_a_name_already_in_done_gets_a_suffix(inbox: Path) -> None:
    drop(inbox, "a.csv", rows(1))
    src = source(inbox)
    await src.poll(Emitted())
    drop(inbox, "a.csv", rows(2))
    await src.poll(Emitted())
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a-1.csv", "a.csv"]


async def test_read_once_parses_the_first_file_without_moving_it(inbox: Path) -> None:
    drop(inbox, "a.csv", rows(2))
    readings = await source(inbox).read_once(timeout_s=1)
    assert [r.value for r in readings] == [0.5, 1.5]
    assert (inbox / "a.csv").exists()


async def test_read_once_waits_for_a_file_then_gives_up_with_nothing(inbox: Path) -> None:
    src = source(inbox)
    assert await src.read_once(timeout_s=0.3) == []
    waiting = asyncio.create_task(src.read_once(timeout_s=2))
    await asyncio.sleep(0.1)
    drop(inbox, "late.csv", rows(1))
    assert [r.value for r in await waiting] == [0.5]


async def test_read_once_raises_source_error_for_an_unparseable_file(inbox: Path) -> None:
    drop(inbox, "a.xlsx", b"not a zip")
    with pytest.raises(SourceError, match=r"a\.xlsx: not an XLSX workbook"):
        await source(inbox, pattern="*.xlsx").read_once(timeout_s=1)


async def test_a_missing_folder_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="cannot list"):
        await source(Path("/nonexistent/inbox")).read_once(timeout_s=0)


async def test_run_polls_the_folder_until_cancelled(inbox: Path) -> None:
    src = source(inbox, interval_s=0.05)
    emit = Emitted()
    task = asyncio.create_task(src.run(emit))
    async with asyncio.timeout(5):
        drop(inbox, "a.csv", rows(1))
        while not emit.chunks:
            await asyncio.sleep(0.02)
        drop(inbox, "b.csv", rows(1, T0_MS + 1000))
        while len(emit.chunks) < 2:
            await asyncio.sleep(0.02)
    task.cancel()
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a.csv", "b.csv"]


@pytest.mark.parametrize(
    ("fmt", "tz", "cell", "ms"),
    [
        ("iso8601", "Asia/Shanghai", "2026-03-01T00:00:00Z", T0_MS),
        ("%Y%m%d%H%M", "Asia/Shanghai", "202603010800", T0_MS),
        ("%d.%m.%Y %H:%M", "+01:00", "01.03.2026 01:00", T0_MS),
        ("epoch_ms", "Asia/Shanghai", "1772323200000", T0_MS),
        ("epoch_ms", "Asia/Shanghai", 1772323200000.0, T0_MS),
    ],
)
def test_time_formats_give_epoch_ms(fmt: str, tz: str, cell: object, ms: int) -> None:
    assert ts_parser(fmt, zone(tz))(cell) == ms


@pytest.mark.parametrize("cell", ["1999-12-31T23:59:59Z", "", None, "08:00"])
def test_times_outside_2000_2100_or_unreadable_are_refused(cell: object) -> None:
    with pytest.raises(ValueError, match="time"):
        ts_parser("iso8601", zone("Asia/Shanghai"))(cell)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"defaults": {"energy": "electricity"}}, "unit_id, uom: give a column or a default"),
        ({"header_row": 0}, "columns are numbers"),
        ({"encoding": "gbk2"}, "unknown encoding 'gbk2'"),
        ({"timezone": "China"}, "unknown timezone 'China'"),
        ({"ts_format": "yyyy-mm-dd"}, "strptime pattern"),
        ({"columns": {"ts": 0, "meter_id": 1, "value": 2}}, "column numbers start at 1"),
    ],
)
def test_config_errors_name_the_problem(change: dict[str, Any], message: str) -> None:
    raw = {
        "name": "f",
        "type": "files",
        "path": "/x",
        "columns": {"ts": "ts", "meter_id": "m", "value": "v"},
        "defaults": {"unit_id": "U", "energy": "electricity", "uom": "kWh"},
    }
    with pytest.raises(ValidationError, match=message):
        Config.model_validate({**raw, **change})
    assert SOURCE_TYPES == ("files",)


def test_sample_validates() -> None:
    sample = yaml.safe_load((CASES.parent / "sample.yaml").read_text(encoding="utf-8"))
    assert [Config.model_validate(entry).type for entry in sample["sources"]] == ["files"] * 3
