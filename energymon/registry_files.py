"""Registry files: YAML descriptions of units, validated into :class:`~energy.registry.UnitInfo` records.

A registry is one YAML file or a directory of ``*.yaml`` / ``*.yml`` files (read in name order). Each
file holds a list of units, or a mapping whose only key is ``units:`` holding that list. A unit is
written with the field names of :class:`~energy.registry.UnitInfo` (meters, products, targets,
thresholds and coefficient overrides with those of their models)::

    units:
      - unit_id: 91320500MA1XXXXX0A
        name: 苏州某钢铁有限公司
        region: 江苏
        grid_region: 华东
        industry: steel
        meters:
          - {meter_id: EL01, energy: electricity, kind: cumulative, uom: kWh, register_max: 1.0e+9}
          - {meter_id: NG01, energy: natural_gas, kind: cumulative, uom: m³, excluded: feedstock}
        products:
          - {product_id: bf_iron, name: 高炉工序, uom: t, benchmark: 361, baseline: 435, meters: [EL01]}
        targets:
          - {year: 2026, energy_cap_tce: 120000, energy_intensity_decline_pct: 2.5, base_year: 2025}
        contacts:  # channels are named in the alert routing file (alerts/README.md)
          - {name: 能源管理岗, channel: email, recipient: energy@example.cn, min_severity: yellow}
          - {name: 厂区值班群, channel: plant-dingtalk, min_severity: red}

:func:`load_registry` reports every problem of every file at once, each as
``file:line: units[3].meters[1].register_max: Input should be greater than 0`` — the line of the
offending field (or of the nearest enclosing node when the field is missing). Besides the models'
own rules it checks what only the whole file can tell: unknown fields, duplicate unit ids (across
files), duplicate meter ids, products naming unknown meters, energy codes and units of measure the
accounting kernel does not know or that have the wrong dimension, grid regions, duplicate target
years, decline targets without a base year and targets that set nothing. Given the channel names of
the alert routing file, it also reports every contact naming a channel that is not among them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from energy.accounting import Accountant, AccountingError
from energy.registry import (
    GRID_REGIONS,
    CoefficientOverride,
    ContactInfo,
    MeterInfo,
    ProductInfo,
    UnitInfo,
    WarningThresholds,
    YearTargets,
)

__all__ = [
    "Problem",
    "RegistryError",
    "YamlFile",
    "field_name",
    "load_registry",
    "read_yaml",
    "registry_files",
]

#: A position in a file's data: ("units", 3, "meters", 1, "register_max").
Loc = tuple[str | int, ...]

#: Fields of a model that hold other models: name → (model, whether it is a list of them).
_NESTED: dict[type[BaseModel], dict[str, tuple[type[BaseModel], bool]]] = {
    UnitInfo: {
        "meters": (MeterInfo, True),
        "products": (ProductInfo, True),
        "targets": (YearTargets, True),
        "coefficient_overrides": (CoefficientOverride, True),
        "thresholds": (WarningThresholds, False),
        "contacts": (ContactInfo, True),
    },
}
_M = TypeVar("_M", bound=BaseModel)

#: The target fields of which a year must set at least one.
_TARGET_FIELDS = (
    "energy_cap_tce",
    "energy_intensity_target",
    "energy_intensity_decline_pct",
    "co2_cap_t",
    "co2_intensity_target",
    "co2_intensity_decline_pct",
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a registry file: where (file, 1-based line, field path) and what."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class RegistryError(ValueError):
    """A registry that cannot be used; ``problems`` lists every problem found, one per line of
    ``str(exc)``."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def field_name(loc: Loc) -> str:
    """``("units", 3, "meters", 1, "uom")`` → ``units[3].meters[1].uom``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def registry_files(path: Path) -> list[Path]:
    """The files of the registry at ``path``: the file itself, or a directory's ``*.yaml`` and
    ``*.yml`` files sorted by name. Raises :class:`RegistryError` when there are none."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise RegistryError(
                [Problem(str(path), None, None, "no *.yaml or *.yml files in this directory")]
            )
        return files
    if not path.exists():
        raise RegistryError([Problem(str(path), None, None, "no such file or directory")])
    return [path]


def load_registry(path: Path, channels: Collection[str] | None = None) -> list[UnitInfo]:
    """The units described by the registry file or directory at ``path``, in file order.

    ``channels``: the channel names of the alert routing file; when given, a contact naming another
    channel is a problem. Raises :class:`RegistryError` with every problem of every file (nothing is
    returned unless the whole registry is valid).
    """
    checker = _Checker(channels)
    for file in registry_files(path):
        checker.read_file(file)
    checker.problems.sort(key=lambda p: (checker.file_order[p.file], p.line or 0))
    if checker.problems:
        raise RegistryError(checker.problems)
    return checker.units


class YamlFile:
    """One file's data as plain Python values, with the 1-based line of every node by its position."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: dict[Loc, int] = {}
        self.problems: list[Problem] = []
        #: nodes :meth:`build` may still make (set by :func:`read_yaml`; bounds alias expansion)
        self.nodes_left = 0

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of the nearest enclosing node that has one."""
        for n in range(len(loc), -1, -1):
            line = self.lines.get(loc[:n])
            if line is not None:
                return line
        return None

    def problem(self, loc: Loc, message: str, line: int | None = None) -> None:
        self.problems.append(
            Problem(
                self.name, line if line is not None else self.line_of(loc), field_name(loc) or None, message
            )
        )

    def build(self, loader: yaml.SafeLoader, node: Node, loc: Loc, stack: frozenset[int]) -> Any:
        """Plain data for ``node`` (mappings → dict, sequences → list, scalars → their YAML type)."""
        self.nodes_left -= 1
        if self.nodes_left < 0:  # aliases of aliases (a "billion laughs" file) would never end
            raise yaml.MarkedYAMLError(
                problem="more nodes than the file has characters: aliases expand too far",
                problem_mark=node.start_mark,
            )
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if id(node) in stack:
            self.problem(loc, "recursive alias")
            return None
        inner = stack | {id(node)}
        if isinstance(node, MappingNode):
            loader.flatten_mapping(node)  # `<<: *anchor` merge keys
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                key = loader.construct_object(key_node) if isinstance(key_node, ScalarNode) else None
                if not isinstance(key, str):
                    self.problem(loc, f"field names must be text, not {key_node.value!r}", key_line)
                    continue
                if key in out:
                    self.problem(
                        (*loc, key), f"duplicate key (first at line {self.lines[(*loc, key)]})", key_line
                    )
                    continue
                self.lines[(*loc, key)] = key_line
                out[key] = self.build(loader, value_node, (*loc, key), inner)
            return out
        if isinstance(node, SequenceNode):
            return [self.build(loader, item, (*loc, i), inner) for i, item in enumerate(node.value)]
        return loader.construct_object(node)


def read_yaml(path: Path, f: YamlFile, expected: str) -> tuple[Any, bool]:
    """The plain data of the YAML file at ``path`` with every node's line recorded in ``f``, and
    whether it could be read; a problem (unreadable, empty: ``expected`` says what it should hold,
    not YAML) is recorded in ``f`` instead."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        f.problem((), f"not a YAML file: not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None, False
    except OSError as exc:
        f.problem((), f"cannot read: {exc.strerror or exc}")
        return None, False
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            f.problem((), f"empty file: expected {expected}", 1)
            return None, False
        f.nodes_left = 10_000 + len(text)
        return f.build(loader, node, (), frozenset()), True
    except RecursionError:
        f.problems.append(Problem(f.name, None, None, "not valid YAML here: nested too deeply"))
        return None, False
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}, {what}" if context else what
        f.problems.append(Problem(f.name, line, None, f"not valid YAML: {detail}"))
        return None, False
    finally:
        loader.dispose()


#: What a registry file holds (for the empty-file message).
_UNITS_EXPECTED = "a list of units (or `units:` with that list)"


class _Checker:
    """Reads files one after the other, collecting units and problems."""

    def __init__(self, channels: Collection[str] | None = None) -> None:
        self.channels = channels
        self.units: list[UnitInfo] = []
        self.problems: list[Problem] = []
        self.file_order: dict[str, int] = {}
        self._unit_places: dict[str, str] = {}  # unit_id → "file:line" of its first definition
        self._accountant = Accountant()

    # -- reading -------------------------------------------------------------------------------

    def read_file(self, path: Path) -> None:
        f = YamlFile(str(path))
        self.file_order.setdefault(f.name, len(self.file_order))
        try:
            data, ok = read_yaml(path, f, _UNITS_EXPECTED)
            if ok:
                for i, raw in enumerate(self._unit_list(data, f)):
                    self._unit(raw, ("units", i), f)
        finally:
            self.problems.extend(f.problems)

    def _unit_list(self, data: Any, f: YamlFile) -> list[Any]:
        if isinstance(data, dict):
            for key in data:
                if key != "units":
                    f.problem((key,), "unknown top-level key: a file holds a list of units or `units:`")
            if "units" not in data:
                f.problem((), "no `units:` list in this mapping")
                return []
            data = data["units"]
            if data is None:
                return []
        if not isinstance(data, list):
            loc: Loc = ("units",) if ("units",) in f.lines else ()
            f.problem(loc, f"expected a list of units (or `units:` with that list), found {_kind(data)}")
            return []
        f.lines.setdefault(("units",), f.lines.get((), 1))
        # a bare list's items sit at (i,): move them under ("units", i) like the mapping form
        for loc in [k for k in f.lines if k and isinstance(k[0], int)]:
            f.lines[("units", *loc)] = f.lines.pop(loc)
        return data

    # -- one unit ------------------------------------------------------------------------------

    def _unit(self, raw: Any, loc: Loc, f: YamlFile) -> None:
        if isinstance(raw, dict):
            self._unknown_fields(UnitInfo, raw, loc, f)
            unit_id = raw.get("unit_id")
            if isinstance(unit_id, str) and unit_id:
                here = f"{f.name}:{f.line_of((*loc, 'unit_id'))}"
                first = self._unit_places.get(unit_id)
                if first is not None:
                    f.problem((*loc, "unit_id"), f"duplicate unit_id {unit_id!r}: also defined at {first}")
                else:
                    self._unit_places[unit_id] = here
            self._cross_checks(raw, loc, f)
        try:
            info = UnitInfo.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                f.problem(loc + tuple(err["loc"]), err["msg"])
            return
        self.units.append(info)

    def _unknown_fields(self, model: type[BaseModel], raw: dict[str, Any], loc: Loc, f: YamlFile) -> None:
        fields = model.model_fields
        for key, value in raw.items():
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                f.problem((*loc, key), f"unknown field{hint}")
                continue
            nested = _NESTED.get(model, {}).get(key)
            if nested is None:
                continue
            sub, many = nested
            items = list(enumerate(value)) if many and isinstance(value, list) else []
            if not many and isinstance(value, dict):
                self._unknown_fields(sub, value, (*loc, key), f)
            for i, item in items:
                if isinstance(item, dict):
                    self._unknown_fields(sub, item, (*loc, key, i), f)

    def _cross_checks(self, raw: dict[str, Any], loc: Loc, f: YamlFile) -> None:
        """The rules one model cannot check alone, on every part that is valid by itself."""
        grid = raw.get("grid_region")
        if isinstance(grid, str) and grid and grid not in GRID_REGIONS:
            f.problem(
                (*loc, "grid_region"),
                f"unknown grid region {grid!r}: expected one of {', '.join(GRID_REGIONS)}",
            )

        # meters field by field, so that a meter with one bad field still has the others checked
        meter_lines: dict[str, int | None] = {}
        meters = raw.get("meters")
        for i, meter in enumerate(meters if isinstance(meters, list) else []):
            if not isinstance(meter, dict):
                continue
            mloc = (*loc, "meters", i)
            meter_id = meter.get("meter_id")
            if isinstance(meter_id, str) and meter_id in meter_lines:
                f.problem(
                    (*mloc, "meter_id"),
                    f"duplicate meter_id {meter_id!r} (first at line {meter_lines[meter_id]})",
                )
            elif isinstance(meter_id, str):
                meter_lines[meter_id] = f.line_of((*mloc, "meter_id"))
            self._check_meter(meter, mloc, f)

        for i, override in _valid_items(raw, "coefficient_overrides", CoefficientOverride):
            if not self._energy_known(override.energy):
                f.problem((*loc, "coefficient_overrides", i, "energy"), self._unknown_energy(override.energy))

        product_lines: dict[str, int | None] = {}
        for i, product in _valid_items(raw, "products", ProductInfo):
            ploc = (*loc, "products", i)
            if product.product_id in product_lines:
                f.problem(
                    (*ploc, "product_id"),
                    f"duplicate product_id {product.product_id!r} "
                    f"(first at line {product_lines[product.product_id]})",
                )
            else:
                product_lines[product.product_id] = f.line_of((*ploc, "product_id"))
            for k, meter_id in enumerate(product.meters):
                if meter_id not in meter_lines:
                    f.problem(
                        (*ploc, "meters", k), f"unknown meter {meter_id!r}: not among this unit's meters"
                    )
            if (
                product.benchmark is not None
                and product.baseline is not None
                and product.benchmark > product.baseline
            ):
                f.problem(
                    (*ploc, "benchmark"),
                    f"benchmark (标杆) {product.benchmark:g} is above baseline (基准) {product.baseline:g}: "
                    "the benchmark is the better, lower consumption",
                )

        self._check_contacts(raw, loc, f)

        year_lines: dict[int, int | None] = {}
        for i, target in _valid_items(raw, "targets", YearTargets):
            tloc = (*loc, "targets", i)
            if target.year in year_lines:
                f.problem(
                    (*tloc, "year"),
                    f"second targets for {target.year} (first at line {year_lines[target.year]})",
                )
            else:
                year_lines[target.year] = f.line_of((*tloc, "year"))
            for name in ("energy_intensity_decline_pct", "co2_intensity_decline_pct"):
                if getattr(target, name) is not None and target.base_year is None:
                    f.problem((*tloc, name), "a decline target needs base_year")
            if target.base_year is not None and target.base_year >= target.year:
                f.problem(
                    (*tloc, "base_year"), f"base_year {target.base_year} is not before year {target.year}"
                )
            if all(getattr(target, name) is None for name in _TARGET_FIELDS):
                f.problem(
                    tloc,
                    f"targets for {target.year} set nothing: "
                    f"give at least one of {', '.join(_TARGET_FIELDS)}",
                )

    def _check_contacts(self, raw: dict[str, Any], loc: Loc, f: YamlFile) -> None:
        """Each contact's channel is one of the routing file's (when its channels were given)."""
        if self.channels is None:
            return
        known = ", ".join(sorted(self.channels)) or "none"
        for i, contact in _valid_items(raw, "contacts", ContactInfo):
            if contact.channel not in self.channels:
                f.problem(
                    (*loc, "contacts", i, "channel"),
                    f"unit {raw.get('unit_id')!r}, contact {contact.name!r}: unknown channel "
                    f"{contact.channel!r}: not in the routing file (channels: {known})",
                )

    def _check_meter(self, meter: dict[str, Any], loc: Loc, f: YamlFile) -> None:
        """Energy code, uom and exclusion of one meter (raw data: each field only when it is usable)."""
        if meter.get("excluded") is not None and meter.get("role") == "sub":
            f.problem((*loc, "excluded"), "only a main meter can be excluded from the total")
        energy, uom, kind = meter.get("energy"), meter.get("uom"), meter.get("kind")
        if not isinstance(energy, str) or not energy:
            return
        if not self._energy_known(energy):
            f.problem((*loc, "energy"), self._unknown_energy(energy))
            return
        if not isinstance(uom, str) or not uom:
            return
        canonical = self._accountant.canonical_uom(energy)
        as_quantity = self._converts(self._accountant.quantity, energy, uom)
        as_rate = self._converts(self._accountant.rate_per_hour, energy, uom)
        if kind == "rate":
            fits, other, error = as_rate is None, as_quantity is None, as_rate
        elif kind in ("cumulative", "interval"):
            fits, other, error = as_quantity is None, as_rate is None, as_quantity
        else:  # no kind (or a wrong one, reported by the model): either may be meant
            fits, other, error = as_quantity is None or as_rate is None, False, as_quantity
        if fits:
            return
        if other and kind == "rate":
            detail = f"a rate meter reports per hour (e.g. {canonical}/h), {uom!r} is a quantity"
        elif other:
            detail = f"a {kind} meter reports a quantity (e.g. {canonical}), {uom!r} is a rate"
        else:
            detail = error.detail if error is not None else "cannot be converted"
        f.problem((*loc, "uom"), f"uom {uom!r} does not fit {energy} (accounted in {canonical}): {detail}")

    @staticmethod
    def _converts(
        convert: Callable[[str, float, str], float], energy: str, uom: str
    ) -> AccountingError | None:
        """None when ``convert`` takes ``uom`` for ``energy``, else its error."""
        try:
            convert(energy, 1.0, uom)
        except AccountingError as exc:
            return exc
        return None

    def _energy_known(self, energy: str) -> bool:
        try:
            self._accountant.energy_type(energy)
        except AccountingError:
            return False
        return True

    def _unknown_energy(self, energy: str) -> str:
        known = sorted(self._accountant.coefficients.energy_types())
        close = difflib.get_close_matches(energy, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown energy {energy!r}: not in the energy-type table (energy/data/energy_types.csv){hint}"


def _kind(value: Any) -> str:
    """What a YAML value is, for a message."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return "nothing" if value is None else type(value).__name__


def _valid_items(raw: dict[str, Any], key: str, model: type[_M]) -> Iterator[tuple[int, _M]]:
    """(index, model) for every item of the list ``raw[key]`` that is valid on its own."""
    items = raw.get(key)
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        try:
            yield i, model.model_validate(item)
        except ValidationError:
            continue
