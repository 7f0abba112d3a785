"""Bad input at the collector's doors and in registry files (hypothesis, derandomized; no sockets here:
tests/property/test_bad_input_sockets.py sends a few hundred through the real ones).

* **MQTT** (``collectors.sources.mqtt.mapping.PayloadMapper``): every bad payload is refused with the
  rule the plugin logs and counts (``not_json``, ``missing_field``, ``not_a_number``, ``bad_ts``,
  ``bad_topic_level``, ``bad_reading``, ``bad_envelope``), none raises, no bad reading goes on, the good
  readings of a readings message go on;
* **CSV files** (``collectors.sources.files.parse.parse_file``): every bad row is skipped with its
  line and a reason, every good row is read, in order;
* **registry files** (``energymon.registry_files.load_registry``, ``energymon registry check``): every
  bad unit or file is a problem naming file, line and field; the command exits with code 2.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from collectors.sources.files.config import Config as FilesConfig
from collectors.sources.files.parse import parse_file
from collectors.sources.files.tables import FileRejected
from collectors.sources.mqtt.config import MessageSubscription
from collectors.sources.mqtt.mapping import PayloadMapper
from energy.schema import MAX_AHEAD_MS, TS_MAX_MS
from energymon.cli import app
from energymon.registry_files import RegistryError, load_registry
from tests.property.bad_input import (
    FORBIDDEN,
    GOOD_TS,
    JSON_FORMATS,
    NOW_MS,
    UNIT_ID,
    Case,
    any_bad_message,
    bad_json_payloads,
    bad_text,
    iso,
    json_subscription,
    match,
    profile,
)

# --- MQTT ---------------------------------------------------------------------------------------------

MAPPER = PayloadMapper(
    [MessageSubscription(topic="gw/+/readings", format="readings_message")]
    + [json_subscription(f) for f in (*JSON_FORMATS, None)],
    clock=lambda: NOW_MS / 1000,
)


@profile(900)
@given(bad_json_payloads())
def test_a_bad_mqtt_json_payload_is_refused_by_its_rule_and_nothing_goes_on(
    case: tuple[str, bytes, str],
) -> None:
    topic, payload, rule = case
    readings, rejections = MAPPER.map(topic, payload)
    assert readings == []
    assert [r.rule for r in rejections] == [rule]
    assert rejections[0].detail and len(rejections[0].to_json()) < 10_000


@profile(500)
@given(any_bad_message())
def test_a_bad_mqtt_readings_message_is_refused_and_its_good_readings_go_on(case: Case) -> None:
    readings, rejections = MAPPER.map("gw/gw7/readings", case.raw)
    if case.whole is not None:
        assert readings == [] and [r.rule for r in rejections] == [case.whole.rule]
        return
    assert [r.meter_id for r in readings] == case.good_meter_ids
    assert {r.unit_id for r in readings} <= {UNIT_ID}
    assert all(r.rule == why.rule for r, why in match(case.bad_expectations, rejections))


def test_epoch_seconds_beyond_a_double_in_ms_is_refused_not_raised() -> None:
    """Regression: ``t`` of 1e306 epoch seconds is infinity once in ms; round() raised OverflowError,
    which ended the MQTT source's session task (its ``run`` only retries MqttError)."""
    readings, rejections = MAPPER.map(f"meters/{UNIT_ID}/EL01/epoch_s", b'{"data": {"v": 1, "t": 1e306}}')
    assert readings == [] and [r.rule for r in rejections] == ["bad_ts"]


# --- CSV files ------------------------------------------------------------------------------------------

FILES = FilesConfig.model_validate(
    {
        "name": "legacy", "type": "files", "path": "inbox", "settle_s": 0,
        "columns": {"ts": "ts", "meter_id": "meter", "value": "value", "unit_id": "unit", "kind": "kind"},
        "defaults": {"energy": "electricity", "uom": "kWh"},
    }
)  # fmt: skip
HEADER = ["ts", "meter", "value", "unit", "kind"]


@st.composite
def good_row(draw: st.DrawFn, n: int) -> list[str]:
    ts = draw(GOOD_TS)
    meter = draw(st.sampled_from(["EL01", "高炉1#电表", "燃气 总表", "מונה-5", "e\u0301", "a\\b"])) + f"-{n}"
    value = draw(st.sampled_from(["0", "12.5", "1e6", " 7 ", "-3.25", "1000000000000000"]))
    return [
        draw(st.sampled_from([iso(ts), iso(ts, 0), iso(ts)[:16]])),
        meter,
        value,
        UNIT_ID,
        draw(st.sampled_from(["", "cumulative", "interval"])),
    ]


@st.composite
def bad_row(draw: st.DrawFn) -> list[str]:
    """A row the stream would refuse (or that is not a reading at all)."""
    row = draw(good_row(0))
    how = draw(st.integers(min_value=0, max_value=8))
    if how == 0:
        row[2] = draw(
            st.sampled_from(["--", "", "abc", "NaN", "inf", "-Infinity", "1e400", "TRUE", "1,234.5"])
        )
    elif how == 1:
        row[2] = draw(st.sampled_from(["1e16", "-1e300", "18446744073709551615"]))
    elif how == 2:
        row[0] = draw(
            st.sampled_from(
                ["yesterday", "", "2026-13-01T00:00:00Z", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"]
            )
            | st.integers(NOW_MS + MAX_AHEAD_MS + 60_000, TS_MAX_MS - 1).map(iso)
        )
    elif how == 3:
        row[1] = draw(st.builds(lambda c: f"EL{c}01", FORBIDDEN) | st.sampled_from(["EL01\\", "\\EL01"]))
    elif how == 4:
        row[1] = "M" * draw(st.integers(min_value=129, max_value=400))
    elif how == 5:
        row[4] = draw(st.sampled_from(["total", "RATE", "累计", "0"]))
    elif how == 6:
        row[3] = draw(st.sampled_from(["U" * 65, "U1\\", "U\u202e1", "U\x001"]))
    elif how == 7:
        row[1] = "x" * 140_000  # over the csv module's 128 KiB cell
    else:
        row = row[: draw(st.integers(min_value=1, max_value=2))]
    return row


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bad-input-files-") as name:
        yield Path(name)


@profile(500)
@given(rows=st.lists(st.tuples(st.booleans(), st.integers(0, 10**6)), min_size=1, max_size=8), data=st.data())
def test_bad_csv_rows_are_skipped_with_their_line_and_the_good_rows_are_read(
    rows: list[tuple[bool, int]], data: st.DataObject, folder: Path
) -> None:
    lines = [data.draw(good_row(i)) if good else data.draw(bad_row()) for i, (good, _) in enumerate(rows)]
    out = io.StringIO(newline="")
    csv.writer(out).writerows([HEADER, *lines])
    path = folder / "export.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    bad_lines = [i + 2 for i, (good, _) in enumerate(rows) if not good]
    if len(bad_lines) == len(rows):
        with pytest.raises(FileRejected) as refused:
            parse_file(path, FILES, NOW_MS)
        assert refused.value.line == bad_lines[0]
        return
    parsed = parse_file(path, FILES, NOW_MS)
    assert [line for line, _reason in parsed.skipped] == bad_lines
    assert all(reason for _line, reason in parsed.skipped)
    assert [r.meter_id for r in parsed.readings] == [
        row[1].strip() for (good, _), row in zip(rows, lines, strict=True) if good
    ]


# --- registry files --------------------------------------------------------------------------------------

GOOD_METER = {
    "meter_id": "EL01",
    "energy": "electricity",
    "kind": "cumulative",
    "uom": "kWh",
    "multiplier": 1,
}
GOOD_UNIT = {
    "unit_id": "91320500MA1XXXXX0A",
    "name": "苏州某钢铁有限公司",
    "region": "江苏",
    "grid_region": "华东",
    "industry": "steel",
    "meters": [GOOD_METER],
    "targets": [{"year": 2026, "energy_cap_tce": 120000}],
}


def yaml_text(units: list[Any]) -> str:
    text: str = yaml.safe_dump({"units": units}, allow_unicode=True, sort_keys=False)
    return text


@st.composite
def bad_units(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A unit with one defect and the field (path below ``units[1]``) the problem must name."""
    unit = orjson.loads(orjson.dumps(GOOD_UNIT))
    unit["unit_id"] = "91320500MA1YYYYY0B"
    how = draw(st.integers(min_value=0, max_value=11))
    if how == 0:
        name = draw(st.sampled_from(["unit_id", "region", "grid_region"]))
        unit[name] = draw(bad_text(32))
        return unit, name
    if how == 1:
        unit["unit_id"] = draw(st.sampled_from(["", "U" * 65, 12345, None, ["U1"]]))
        return unit, "unit_id"
    if how == 2:
        unit["grid_region"] = draw(st.sampled_from(["华东区", "East", "华"]))
        return unit, "grid_region"
    if how == 3:
        unit["industry"] = draw(st.sampled_from(["Steel", "steel works", "钢铁", "", "1steel"]))
        return unit, "industry"
    if how == 4:
        unit["meters"][0]["multiplier"] = draw(
            st.sampled_from([0, -1, float("nan"), float("inf"), 1e9, 1e300, "x"])
        )
        return unit, "meters[0].multiplier"
    if how == 5:
        name = draw(st.sampled_from(["register_max", "max_per_hour"]))
        unit["meters"][0][name] = draw(st.sampled_from([0, -5, 1e16, float("inf"), float("nan"), "big"]))
        return unit, f"meters[0].{name}"
    if how == 6:
        unit["meters"][0]["meter_id"] = draw(bad_text(128) | st.sampled_from(["", "M" * 129]))
        return unit, "meters[0].meter_id"
    if how == 7:
        unit["meters"][0]["energy"], unit["meters"][0]["uom"] = draw(
            st.sampled_from(
                [
                    ("unobtainium", "kWh"),
                    ("electricity", "t"),
                    ("natural_gas", "kWh"),
                    ("electricity", "parsec"),
                ]
            )
        )
        return unit, "meters[0]"
    if how == 8:
        unit["meters"].append(dict(unit["meters"][0]))
        return unit, "meters[1].meter_id"
    if how == 9:
        target = unit["targets"][0]
        which = draw(st.sampled_from(["year", "energy_cap_tce", "decline"]))
        if which == "year":
            target["year"] = draw(st.sampled_from([1999, 2101, "2026年", 2026.5]))
        elif which == "energy_cap_tce":
            target["energy_cap_tce"] = draw(st.sampled_from([0, -1, float("inf"), "lots"]))
        else:
            target["energy_intensity_decline_pct"] = 2.5
            return unit, "targets[0].energy_intensity_decline_pct"
        return unit, f"targets[0].{which}"
    if how == 10:
        unit[draw(st.sampled_from(["unit_idd", "meter", "Region"]))] = "x"
        return unit, "*"
    unit["meters"] = draw(st.sampled_from(["EL01", 5, {"meter_id": "EL01"}]))
    return unit, "meters"


@st.composite
def bad_registry_files(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """(file content, field of the problem: ``units[1]…``, or None for a file that is wrong as a whole)."""
    if draw(st.integers(min_value=0, max_value=3)):
        unit, where = draw(bad_units())
        text = yaml_text([GOOD_UNIT, unit]).encode()
        return text, "units[1]" if where == "*" else f"units[1].{where}"
    how = draw(st.integers(min_value=0, max_value=8))
    good = yaml_text([GOOD_UNIT])
    whole: list[bytes] = [
        b"units: [" + b"[" * 2000 + b"]" * 2000 + b"]\n",  # deeper than the parser goes
        b"",  # empty
        b"units:\n  - unit_id: U1\n\tname: tab\n",  # a tab
        b"units: [unclosed\n",
        'units:\n  - unit_id: "U1"\n    name: "\xff"\n'.encode("latin-1"),  # not UTF-8
        b"just a sentence\n",
        good.replace("units:", "unitz:").encode(),
        _laughs(draw(st.integers(min_value=6, max_value=9))),
        good.encode() + b"  - unit_id: U2\n    unit_id: U3\n",  # a duplicate key
    ]
    return whole[how], None


def _laughs(levels: int) -> bytes:
    """A "billion laughs" file: ``levels`` levels of nine aliases each."""
    text = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for n in range(1, levels):
        text += f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]\n"
    return (text + f"units: [*a{levels - 1}]\n").encode()


PROBLEM_LINE = re.compile(r"^(?P<file>[^:]+\.yaml)(?::(?P<line>\d+))?: (?P<rest>.+)$")


@profile(400)
@given(case=bad_registry_files())
def test_a_bad_registry_file_is_refused_with_problems_naming_file_line_and_field(
    case: tuple[bytes, str | None], folder: Path
) -> None:
    content, where = case
    path = folder / "registry.yaml"
    path.write_bytes(content)
    with pytest.raises(RegistryError) as refused:
        load_registry(path)
    problems = refused.value.problems
    assert problems and all(p.file == str(path) and p.message for p in problems)
    if where is None:
        return
    assert any(p.field is not None and p.field.startswith(where) and p.line is not None for p in problems), (
        problems
    )
    assert not [p for p in problems if p.field and p.field.startswith("units[0]")]  # the good unit is fine


@profile(60)
@given(case=bad_registry_files())
def test_registry_check_exits_2_with_one_line_per_problem(
    case: tuple[bytes, str | None], folder: Path
) -> None:
    content, _where = case
    path = folder / "check.yaml"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["registry", "check", str(path)])
    assert result.exit_code == 2, result.output
    *lines, summary = result.stderr.strip().splitlines()
    assert lines and all(PROBLEM_LINE.match(line) for line in lines), lines
    assert summary.startswith("energymon registry check:") and "problem" in summary


def test_an_alias_bomb_is_refused_quickly_not_expanded() -> None:
    """Regression: nine levels of nine aliases (387 million nodes) were expanded node by node."""
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "laughs.yaml"
        path.write_bytes(_laughs(9))
        with pytest.raises(RegistryError, match="aliases expand too far"):
            load_registry(path)


def test_nesting_deeper_than_the_parser_goes_is_a_problem_not_a_crash() -> None:
    """Regression: 2,000 nested lists raised RecursionError out of ``energymon registry check``."""
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "deep.yaml"
        path.write_bytes(b"units: [" + b"[" * 2000 + b"]" * 2000 + b"]\n")
        with pytest.raises(RegistryError, match="nested too deeply"):
            load_registry(path)
