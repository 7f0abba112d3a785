"""Hypothesis strategies for bad input at every door, each case with what must become of it.

A case is built from a good message by one mutation whose rule is known beforehand (the expected
rule, field and check are written here, not asked of the code under test):

* **whole message** (:func:`bad_messages`): not JSON (cut short, NaN/Infinity tokens, numbers beyond a
  double, BOM, invalid UTF-8, lone surrogate escapes, nesting deeper than 1,024, empty, garbage),
  JSON that is not an object, an envelope field missing, of the wrong type or out of its rules
  (ids empty, too long or with control/format characters, seq < 0, 0 or 10,001 readings),
  duplicated keys whose last one is bad, a deeply nested value;
* **one reading** among good siblings (:func:`bad_readings`): a field missing or of the wrong type,
  NaN and ±Infinity as strings, values beyond 10¹⁵, timestamps malformed, before 2000, from 2100 on
  or ahead of the receiving clock, ids with control or format characters (NUL, line breaks, bidi
  overrides, zero-width marks, BOM) or a backslash or space at an end, ids too long (up to 100,000
  characters), an interval start that is not before ts or more than 32 days before it, a meter swap
  without its old value, a reading that is not an object (up to 1,000 levels deep);
* **good but odd** siblings (:func:`good_readings`): ids in CJK, Hebrew and Arabic letters, with
  combining marks, emoji, private-use characters, inner spaces and backslashes — accepted.

All tests run derandomized and without an example database (:data:`PROFILE`), so CI sees the same
cases every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from collectors.sources.mqtt.config import JsonSubscription
from energy.schema import MAX_AHEAD_MS, MAX_SPAN_MS, MAX_VALUE, TS_MAX_MS, TS_MIN_MS


def profile(max_examples: int) -> settings:
    """Reproducible settings: derandomized, no database, no deadline."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


#: The receiving clock of every test (epoch ms): 2026-03-02T02:00:00Z.
NOW_MS = int(datetime(2026, 3, 2, 2, 0, tzinfo=UTC).timestamp() * 1000)
#: Good readings are stamped in the week before NOW_MS, on whole minutes.
GOOD_TS = st.integers(min_value=(NOW_MS - 7 * 86_400_000) // 60_000, max_value=NOW_MS // 60_000).map(
    lambda m: m * 60_000
)
UNIT_ID = "91320500MA1XXXXX0A"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Expect:
    """What must become of a bad case: refused by ``rule`` for ``field`` (None: as a whole) with a
    check among ``checks`` (empty: no check asked, e.g. ``not_json``)."""

    rule: str
    field: str | None
    checks: frozenset[str] = frozenset()


def expect(rule: str, where: str | None, *checks: str) -> Expect:
    return Expect(rule, where, frozenset(checks))


@dataclass
class Case:
    """One message: its bytes, the whole-message rejection expected (None: its envelope is good), and
    per reading None (good: accepted, ``meter_ids`` says which) or its Expect."""

    raw: bytes
    whole: Expect | None
    readings: list[Expect | None] = field(default_factory=list)
    meter_ids: list[str | None] = field(default_factory=list)

    @property
    def good_meter_ids(self) -> list[str]:
        return [m for m, e in zip(self.meter_ids, self.readings, strict=True) if e is None and m is not None]

    @property
    def bad_expectations(self) -> list[Expect]:
        return [e for e in self.readings if e is not None]


# --- text ----------------------------------------------------------------------------------------

#: Characters no identifier may hold anywhere: controls (NUL, line breaks, DEL, C1), format characters
#: (bidi overrides, zero-width marks, BOM, soft hyphen), line and paragraph separators.
FORBIDDEN = st.characters(categories=("Cc", "Cf", "Zl", "Zp"))
#: Characters an identifier may not start or end with (besides FORBIDDEN): white space, backslash.
BAD_EDGE = st.sampled_from([" ", "\u00a0", "\u3000", "\u2003", "\\", "\t", "\n"])
#: Any character an identifier may hold inside (spaces and backslashes included); unassigned code
#: points are left out (their category may differ between Python's and the regex engine's Unicode).
INNER = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Cn", "Zl", "Zp"))
#: What an identifier may start and end with.
EDGE = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Cn", "Zs", "Zl", "Zp"), exclude_characters="\\")
#: Odd but valid: CJK, Hebrew, Arabic, combining marks, emoji, private use, inner space and backslash.
ODD = st.sampled_from(
    [
        "高炉1#电表",
        "燃气 总表",
        "מונה-5",
        "عداد٣",
        "e\u0301",
        "Å\u030a",
        "😀⚡",
        "\ue000PUA",
        "a\\b",
        "x y",
        "Ⅻ",
    ]
)


@cache
def good_id(max_size: int) -> st.SearchStrategy[str]:
    """A valid identifier of at most ``max_size`` characters."""
    inner = st.text(INNER, max_size=max(0, min(max_size - 2, 6)))
    built = st.builds(lambda a, b, c: a + b + c, EDGE, inner, EDGE) | EDGE
    return (ODD | built).filter(lambda s: len(s) <= max_size)


@cache
def bad_text(max_size: int) -> st.SearchStrategy[str]:
    """An identifier (at most ``max_size`` characters) that breaks the text rule: a forbidden
    character inside, or a bad one at either end."""
    core = st.text(EDGE, min_size=1, max_size=max(1, min(max_size - 2, 8)))
    inside = st.builds(
        lambda c, at, bad: c[: at % (len(c) + 1)] + bad + c[at % (len(c) + 1) :],
        core,
        st.integers(0, 8),
        FORBIDDEN,
    )
    start = st.builds(lambda c, bad: bad + c, core, BAD_EDGE | FORBIDDEN)
    end = st.builds(lambda c, bad: c + bad, core, BAD_EDGE | FORBIDDEN)
    return inside | start | end


# --- JSON values ------------------------------------------------------------------------------------

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what JSON numbers decode to as integers
NOT_TEXT = st.one_of(
    st.none(), st.booleans(), INT64, st.floats(allow_nan=False, allow_infinity=False),
    st.lists(json_scalar, max_size=2), st.dictionaries(st.text(max_size=3), json_scalar, max_size=2),
)  # fmt: skip
NOT_NUMBER = st.one_of(
    st.sampled_from(["12.5", "NaN", "nan", "Infinity", "-Infinity", "inf", "-inf", "1e400", "", "1,5", "０"]),
    st.none(), st.booleans(), st.text(max_size=6),
    st.lists(INT64, max_size=2), st.dictionaries(st.text(max_size=3), json_scalar, max_size=2),
)  # fmt: skip
ABSURD = st.one_of(
    st.floats(min_value=MAX_VALUE * (1 + 1e-12), max_value=1.7e308),
    st.floats(min_value=-1.7e308, max_value=-MAX_VALUE * (1 + 1e-12)),
    st.integers(min_value=int(MAX_VALUE) + 1, max_value=2**64 - 1),
    st.integers(min_value=-(2**63), max_value=-int(MAX_VALUE) - 1),
)


@dataclass(frozen=True)
class Deep:
    """A value nested ``depth`` lists deep, written into the JSON by :func:`dumps` (the encoder stops at
    255 levels; the decoder takes 1,024)."""

    depth: int

    @property
    def placeholder(self) -> str:
        return f"@@deep-{self.depth}@@"


def deep(depth: int) -> Deep:
    return Deep(depth)


def _placeholders(value: Any, found: list[Deep]) -> Any:
    if isinstance(value, Deep):
        found.append(value)
        return value.placeholder
    if isinstance(value, dict):
        return {k: _placeholders(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v, found) for v in value]
    return value


def dumps(doc: Any) -> bytes:
    """``doc`` as JSON, with each :class:`Deep` written out as nested lists."""
    found: list[Deep] = []
    raw = orjson.dumps(_placeholders(doc, found))
    for d in found:
        raw = raw.replace(f'"{d.placeholder}"'.encode(), b"[" * d.depth + b"1" + b"]" * d.depth, 1)
    return raw


def iso(ms: int, offset_h: int = 8) -> str:
    """``ms`` as ISO-8601 in UTC+``offset_h``."""
    from datetime import timedelta, timezone

    return datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=offset_h))).isoformat()


# --- readings ---------------------------------------------------------------------------------------

KINDS = ("cumulative", "interval", "rate")


GOOD_ENERGY = st.sampled_from(["electricity", "natural_gas", "raw_coal", "steam", "电力", "ⓔ-x"])
GOOD_UOM = st.sampled_from(["kWh", "MWh", "m³", "Nm³", "t", "GJ", "度", "立方米"])
GOOD_VALUE = st.floats(min_value=0, max_value=1e9) | st.integers(min_value=0, max_value=10**9)
QUALITY = st.sampled_from([None, "good", "estimated", "manual"])
SPAN = st.integers(min_value=1, max_value=MAX_SPAN_MS)
TS_FORMS = st.sampled_from(["ms", "iso", "utc", "float"])
KIND = st.sampled_from(KINDS)


def _ts_form(ts: int, form: str) -> Any:
    return {"ms": ts, "iso": iso(ts), "utc": iso(ts, 0).replace("+00:00", "Z"), "float": float(ts)}[form]


@st.composite
def good_reading(draw: st.DrawFn) -> dict[str, Any]:
    """A reading the schema takes (energy and uom not checked against the tables here)."""
    ts = draw(GOOD_TS)
    reading: dict[str, Any] = {
        "meter_id": draw(good_id(128)),
        "energy": draw(GOOD_ENERGY),
        "kind": draw(KIND),
        "value": draw(GOOD_VALUE),
        "uom": draw(GOOD_UOM),
        "ts": _ts_form(ts, draw(TS_FORMS)),
    }
    quality = draw(QUALITY)
    if quality is not None:
        reading["quality"] = quality
    if reading["kind"] == "interval" and draw(st.booleans()):
        reading["start"] = ts - draw(SPAN)
    return reading


TS_TOO_EARLY = st.one_of(
    st.integers(min_value=-(2**63), max_value=TS_MIN_MS - 1),
    st.integers(min_value=1_000_000_000, max_value=2_000_000_000),  # epoch seconds sent as ms
    st.sampled_from(["1999-12-31T23:59:59Z", "1970-01-01T00:00:00+08:00", "0001-01-01T00:00:00+14:00"]),
)
TS_TOO_LATE = st.one_of(
    st.integers(min_value=TS_MAX_MS, max_value=2**64 - 1),
    st.integers(min_value=10**15, max_value=2 * 10**15),  # epoch microseconds sent as ms
    st.sampled_from(["2100-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "2150-06-01T00:00:00+08:00"]),
    st.floats(min_value=float(TS_MAX_MS), max_value=1e300).map(float.__ceil__).map(float),
)
TS_MALFORMED = st.one_of(
    st.text(st.characters(exclude_categories=("Nd", "Cs")), max_size=20),  # no digit: never ISO-8601
    st.sampled_from(
        ["2026-03-01T08:00:00", "2026-03-01 08:00", "2026-13-45T00:00:00Z", "2026-03-01T25:00:00+08:00",
         "1767226500000", "yesterday", "now", "2026/03/01 08:00+08:00", "٢٠٢٦-٠٣-٠١T00:00:00Z"]
    ),
    st.floats(min_value=TS_MIN_MS, max_value=TS_MAX_MS).filter(lambda f: not f.is_integer()),
    st.none(), st.booleans(), st.lists(INT64, max_size=2), st.dictionaries(st.text(max_size=2), INT64),
)  # fmt: skip
TS_AHEAD = st.integers(min_value=NOW_MS + MAX_AHEAD_MS + 1, max_value=TS_MAX_MS - 1)

#: Fields and their longest text.
TEXT_FIELDS = {"meter_id": 128, "energy": 64, "uom": 16}
REQUIRED = ("meter_id", "energy", "kind", "value", "uom", "ts")

# The strategies bad_reading draws from, built once (a strategy built per draw costs more than the
# draw, a filter's lambda most).
_HOW_ANY = st.integers(min_value=0, max_value=18)
_HOW_NOT_AHEAD = _HOW_ANY.filter(lambda h: h != 7)
_TEXT_FIELD = st.sampled_from(sorted(TEXT_FIELDS))
_REQUIRED = st.sampled_from(REQUIRED)
_BAD_KIND = st.one_of(st.text(max_size=10).filter(lambda k: k not in KINDS), NOT_TEXT)
_LONGER = st.sampled_from([1, 50, 5_000])
_START_HOW = st.integers(min_value=0, max_value=2)
_WITHIN_A_DAY = st.integers(min_value=0, max_value=DAY_MS)
_YEARS = st.integers(min_value=1, max_value=400 * DAY_MS)
_START_MALFORMED = TS_MALFORMED.filter(lambda v: v is not None)
_OLD_VALUE = st.floats(min_value=0, max_value=1e6)
_BAD_EVENT = st.sampled_from(["reset", "swap", "", "METER_SWAP"]) | st.integers(-(2**63), 2**63)
_BAD_QUALITY = st.sampled_from(["bad", "", "GOOD", "ok"]) | st.integers(-(2**63), 2**63) | st.none()
_SOME_NOT_NUMBER = NOT_NUMBER.filter(lambda v: v is not None)
_NOT_OBJECT = st.one_of(json_scalar, st.lists(json_scalar, max_size=3), st.integers(1, 1000).map(Deep))
_NON_FINITE_TEXT = st.sampled_from(["NaN", "Infinity", "-Infinity"])


@st.composite
def bad_reading(draw: st.DrawFn, ahead: bool = True) -> tuple[Any, Expect]:
    """A reading with one defect, and how it must be refused (rule ``bad_reading``); ``ahead``: also
    readings stamped ahead of :data:`NOW_MS` (for a receiver whose clock is NOW_MS)."""
    r = dict(draw(GOOD_READING))
    r.pop("start", None)
    how = draw(_HOW_ANY if ahead else _HOW_NOT_AHEAD)
    if how == 0:
        name = draw(_REQUIRED)
        del r[name]
        return r, expect("bad_reading", name, "missing")
    if how == 1:
        name = draw(st.sampled_from(sorted(TEXT_FIELDS)))
        r[name] = draw(NOT_TEXT)
        return r, expect("bad_reading", name, "wrong_type")
    if how == 2:
        r["value"] = draw(NOT_NUMBER)
        return r, expect("bad_reading", "value", "wrong_type")
    if how == 3:
        r["value"] = draw(ABSURD)
        return r, expect("bad_reading", "value", "out_of_range")
    if how == 4:
        r["kind"] = draw(_BAD_KIND)
        return r, expect("bad_reading", "kind", "not_allowed")
    if how == 5:
        r["ts"] = draw(TS_TOO_EARLY | TS_TOO_LATE)
        return r, expect("bad_reading", "ts", "ts_out_of_range")
    if how == 6:
        r["ts"] = draw(TS_MALFORMED)
        return r, expect("bad_reading", "ts", "bad_ts")
    if how == 7:
        ahead_ms = draw(TS_AHEAD)
        r["ts"] = draw(st.sampled_from([ahead_ms, iso(ahead_ms)]))
        return r, expect("bad_reading", "ts", "ts_in_future")
    if how == 8:
        name = draw(st.sampled_from(sorted(TEXT_FIELDS)))
        r[name] = draw(bad_text(TEXT_FIELDS[name]))
        return r, expect("bad_reading", name, "bad_text")
    if how == 9:
        name = draw(st.sampled_from(sorted(TEXT_FIELDS)))
        longest = TEXT_FIELDS[name]
        r[name] = "x" * (longest + draw(_LONGER))
        return r, expect("bad_reading", name, "too_long")
    if how == 10:
        name = draw(st.sampled_from(sorted(TEXT_FIELDS)))
        r[name] = ""
        return r, expect("bad_reading", name, "empty")
    if how == 11:  # start on a reading that is not an interval, or not before ts, or too long before
        ts = draw(GOOD_TS)
        r["ts"] = ts
        which = draw(_START_HOW)
        if which == 0:
            r["kind"] = draw(st.sampled_from(["cumulative", "rate"]))
            r["start"] = ts - 1 - draw(_WITHIN_A_DAY)
        else:
            r["kind"] = "interval"
            r["start"] = ts + draw(_WITHIN_A_DAY) if which == 1 else ts - MAX_SPAN_MS - draw(_YEARS)
            r["start"] = max(TS_MIN_MS, r["start"])
        return r, expect("bad_reading", None, "bad_start")
    if how == 12:
        r["kind"] = "interval"
        r["start"] = draw(_START_MALFORMED)
        return r, expect("bad_reading", "start", "bad_ts")
    if how == 13:
        if draw(st.booleans()):
            r["event"] = "meter_swap"
        else:
            r["old_value"] = draw(_OLD_VALUE)
        return r, expect("bad_reading", None, "swap_fields")
    if how == 14:
        r["event"] = draw(_BAD_EVENT)
        return r, expect("bad_reading", "event", "not_allowed")
    if how == 15:
        r["quality"] = draw(_BAD_QUALITY)
        return r, expect("bad_reading", "quality", "not_allowed")
    if how == 16:
        r["event"], r["old_value"] = "meter_swap", draw(_SOME_NOT_NUMBER)
        return r, expect("bad_reading", "old_value", "wrong_type")
    if how == 17:  # not an object at all, up to 1,000 levels deep
        item = draw(_NOT_OBJECT)
        return item, expect("bad_reading", None, "not_object")
    r["value"] = draw(_NON_FINITE_TEXT)  # non-finite as strings
    return r, expect("bad_reading", "value", "wrong_type")


def _pool() -> list[dict[str, Any]]:
    """Good readings written out (drawing one costs a single choice): odd ids, every kind and ts form."""
    ids = [
        "E1",
        "高炉1#电表",
        "燃气 总表",
        "מונה-5",
        "عداد٣",
        "e\u0301",
        "😀⚡",
        "\ue000PUA",
        "a\\b",
        "M" * 128,
    ]
    pairs = [
        ("electricity", "kWh"),
        ("natural_gas", "m³"),
        ("raw_coal", "t"),
        ("steam", "GJ"),
        ("电力", "度"),
    ]
    pool = []
    for i, meter_id in enumerate(ids):
        for j, (energy, uom) in enumerate(pairs):
            ts = NOW_MS - (i * 7 + j) * 3_600_000
            form = ["ms", "iso", "utc", "float"][(i + j) % 4]
            reading = {
                "meter_id": meter_id,
                "energy": energy,
                "kind": KINDS[(i + j) % 3],
                "value": i * 10.5 + j,
                "uom": uom,
                "ts": _ts_form(ts, form),
            }
            if reading["kind"] == "interval" and i % 2:
                reading["start"] = ts - (i + 1) * 900_000
            pool.append(reading)
    return pool


GOOD_POOL = _pool()
#: A good reading: mostly one of GOOD_POOL, one in four drawn field by field.
_POOLED = st.sampled_from(GOOD_POOL)
GOOD_READING = st.one_of(_POOLED, _POOLED, _POOLED, good_reading())


def good_readings(max_size: int = 4) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(GOOD_READING.map(dict), max_size=max_size)


# --- messages ---------------------------------------------------------------------------------------


def envelope(readings: list[Any], **fields: Any) -> dict[str, Any]:
    return {"v": 1, "unit_id": UNIT_ID, "source": "site-7", "seq": 42, "readings": readings, **fields}


@st.composite
def messages_with_bad_readings(draw: st.DrawFn) -> Case:
    """A good envelope with one to three bad readings among zero to four good ones (good ones with
    distinct meter ids, so that which were accepted can be told)."""
    goods = draw(good_readings())
    for i, g in enumerate(goods):
        g["meter_id"] = f"{g['meter_id'][:100]}#{i}"
    bads = draw(st.lists(bad_reading(), min_size=1, max_size=3))
    slots: list[tuple[Any, Expect | None]] = [(g, None) for g in goods] + list(bads)
    order = draw(st.permutations(range(len(slots))))
    items = [slots[i] for i in order]
    raw = dumps(envelope([item for item, _ in items]))
    return Case(
        raw,
        None,
        [e for _, e in items],
        [item.get("meter_id") if e is None else None for item, e in items],
    )


def _corrupt(good: bytes, how: int, draw: st.DrawFn) -> bytes:
    """``good`` (a message's JSON) made into something that is not JSON."""
    if how == 0:  # cut short
        return good[: draw(st.integers(min_value=0, max_value=len(good) - 1))]
    if how == 1:  # NaN / Infinity tokens, a number beyond a double
        token = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"nan"]))
        return good.replace(b'"seq":42', b'"seq":' + token)
    if how == 2:  # a BOM, invalid UTF-8, lone surrogate escapes
        bad = draw(
            st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\\ud800", b"\\udfff", b"\x80abc"])
        )
        if bad.startswith(b"\\u"):
            return good.replace(b'"site-7"', b'"site-7' + bad + b'"')
        return good.replace(b"site-7", b"site-" + bad) if draw(st.booleans()) else b"\xef\xbb\xbf" + good
    if how == 3:  # nested deeper than the decoder's 1,024 levels
        depth = draw(st.integers(min_value=1100, max_value=5000))
        return good.replace(b'"seq":42', b'"seq":' + b"[" * depth + b"1" + b"]" * depth)
    if how == 4:  # not JSON syntax at all
        return draw(
            st.sampled_from(
                [b"", b" ", b"readings=1;seq=2", b"{'v': 1}", b'{"v":1,}', b"<xml/>", b"\x00\x01"]
            )
            | st.binary(max_size=40).map(lambda b: b"\x00" + b)
        )
    return good[:-1] + b',"x":' + b"}"  # a key without its value


_BAD_V = st.one_of(st.sampled_from([True, 1.0, "1", "v1", None, [1]]), INT64.filter(lambda v: v != 1))
_BAD_SEQ = st.one_of(st.sampled_from(["42", 1.5, 42.0, True, None, [42]]), st.text(max_size=4))
_NOT_A_LIST = st.one_of(
    st.dictionaries(st.text(max_size=3), json_scalar, max_size=2), json_scalar.filter(lambda v: v is not None)
)
_NOT_A_DICT = st.one_of(json_scalar, st.lists(json_value, max_size=3), st.just([1, 2]))


@st.composite
def bad_messages(draw: st.DrawFn) -> Case:
    """A message refused whole, with the rule, field and check it must be refused by."""
    readings = [dict(draw(st.sampled_from(GOOD_POOL)))]
    how = draw(st.integers(min_value=0, max_value=11))
    if how == 0:
        good = dumps(envelope(readings))
        return Case(
            _corrupt(good, draw(st.integers(min_value=0, max_value=5)), draw), expect("not_json", None)
        )
    if how == 1:
        doc: Any = draw(_NOT_A_DICT)
        return Case(dumps(doc), expect("bad_envelope", None, "not_object"))
    env = envelope(readings)
    if how == 2:
        name = draw(st.sampled_from(["v", "unit_id", "source", "seq", "readings"]))
        del env[name]
        return Case(dumps(env), expect("bad_envelope", name, "missing"))
    if how == 3:
        name = draw(st.sampled_from(["unit_id", "source"]))
        env[name] = draw(NOT_TEXT)
        return Case(dumps(env), expect("bad_envelope", name, "wrong_type"))
    if how == 4:
        env["seq"] = draw(_BAD_SEQ)
        return Case(dumps(env), expect("bad_envelope", "seq", "wrong_type"))
    if how == 5:
        env["v"] = draw(_BAD_V)
        return Case(dumps(env), expect("bad_envelope", "v", "wrong_type", "not_allowed", "out_of_range"))
    if how == 6:
        env["seq"] = draw(st.integers(min_value=-(2**63), max_value=-1))
        return Case(dumps(env), expect("bad_envelope", "seq", "out_of_range"))
    if how == 7:
        name, longest = draw(st.sampled_from([("unit_id", 64), ("source", 128)]))
        which = draw(st.integers(min_value=0, max_value=2))
        value, check = [
            ("", "empty"),
            ("U" * draw(st.sampled_from([longest + 1, 1_000, 10_000])), "too_long"),
            (draw(bad_text(longest)), "bad_text"),
        ][which]
        env[name] = value
        return Case(dumps(env), expect("bad_envelope", name, check))
    if how == 8:  # (10,001 readings: tests/property/test_bad_input_readings.py, HUGE)
        env["readings"] = []
        return Case(dumps(env), expect("bad_envelope", "readings", "empty"))
    if how == 9:
        env["readings"] = draw(_NOT_A_LIST)
        return Case(dumps(env), expect("bad_envelope", "readings", "wrong_type"))
    if how == 10:  # a key twice, the last one bad: the last one counts
        good = dumps(env)
        dup, rule_field, check = draw(
            st.sampled_from([(b'"seq":-1', "seq", "out_of_range"), (b'"v":2', "v", "not_allowed"),
                             (b'"unit_id":""', "unit_id", "empty"), (b'"readings":[]', "readings", "empty")])
        )  # fmt: skip
        return Case(good[:-1] + b"," + dup + b"}", expect("bad_envelope", rule_field, check))
    name = draw(st.sampled_from(["unit_id", "source", "seq", "v"]))  # a deeply nested value
    env[name] = deep(draw(st.integers(min_value=1, max_value=1000)))
    checks = ("wrong_type", "not_allowed") if name == "v" else ("wrong_type",)
    return Case(dumps(env), expect("bad_envelope", name, *checks))


def match(expected: list[Expect], rejections: list[Any]) -> list[tuple[Any, Expect]]:
    """Pair each rejection (anything with ``field`` and ``check``) with an expectation it meets, one
    to one (the parser reports bad readings in message order, those ahead of the clock last)."""
    assert len(rejections) == len(expected), (rejections, expected)
    remaining = list(expected)
    pairs = []
    for r in rejections:
        found = next((e for e in remaining if e.field == r.field and r.check in e.checks), None)
        assert found is not None, (r, remaining)
        remaining.remove(found)
        pairs.append((r, found))
    return pairs


def any_bad_message() -> st.SearchStrategy[Case]:
    """A message refused whole, or one with bad readings among good ones."""
    return st.one_of(bad_messages(), messages_with_bad_readings())


# --- through the kernel's ledger (streams.processor) --------------------------------------------------

#: (energy, uom) pairs the accounting tables take, for good interval readings.
ACCOUNTED = [("electricity", "kWh"), ("electricity", "度"), ("natural_gas", "m³"), ("raw_coal", "t")]
#: (energy, uom) pairs of another dimension (checked by hand against energy/data and energy/uom.py).
MISMATCHED = [("electricity", "t"), ("natural_gas", "kWh"), ("raw_coal", "kWh"), ("electricity", "m³")]


@st.composite
def ledger_good(draw: st.DrawFn, meter_id: str, ts: int) -> dict[str, Any]:
    """An interval reading of a known energy in its uom at ``ts``: one ``energy`` point."""
    energy, uom = draw(st.sampled_from(ACCOUNTED))
    value = draw(st.floats(min_value=0, max_value=1e4))
    return {"meter_id": meter_id, "energy": energy, "kind": "interval", "value": value, "uom": uom, "ts": ts}


@st.composite
def ledger_bad(draw: st.DrawFn, meter_id: str, ts: int) -> tuple[Any, Expect]:
    """A reading the schema takes but the ledger refuses (unknown energy or uom, a uom of another
    dimension, a negative value), or one the schema refuses (:func:`bad_reading`)."""
    r = draw(ledger_good(meter_id, ts))
    how = draw(st.integers(min_value=0, max_value=4))
    if how == 0:
        r["energy"] = "zz-" + draw(good_id(40))
        return r, expect("unknown_energy", None)
    if how == 1:
        r["uom"] = draw(st.sampled_from(["zz-furlong", "bananas", "kW·h·h", "英里", "m⁴"]))
        return r, expect("unknown_uom", None)
    if how == 2:
        r["energy"], r["uom"] = draw(st.sampled_from(MISMATCHED))
        return r, expect("uom_mismatch", None)
    if how == 3:
        r["value"] = -draw(st.floats(min_value=1e-9, max_value=MAX_VALUE))
        r["kind"] = draw(st.sampled_from(KINDS))
        if r["kind"] == "rate":
            r["energy"], r["uom"] = "electricity", "kW"
        return r, expect("negative_quantity", None)
    item, why = draw(bad_reading(ahead=False))  # the processor's clock is the machine's
    if isinstance(item, dict) and "meter_id" in item and why.field != "meter_id":
        item["meter_id"] = meter_id
    return item, why


@st.composite
def ledger_cases(draw: st.DrawFn) -> Case:
    """A scan: good interval readings (meters ``G0``…) and bad ones (``B0``…) in any order."""
    ts = draw(GOOD_TS)
    goods = [draw(ledger_good(f"G{i}", ts)) for i in range(draw(st.integers(min_value=0, max_value=4)))]
    bads = [draw(ledger_bad(f"B{i}", ts)) for i in range(draw(st.integers(min_value=1, max_value=3)))]
    slots: list[tuple[Any, Expect | None]] = [(g, None) for g in goods]
    slots += bads
    order = draw(st.permutations(range(len(slots))))
    items = [slots[i] for i in order]
    return Case(
        dumps(envelope([item for item, _ in items])),
        None,
        [e for _, e in items],
        [item["meter_id"] if e is None else None for item, e in items],
    )


# --- MQTT payloads (JSON format) -------------------------------------------------------------------------

JSON_FORMATS = ("epoch_ms", "epoch_s", "iso8601")


def json_subscription(ts_format: str | None) -> JsonSubscription:
    """Unit and meter from the topic ``meters/<unit>/<meter>/<format>``, value ``data.v``, time
    ``data.t`` in ``ts_format`` (None: no time in the payload, the collector's clock)."""
    doc: dict[str, Any] = {
        "topic": f"meters/+/+/{ts_format or 'clock'}", "format": "json", "unit_id": "{1}", "meter_id": "{2}",
        "energy": "electricity", "kind": "cumulative", "uom": "kWh", "value": "data.v",
    }  # fmt: skip
    if ts_format is not None:
        doc |= {"ts": "data.t", "ts_format": ts_format}
    return JsonSubscription.model_validate(doc)


def ts_in(ms: int, fmt: str) -> Any:
    return {"epoch_ms": ms, "epoch_s": ms / 1000, "iso8601": iso(ms)}[fmt]


@st.composite
def bad_json_payloads(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(topic, payload, rule) of a JSON-format payload with one defect."""
    fmt = draw(st.sampled_from(JSON_FORMATS))
    unit, meter = UNIT_ID, "EL01"
    data: dict[str, Any] = {"v": 1234.5, "t": ts_in(draw(GOOD_TS), fmt)}
    how = draw(st.integers(min_value=0, max_value=10))
    rule = "bad_reading"
    if how == 0:
        payload = draw(st.sampled_from([b"qty=12.5", b"", b"{", b"NaN", b'{"data":{"v":Infinity}}', b"\xff"]))
        return f"meters/{unit}/{meter}/{fmt}", payload, "not_json"
    if how == 1:
        del data[draw(st.sampled_from(["v", "t"]))]
        rule = "missing_field"
    elif how == 2:
        data["v"] = draw(NOT_NUMBER.filter(lambda v: not _is_number_text(v)))
        rule = "not_a_number"
    elif how == 3:
        data["v"] = draw(
            st.floats(min_value=MAX_VALUE * 1.0001, max_value=1.7e308) | st.just(str(MAX_VALUE * 10))
        )
    elif how == 4:
        data["t"] = (
            draw(TS_MALFORMED)
            if fmt == "iso8601"
            else draw(NOT_NUMBER.filter(lambda v: not _is_number_text(v)))
        )
        rule = "bad_ts"
    elif how == 5:  # out of 2000..2100, or beyond a double once in ms (the epoch_s regression: 1e306 s)
        ms = draw(
            st.integers(-62_000_000_000_000, TS_MIN_MS - 1) | st.integers(TS_MAX_MS, 250_000_000_000_000)
        )
        data["t"] = (
            draw(st.sampled_from([1e306, 1.7e308]))
            if fmt == "epoch_s" and draw(st.booleans())
            else ts_in(ms, fmt)
        )
        rule = "bad_ts"
    elif how == 6:
        data["t"] = ts_in(draw(st.integers(NOW_MS + MAX_AHEAD_MS + 1000, TS_MAX_MS - 1)), fmt)
    elif how == 7:
        unit = "U" * draw(st.integers(min_value=65, max_value=300))
        rule = "bad_topic_level"
    elif how == 8:
        meter = "M" * draw(st.integers(min_value=129, max_value=300))
        rule = "bad_topic_level"
    elif how == 9:  # a topic level with a character no id may hold (MQTT topics never hold NUL)
        text = draw(
            bad_text(64).filter(lambda t: "\x00" not in t and "/" not in t and "+" not in t and "#" not in t)
        )
        if draw(st.booleans()):
            unit = text
        else:
            meter = text
    else:
        data = {"value": data} if draw(st.booleans()) else draw(st.sampled_from([[], 5, "x", None]))
        rule = "missing_field"
    return f"meters/{unit}/{meter}/{fmt}", orjson.dumps({"data": data}), rule


def _is_number_text(v: Any) -> bool:
    """A string that holds a finite number (the JSON format takes "512.125" on purpose)."""
    if not isinstance(v, str):
        return False
    try:
        return float(v) == float(v) and abs(float(v)) != float("inf")
    except ValueError:
        return False
