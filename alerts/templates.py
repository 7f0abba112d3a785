"""What a notification says: a title and a body as markdown (chat robots), plain text and HTML (e-mail).

Chinese by default; ``Notification.lang`` ``en`` gives English, ``both`` the Chinese then the English.
The frame (unit as "name (id)" — the id alone when the registry does not know the unit —, rule,
severity, state, value and threshold, event time in China time, the repeats the message reports when
there are any, the alert key) comes from here; the alert's own ``message`` (made by
``energy.messages`` in the stream app's language) is quoted as it is. Every field is escaped for the
format it goes into (markdown, HTML), and newlines inside a field are folded to spaces, so a unit
name cannot inject markup or lines.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from energy.alert import Alert
from energy.messages import DUAL_CONTROL, PRODUCT_ENERGY

from .notification import Lang, Notification

One = Literal["zh", "en"]
CHINA = ZoneInfo("Asia/Shanghai")

_LEVEL: dict[str, tuple[str, str]] = {
    "red": ("一级预警", "Level 1 warning"),
    "orange": ("橙色预警", "Orange warning"),
    "yellow": ("二级预警", "Level 2 warning"),
    "green": ("三级", "Level 3"),
}
_STATE: dict[str, tuple[str, str]] = {
    "raised": ("发出", "raised"),
    "updated": ("级别调整", "level changed"),
    "resolved": ("已解除", "resolved"),
}
#: Rule names; dual-control alerts are named by their indicator (the key's last part).
_SUBJECT: dict[str, tuple[str, str]] = {
    "energy_total": ("能耗总量", "energy use"),
    "co2_total": ("碳排放总量", "CO₂ emissions"),
    "energy_intensity": ("单位产值能耗", "energy use per output"),
    "co2_intensity": ("单位产值碳排放", "CO₂ per output"),
    PRODUCT_ENERGY: ("单位产品能耗", "energy per unit of product"),
    "hourly_ceiling": ("小时能耗上限", "hourly energy ceiling"),
    "silent_meter": ("计量表无数据", "silent meter"),
    "completeness": ("数据完整率", "data completeness"),
    "consumption_spike": ("能耗突增", "consumption spike"),
    "day_month_mismatch": ("日月数据不符", "day and month figures differ"),
}
_LABELS: dict[str, tuple[str, str]] = {
    "unit": ("单位", "Unit"),
    "rule": ("规则", "Rule"),
    "severity": ("级别", "Severity"),
    "state": ("状态", "State"),
    "value": ("数值 / 阈值", "Value / threshold"),
    "time": ("时间", "Time"),
    "message": ("内容", "Message"),
    "folded": ("重复", "Repeats"),
    "key": ("预警编号", "Alert key"),
}
_CHINA_TIME = ("北京时间", "China time")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A notification's texts: ``title`` (plain: e-mail subject, robot title), ``markdown``,
    ``text`` and ``html`` bodies."""

    title: str
    markdown: str
    text: str
    html: str


def render(n: Notification) -> Rendered:
    """The texts of ``n`` in ``n.lang``."""
    langs: tuple[One, ...] = _langs(n.lang)
    title = " / ".join(title_of(n, lang) for lang in langs)
    sections = [(title_of(n, lang), rows(n, lang)) for lang in langs]
    return Rendered(
        title=title,
        markdown="\n\n".join(_markdown(t, r) for t, r in sections),
        text="\n\n".join(_text(t, r) for t, r in sections),
        html=_html_page(title, "".join(_html(t, r) for t, r in sections)),
    )


def _langs(lang: Lang) -> tuple[One, ...]:
    return ("zh", "en") if lang == "both" else (lang,)


def _pick(pair: tuple[str, str], lang: One) -> str:
    return pair[0] if lang == "zh" else pair[1]


def title_of(n: Notification, lang: One) -> str:
    """``【一级预警】某某钢铁 能耗总量`` (the unit id when its name is unknown); updated
    ``【一级预警·级别调整】…``, resolved ``【预警解除】…``,
    escalated ``【升级·一级预警】…`` (English: ``[Level 1 warning] …`` and so on)."""
    level = _pick(_LEVEL[n.alert.severity], lang)
    if n.kind == "resolved":
        head = "【预警解除】" if lang == "zh" else "[Warning cleared] "
    elif n.kind == "escalated":
        head = f"【升级·{level}】" if lang == "zh" else f"[Escalated: {level}] "
    elif n.kind == "updated":
        head = f"【{level}·级别调整】" if lang == "zh" else f"[{level}, level changed] "
    else:
        head = f"【{level}】" if lang == "zh" else f"[{level}] "
    return _one_line(f"{head}{n.unit_name or n.alert.unit_id} {subject(n.alert, lang)}")


def subject(alert: Alert, lang: One) -> str:
    """What the alert is about: the indicator of a dual-control alert, else the rule's name (the
    rule's code when it has no name here)."""
    name = alert.key.rsplit("|", 1)[-1] if alert.rule == DUAL_CONTROL else alert.rule
    pair = _SUBJECT.get(name)
    return _pick(pair, lang) if pair else name


def china_time(ts_ms: int) -> str:
    """Epoch ms as ``2026-11-24 10:15`` in China time (Asia/Shanghai)."""
    return datetime.fromtimestamp(ts_ms / 1000, CHINA).strftime("%Y-%m-%d %H:%M")


def number(value: float) -> str:
    """``value`` with at most 3 decimals and no trailing zeros (25.0 → ``25``, 31.5 → ``31.5``)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def folded_text(count: int, lang: One) -> str:
    """How many repeats a message reports: ``另有 3 次重复，已合并到本条通知`` / ``3 more repeats, folded
    into this message``."""
    if lang == "zh":
        return f"另有 {count} 次重复，已合并到本条通知"
    return f"{count} more repeat{'s' * (count != 1)}, folded into this message"


def rows(n: Notification, lang: One) -> list[tuple[str, str]]:
    """The (label, value) lines of a body, unescaped and one line each (``folded`` only when the
    message reports repeats)."""
    alert = n.alert
    unit = f"{n.unit_name} ({alert.unit_id})" if n.unit_name else alert.unit_id
    figures = f"{number(alert.value)} {alert.uom} / {number(alert.threshold)} {alert.uom}"
    values = {
        "unit": unit,
        "rule": f"{subject(alert, lang)} ({alert.rule})",
        "severity": f"{_pick(_LEVEL[alert.severity], lang)} ({alert.severity})",
        "state": _pick(_STATE[alert.state], lang),
        "value": figures,
        "time": f"{china_time(alert.ts_ms)} ({_pick(_CHINA_TIME, lang)})",
        "message": alert.message,
        "folded": folded_text(n.folded, lang),
        "key": alert.key,
    }
    if n.folded <= 0:
        del values["folded"]
    return [(_pick(_LABELS[field], lang), _one_line(value)) for field, value in values.items()]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def escape_markdown(text: str) -> str:
    """``text`` with every markdown-active character backslash-escaped (``*`` → ``\\*``)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _markdown(title: str, lines: list[tuple[str, str]]) -> str:
    return _lines(f"### {escape_markdown(title)}", lines, lambda k, v: f"- **{k}**：{escape_markdown(v)}")


def _text(title: str, lines: list[tuple[str, str]]) -> str:
    return _lines(title, lines, lambda k, v: f"{k}: {v}")


def _html(title: str, lines: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><th align="left">{html.escape(k)}</th><td>{html.escape(v)}</td></tr>' for k, v in lines
    )
    return f"<h3>{html.escape(title)}</h3><table>{cells}</table>"


def _html_page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body>{body}</body></html>"
    )


def _lines(head: str, lines: list[tuple[str, str]], line: Callable[[str, str], str]) -> str:
    return "\n".join([head, "", *(line(k, v) for k, v in lines)])
