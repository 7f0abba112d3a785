"""Registry files: the sample, every kind of problem with its file:line:field, and `energymon registry`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collectors.simulator import SAMPLE_REGISTRY, Fleet, registry_for
from energy.registry import UnitInfo
from energymon.cli import app
from energymon.registry_files import Problem, RegistryError, load_registry

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "registry" / "simulator.yaml"

UNIT = """\
units:
  - unit_id: U1
    name: 测试钢铁
    region: 江苏
    grid_region: 华东
    industry: steel
    meters:
      - meter_id: EL01
        energy: electricity
        kind: cumulative
        uom: kWh
        register_max: 1000000
      - {meter_id: NG01, energy: natural_gas, kind: cumulative, uom: m³, excluded: feedstock}
    products:
      - {product_id: iron, name: 高炉工序, uom: t, benchmark: 361, baseline: 435, meters: [EL01]}
    targets:
      - {year: 2026, energy_cap_tce: 1000, energy_intensity_decline_pct: 2.5, base_year: 2025}
"""
# line numbers in UNIT: 2 unit_id, 5 grid_region, 8 meter_id EL01, 9 energy, 11 uom, 12 register_max,
# 13 NG01, 15 product, 17 target


def problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, name: str = "units.yaml"
) -> list[str]:
    """The problems of ``text`` written to ``name`` (a relative path, so messages start with it)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(RegistryError) as caught:
        load_registry(Path(name))
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)
    return [str(p) for p in caught.value.problems]


def edit(old: str, new: str) -> str:
    assert old in UNIT, old
    return UNIT.replace(old, new, 1)


# -- valid files ---------------------------------------------------------------------------------


def test_the_template_is_valid(tmp_path: Path) -> None:
    (tmp_path / "u.yaml").write_text(UNIT, encoding="utf-8")
    [u] = load_registry(tmp_path / "u.yaml")
    assert u.unit_id == "U1" and u.grid_region == "华东"
    assert u.meter("EL01") is not None and u.meter("EL01").register_max == 1e6  # type: ignore[union-attr]
    assert u.meter("NG01").excluded == "feedstock"  # type: ignore[union-attr]
    assert u.products[0].benchmark == 361 and u.products[0].meters == ("EL01",)
    assert u.targets_for(2026) is not None and u.targets_for(2026).base_year == 2025  # type: ignore[union-attr]
    assert UnitInfo.from_json(u.to_json()) == u


def test_bare_list_and_directory_in_name_order(tmp_path: Path) -> None:
    bare = "\n".join(line[2:] for line in UNIT.splitlines()[1:]).replace("U1", "U2")  # a list at top level
    (tmp_path / "b.yml").write_text(bare, encoding="utf-8")
    (tmp_path / "a.yaml").write_text(UNIT, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not read", encoding="utf-8")
    assert [u.unit_id for u in load_registry(tmp_path)] == ["U1", "U2"]


def test_the_sample_registry_describes_the_simulated_fleet() -> None:
    units = load_registry(SAMPLE)
    fleet = Fleet.generate(20, 2026)
    assert [u.unit_id for u in units] == [u.unit_id for u in fleet.units]
    for info, sim in zip(units, fleet.units, strict=True):
        assert (info.name, info.region, info.grid_region, info.industry) == (
            sim.info.name,
            sim.info.region,
            sim.info.grid_region,
            sim.info.industry,
        )
        assert [(m.meter_id, m.energy, m.kind, m.uom) for m in info.meters] == [
            (m.meter_id, m.energy, m.kind, m.uom) for m in sim.meters
        ]
        assert all(m.role == "main" for m in info.meters)
        excluded = [m.meter_id for m in info.meters if m.excluded]
        assert excluded == ([f"{info.unit_id}.NG01"] if info.industry == "chemicals" else [])
        assert [p.name for p in info.products] == {"steel": ["高炉工序"], "cement": ["水泥熟料"]}.get(
            info.industry, []
        )
        assert [t.year for t in info.targets] == [2025, 2026]
        t2026 = info.targets_for(2026)
        assert t2026 is not None and t2026.energy_intensity_decline_pct == 2.5 and t2026.base_year == 2025
        assert t2026.co2_cap_t is not None and info.hourly_tce_ceiling is None
    steel = units[0].products[0]
    assert (steel.benchmark, steel.baseline, steel.value_uom) == (361, 435, "kgce/t")


def test_the_sample_is_designed_green_yellow_red() -> None:
    """Caps of 1.3 × the simulated consumption for 7 units, 1.05 × for 7, 0.8 × for 6."""
    fleet = Fleet.generate(20, 2026)
    factors = []
    for info, sim in zip(load_registry(SAMPLE), fleet.units, strict=True):
        counted = {m.meter_id for m in info.meters if not m.excluded}
        annual = sum(m.annual_qty * m.tce_per_uom for m in sim.meters if m.meter_id in counted)
        cap = info.targets_for(2026).energy_cap_tce  # type: ignore[union-attr]
        factors.append(round(cap / annual, 2))
    assert factors.count(1.3) == 7 and factors.count(1.05) == 7 and factors.count(0.8) == 6


def test_the_sample_is_what_the_script_writes() -> None:
    script = ROOT / "scripts" / "make_sample_registry.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_readme_example_is_valid(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Registry files", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example is not None
    (tmp_path / "readme.yaml").write_text(example.group(1), encoding="utf-8")
    [u] = load_registry(tmp_path / "readme.yaml")
    assert [m.role for m in u.meters] == ["main", "sub", "main"]


def test_the_simulator_publishes_the_sample_for_its_default_fleet(tmp_path: Path) -> None:
    assert SAMPLE_REGISTRY == SAMPLE
    fleet = Fleet.generate(24, 2026)
    records = registry_for(fleet)
    assert records[:20] == load_registry(SAMPLE)
    assert records[20:] == fleet.registry_records()[20:]  # units the file does not describe: bare
    other = Fleet.generate(4, 7)
    assert registry_for(other) == other.registry_records()  # another seed is another fleet
    with pytest.raises(RegistryError, match="no such file"):
        registry_for(fleet, tmp_path / "missing.yaml")


# -- problems: each names file:line: field ---------------------------------------------------------


def test_wrong_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("register_max: 1000000", "register_max: lots")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:12: units[0].meters[0].register_max: "
        "Input should be a valid number, unable to parse string as a number"
    ]


def test_negative_register_max(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("register_max: 1000000", "register_max: -5")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:12: units[0].meters[0].register_max: Input should be greater than 0"
    ]


def test_unknown_energy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("energy: electricity", "energy: electrcity")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:9: units[0].meters[0].energy: unknown energy 'electrcity': not in the energy-type table "
        "(energy/data/energy_types.csv) (did you mean 'electricity'?)"
    ]


def test_uom_of_the_wrong_dimension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("uom: kWh", "uom: t")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:11: units[0].meters[0].uom: uom 't' does not fit electricity (accounted in kWh): "
        "'t' is a unit of mass, 'kWh' one of energy"
    ]


def test_unknown_uom_and_rate_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("uom: kWh", "uom: furlongs")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:11: units[0].meters[0].uom: uom 'furlongs' does not fit electricity (accounted in kWh): "
        "unit 'furlongs' is not known"
    ]
    rate = edit("kind: cumulative\n        uom: kWh", "kind: rate\n        uom: kW")
    (tmp_path / "rate.yaml").write_text(rate, encoding="utf-8")
    assert load_registry(tmp_path / "rate.yaml")[0].meters[0].uom == "kW"  # a rate in kW is fine
    wrong = edit("uom: kWh", "uom: kW")
    assert problems(tmp_path, monkeypatch, wrong, "wrong.yaml") == [
        "wrong.yaml:11: units[0].meters[0].uom: uom 'kW' does not fit electricity (accounted in kWh): "
        "a cumulative meter reports a quantity (e.g. kWh), 'kW' is a rate"
    ]


def test_duplicate_unit_across_files_names_both_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    reg = tmp_path / "reg"
    reg.mkdir()
    (reg / "a.yaml").write_text(UNIT, encoding="utf-8")
    (reg / "b.yaml").write_text("# second file\n" + UNIT, encoding="utf-8")
    with pytest.raises(RegistryError) as caught:
        load_registry(Path("reg"))
    assert [str(p) for p in caught.value.problems] == [
        "reg/b.yaml:3: units[0].unit_id: duplicate unit_id 'U1': also defined at reg/a.yaml:2"
    ]
    assert caught.value.problems[0] == Problem(
        "reg/b.yaml", 3, "units[0].unit_id", caught.value.problems[0].message
    )


def test_duplicate_meter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("meter_id: NG01", "meter_id: EL01")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:13: units[0].meters[1].meter_id: duplicate meter_id 'EL01' (first at line 8)"
    ]


def test_product_naming_an_unknown_meter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("meters: [EL01]", "meters: [EL01, EL09]")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:15: units[0].products[0].meters[1]: unknown meter 'EL09': not among this unit's meters"
    ]


def test_bad_grid_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("grid_region: 华东", "grid_region: 江苏")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:5: units[0].grid_region: unknown grid region '江苏': "
        "expected one of 华北, 东北, 华东, 华中, 西北, 南方, 西南"
    ]


def test_decline_without_base_year(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit(", base_year: 2025}", "}")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:17: units[0].targets[0].energy_intensity_decline_pct: a decline target needs base_year"
    ]


def test_duplicate_year_and_a_year_that_sets_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = UNIT + "      - {year: 2026}\n"
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:18: units[0].targets[1].year: second targets for 2026 (first at line 17)",
        "units.yaml:18: units[0].targets[1]: targets for 2026 set nothing: give at least one of "
        "energy_cap_tce, energy_intensity_target, energy_intensity_decline_pct, co2_cap_t, "
        "co2_intensity_target, co2_intensity_decline_pct",
    ]


def test_missing_field_points_at_the_enclosing_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("    name: 测试钢铁\n", "")
    assert problems(tmp_path, monkeypatch, text) == ["units.yaml:2: units[0].name: Field required"]


def test_unknown_field_with_a_suggestion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = edit("register_max: 1000000", "registr_max: 1000000")
    assert problems(tmp_path, monkeypatch, text) == [
        "units.yaml:12: units[0].meters[0].registr_max: unknown field (did you mean 'register_max'?)"
    ]


def test_not_yaml_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems(tmp_path, monkeypatch, "units:\n  - {unit_id: U1, name: [broken\n") == [
        "units.yaml:3: not valid YAML: while parsing a flow sequence, expected ',' or ']', "
        "but got '<stream end>'"
    ]
    assert problems(tmp_path, monkeypatch, "just some words\n", "words.yaml") == [
        "words.yaml:1: expected a list of units (or `units:` with that list), found text 'just some words'"
    ]
    assert problems(tmp_path, monkeypatch, "", "empty.yaml") == [
        "empty.yaml:1: empty file: expected a list of units (or `units:` with that list)"
    ]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(RegistryError, match=r"^binary.yaml: not a YAML file: not UTF-8 text"):
        load_registry(Path("binary.yaml"))


def test_not_a_registry_path(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no such file or directory"):
        load_registry(tmp_path / "nothing.yaml")
    with pytest.raises(RegistryError, match=r"no \*\.yaml or \*\.yml files"):
        load_registry(tmp_path)


def test_several_errors_are_reported_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    reg = tmp_path / "reg"
    reg.mkdir()
    first = edit("grid_region: 华东", "grid_region: 东海").replace("register_max: 1000000", "register_max: 0")
    (reg / "1.yaml").write_text(first, encoding="utf-8")
    second = (
        UNIT.replace("U1", "U2")
        .replace("energy: electricity", "energy: coal")
        .replace("kind: cumulative", "kind: total")
    )
    (reg / "2.yaml").write_text(second + "  - unit_id: U3\n    industry: Steel\n", encoding="utf-8")
    (reg / "3.yaml").write_text("{units: [}", encoding="utf-8")
    with pytest.raises(RegistryError) as caught:
        load_registry(Path("reg"))
    assert [str(p) for p in caught.value.problems] == [
        "reg/1.yaml:5: units[0].grid_region: unknown grid region '东海': "
        "expected one of 华北, 东北, 华东, 华中, 西北, 南方, 西南",
        "reg/1.yaml:12: units[0].meters[0].register_max: Input should be greater than 0",
        "reg/2.yaml:9: units[0].meters[0].energy: unknown energy 'coal': not in the energy-type table "
        "(energy/data/energy_types.csv) (did you mean 'raw_coal'?)",
        "reg/2.yaml:10: units[0].meters[0].kind: Input should be 'cumulative', 'interval' or 'rate'",
        "reg/2.yaml:13: units[0].meters[1].kind: Input should be 'cumulative', 'interval' or 'rate'",
        "reg/2.yaml:18: units[1].name: Field required",
        "reg/2.yaml:18: units[1].region: Field required",
        "reg/2.yaml:18: units[1].grid_region: Field required",
        "reg/2.yaml:19: units[1].industry: String should match pattern '^[a-z][a-z0-9_]*$'",
        "reg/3.yaml:1: not valid YAML: while parsing a flow node, expected the node content, but found '}'",
    ]


# -- the command line ----------------------------------------------------------------------------


def test_cli_check_the_sample() -> None:
    result = CliRunner().invoke(app, ["registry", "check", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "20 units, 135 meters, 10 products, target years 2025, 2026: OK" in result.stdout
    assert "sim-chemicals-001" in result.stdout and "7 (1 excl.)" in result.stdout
    assert result.stderr == ""


def test_cli_check_reports_every_problem_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = edit("register_max: 1000000", "register_max: -1").replace("grid_region: 华东", "grid_region: x")
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["registry", "check", "bad.yaml"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "bad.yaml:5: units[0].grid_region: unknown grid region 'x': expected one of 华北, 东北, 华东, 华中, "
        "西北, 南方, 西南",
        "bad.yaml:12: units[0].meters[0].register_max: Input should be greater than 0",
        "energymon registry check: 2 problems in bad.yaml",
    ]
    assert result.stdout == ""


def test_cli_load_refuses_an_invalid_registry_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENERGYMON_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached
    (tmp_path / "bad.yaml").write_text("- 1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["registry", "load", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2
    assert "units[0]: Input should be a valid dictionary" in result.stderr


def test_cli_show(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["registry", "show", "sim-cement-002", "--path", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert '"unit_id": "sim-cement-002"' in result.stdout and '"name": "水泥熟料"' in result.stdout
    missing = CliRunner().invoke(app, ["registry", "show", "nope", "--path", str(SAMPLE)])
    assert missing.exit_code == 1 and "no unit 'nope'" in missing.stderr


CONTACTS = """\
    contacts:
      - {name: 能源岗, channel: mail, recipient: energy@u1.example}
      - {name: 厂区值班群, channel: plant-dingtalk, min_severity: red}
"""
ROUTING = "channels:\n  mail: {kind: email, options: {host: smtp.example.cn, sender: a@example.cn}}\n"


def test_contacts_must_name_a_channel_of_the_routing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "units.yaml").write_text(UNIT + CONTACTS, encoding="utf-8")
    assert len(load_registry(Path("units.yaml"))[0].contacts) == 2  # without channels: not checked
    with pytest.raises(RegistryError) as caught:
        load_registry(Path("units.yaml"), channels=["mail"])
    assert [str(p) for p in caught.value.problems] == [
        "units.yaml:20: units[0].contacts[1].channel: unit 'U1', contact '厂区值班群': unknown channel "
        "'plant-dingtalk': not in the routing file (channels: mail)"
    ]


def test_cli_check_uses_the_routing_file_of_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "units.yaml").write_text(UNIT + CONTACTS, encoding="utf-8")
    (tmp_path / "routing.yaml").write_text(ROUTING, encoding="utf-8")
    unchecked = CliRunner().invoke(app, ["registry", "check", "units.yaml"])
    assert unchecked.exit_code == 0 and "2 contacts: channels not checked" in unchecked.stdout
    monkeypatch.setenv("ENERGYMON_ALERTS__ROUTING_FILE", "routing.yaml")
    result = CliRunner().invoke(app, ["registry", "check", "units.yaml"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "units.yaml:20: units[0].contacts[1].channel: unit 'U1', contact '厂区值班群': unknown channel "
        "'plant-dingtalk': not in the routing file (channels: mail)",
        "energymon registry check: 1 problem in units.yaml",
    ]
    (tmp_path / "routing.yaml").write_text(ROUTING + "  plant-dingtalk: {kind: log}\n", encoding="utf-8")
    fixed = CliRunner().invoke(app, ["registry", "check", "units.yaml"])
    assert fixed.exit_code == 0, fixed.output
    assert "2 contacts: channels checked against routing.yaml" in fixed.stdout


def test_cli_check_reports_a_broken_routing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "units.yaml").write_text(UNIT, encoding="utf-8")
    (tmp_path / "routing.yaml").write_text("channels:\n  mail: {kind: email, oops: 1}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["registry", "check", "units.yaml", "--routing", "routing.yaml"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "energymon registry check: 1 problem in routing.yaml"
    assert "channels.mail.oops" in result.stderr
