"""Alert texts for warning levels (``energy.levels``), in Chinese and English.

The Alert model is unchanged: its ``message`` holds the text in the language asked for —
``zh`` (the default: the channels are Chinese), ``en``, or ``both``, which puts the English after
the Chinese separated by " / ". :func:`level_text` renders the text alone, so a channel can render
the other language from the same Alert fields.

Levels are named as the NDRC barometer names them: 一级预警 (red), 二级预警 (yellow), 三级 (green,
进展基本顺利). A raised alert's header is the level (【一级预警】), an updated one says the level
changed (【一级预警·级别调整】), a resolved one 【预警解除】.

Alert keys are ``unit_id|rule|indicator``: rule :data:`DUAL_CONTROL` for the four dual-control
indicators, :data:`PRODUCT_ENERGY` for a product (indicator: its ``product_id``).
"""

from __future__ import annotations

from typing import Literal

from energy.alert import Alert, AlertState
from energy.levels import Basis, Level
from energy.registry import ProductInfo

Lang = Literal["zh", "en", "both"]
DUAL_CONTROL = "dual_control"
PRODUCT_ENERGY = "product_energy"

_HEADER_ZH: dict[str, str] = {"red": "一级预警", "yellow": "二级预警", "green": "三级"}
_HEADER_EN: dict[str, str] = {"red": "Level 1 warning", "yellow": "Level 2 warning", "green": "Level 3"}
_SUBJECT: dict[str, tuple[str, str]] = {
    "energy_total": ("能耗总量", "energy use"),
    "co2_total": ("碳排放总量", "CO₂ emissions"),
    "energy_intensity": ("单位产值能耗", "energy use per 10,000 yuan of output"),
    "co2_intensity": ("单位产值碳排放", "CO₂ per 10,000 yuan of output"),
}


def _num(value: float, digits: int = 1) -> str:
    """``value`` with up to ``digits`` decimals, without trailing zeros (112.0 → "112")."""
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _header(level: Level, state: AlertState, lang: Literal["zh", "en"]) -> str:
    if lang == "zh":
        if state == "resolved":
            return "【预警解除】"
        return f"【{_HEADER_ZH[level]}·级别调整】" if state == "updated" else f"【{_HEADER_ZH[level]}】"
    if state == "resolved":
        return "[Warning cleared] "
    return f"[{_HEADER_EN[level]}, level changed] " if state == "updated" else f"[{_HEADER_EN[level]}] "


def _change(value: float, lang: Literal["zh", "en"]) -> str:
    if lang == "zh":
        return f"上升 {_num(value)}%" if value >= 0 else f"下降 {_num(-value)}%"
    return f"up {_num(value)}%" if value >= 0 else f"down {_num(-value)}%"


def _body(
    indicator: str,
    level: Level,
    unit_name: str,
    value: float,
    threshold: float,
    year: int,
    basis: Basis,
    lang: Literal["zh", "en"],
) -> str:
    zh_subject, en_subject = _SUBJECT[indicator]
    if indicator.endswith("_total"):
        if lang == "zh":
            lead = f"{unit_name} {year} 年{zh_subject}"
            if level == "red":
                return f"{lead}预计达到配额的 {_num(value)}%"
            if level == "yellow":
                return f"{lead}预计达到配额的 {_num(value)}%，超过预警线 {_num(threshold)}%"
            return f"{lead}回到进度以内（三级），预计达到配额的 {_num(value)}%"
        lead = f"{unit_name}: {year} {en_subject}"
        if level == "red":
            return f"{lead} projected at {_num(value)}% of its cap"
        if level == "yellow":
            return f"{lead} projected at {_num(value)}% of its cap, above the {_num(threshold)}% warning line"
        return f"{lead} back on track (level 3), projected at {_num(value)}% of its cap"
    if lang == "zh":
        against = "同比" if basis == "yoy" else "较基准年"
        lead = f"{unit_name} {year} 年{zh_subject}{against}{_change(value, 'zh')}"
        if level == "red":
            return lead
        verdict = "未达到" if level == "yellow" else "达到"
        return f"{lead}，{verdict}进度要求（{_change(threshold, 'zh')}）"
    against = "year on year" if basis == "yoy" else "against the base year"
    lead = f"{unit_name}: {year} {en_subject} {_change(value, 'en')} {against}"
    if level == "red":
        return lead
    verdict = "short of" if level == "yellow" else "meeting"
    required = f"{_num(-threshold)}% decline" if threshold < 0 else f"{_num(threshold)}% change"
    return f"{lead}, {verdict} the required {required}"


def level_text(
    unit_name: str,
    indicator: str,
    level: Level,
    state: AlertState,
    value: float,
    threshold: float,
    year: int,
    *,
    basis: Basis = "yoy",
    lang: Lang = "zh",
) -> str:
    """The text of a dual-control level alert; ``value`` and ``threshold`` as in
    ``Assessment.figures[level]`` (percent of the cap for totals, percent change for intensities)."""
    if indicator not in _SUBJECT:
        raise ValueError(f"indicator {indicator!r} is not one of {', '.join(_SUBJECT)}")
    zh = _header(level, state, "zh") + _body(indicator, level, unit_name, value, threshold, year, basis, "zh")
    en = _header(level, state, "en") + _body(indicator, level, unit_name, value, threshold, year, basis, "en")
    return zh if lang == "zh" else en if lang == "en" else f"{zh} / {en}"


def level_alert(
    unit_id: str,
    unit_name: str,
    indicator: str,
    level: Level,
    state: AlertState,
    value: float,
    threshold: float,
    year: int,
    *,
    ts_ms: int,
    basis: Basis = "yoy",
    lang: Lang = "zh",
) -> Alert:
    """The Alert of a change of a dual-control indicator's level (``energy_total``, ``energy_intensity``,
    ``co2_total``, ``co2_intensity``) at event time ``ts_ms``; key ``unit_id|dual_control|indicator``,
    value and threshold in percent (``uom`` ``%``)."""
    return Alert(
        key=f"{unit_id}|{DUAL_CONTROL}|{indicator}",
        unit_id=unit_id,
        rule=DUAL_CONTROL,
        severity=level,
        state=state,
        value=round(value, 6),
        threshold=round(threshold, 6),
        uom="%",
        message=level_text(
            unit_name, indicator, level, state, value, threshold, year, basis=basis, lang=lang
        ),
        ts_ms=ts_ms,
    )


def product_text(
    unit_name: str,
    product: ProductInfo,
    level: Level,
    state: AlertState,
    value: float,
    threshold: float,
    year: int,
    *,
    lang: Lang = "zh",
) -> str:
    """The text of a product-energy level alert; ``value`` and ``threshold`` in ``product.value_uom``
    (the threshold: 限额 for red, 基准 otherwise)."""
    uom = product.value_uom
    v, t = _num(value, 2), _num(threshold, 2)
    zh_verdict = {"red": "高于能耗限额", "yellow": "高于基准水平", "green": "不高于基准水平"}[level]
    en_verdict = {
        "red": "above the mandatory limit",
        "yellow": "above the baseline level",
        "green": "within the baseline level",
    }[level]
    zh = (
        _header(level, state, "zh")
        + f"{unit_name} {year} 年{product.name}单位产品综合能耗 {v} {uom}，{zh_verdict} {t}"
    )
    en = (
        _header(level, state, "en")
        + f"{unit_name}: {year} energy per unit of {product.name} {v} {uom}, {en_verdict} {t}"
    )
    return zh if lang == "zh" else en if lang == "en" else f"{zh} / {en}"


def product_alert(
    unit_id: str,
    unit_name: str,
    product: ProductInfo,
    level: Level,
    state: AlertState,
    value: float,
    threshold: float,
    year: int,
    *,
    ts_ms: int,
    lang: Lang = "zh",
) -> Alert:
    """The Alert of a change of a product's energy level; key ``unit_id|product_energy|product_id``,
    value and threshold in ``product.value_uom``."""
    return Alert(
        key=f"{unit_id}|{PRODUCT_ENERGY}|{product.product_id}",
        unit_id=unit_id,
        rule=PRODUCT_ENERGY,
        severity=level,
        state=state,
        value=round(value, 6),
        threshold=round(threshold, 6),
        uom=product.value_uom,
        message=product_text(unit_name, product, level, state, value, threshold, year, lang=lang),
        ts_ms=ts_ms,
    )
