"""Notification templates: titles, the frame around the alert's message, languages, escaping, time."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from alerts.notification import Lang, NotificationKind
from alerts.templates import china_time, escape_markdown, number, render
from tests.notifications import TS_MS, make_alert, make_notification


@pytest.mark.parametrize(
    ("kind", "state", "title"),
    [
        ("raised", "raised", "【一级预警】某某钢铁 能耗总量"),
        ("updated", "updated", "【一级预警·级别调整】某某钢铁 能耗总量"),
        ("resolved", "resolved", "【预警解除】某某钢铁 能耗总量"),
        ("escalated", "raised", "【升级·一级预警】某某钢铁 能耗总量"),
    ],
)
def test_chinese_title_names_kind_level_unit_and_subject(
    kind: NotificationKind, state: str, title: str
) -> None:
    n = make_notification(make_alert(state=state), kind=kind, unit_name="某某钢铁")
    assert render(n).title == title


def test_title_falls_back_to_unit_id_and_names_rules_without_indicator() -> None:
    alert = make_alert(key="U1|hourly_ceiling", unit_id="U1", rule="hourly_ceiling", uom="tce/h")
    assert render(make_notification(alert)).title == "【一级预警】U1 小时能耗上限"
    unknown = make_alert(key="U1|new_rule", unit_id="U1", rule="new_rule", severity="yellow")
    assert render(make_notification(unknown)).title == "【二级预警】U1 new_rule"


def test_an_unknown_unit_is_shown_by_its_id_alone() -> None:
    texts = render(make_notification())
    assert texts.title == "【一级预警】91320000100000000X 能耗总量"
    assert "单位: 91320000100000000X\n" in texts.text and "(91320000100000000X)" not in texts.text


@pytest.mark.parametrize(
    ("lang", "line"),
    [
        ("zh", "重复: 另有 3 次重复，已合并到本条通知"),
        ("en", "Repeats: 3 more repeats, folded into this message"),
    ],
)
def test_the_message_says_how_many_repeats_it_reports(lang: Lang, line: str) -> None:
    for kind in ("raised", "updated", "resolved"):
        texts = render(make_notification(kind=kind, lang=lang, folded=3))  # type: ignore[arg-type]
        assert line in texts.text.splitlines()
        assert line.split(": ", 1)[1] in texts.markdown and line.split(": ", 1)[1] in texts.html
    one = render(make_notification(lang="en", folded=1)).text
    assert "Repeats: 1 more repeat, folded into this message" in one
    for lang_ in ("zh", "en"):
        plain = render(make_notification(lang=lang_)).text  # type: ignore[arg-type]
        assert "重复" not in plain and "Repeats" not in plain and "folded" not in plain


def test_chinese_body_has_every_field_and_the_alerts_own_message() -> None:
    texts = render(make_notification(unit_name="某某钢铁"))
    for body in (texts.text, texts.markdown, texts.html):
        assert "某某钢铁" in body and "91320000100000000X" in body
        assert "能耗总量" in body and "一级预警" in body and "发出" in body
        assert "112.5 % / 100 %" in body
        assert "2026-11-24 10:15" in body and "北京时间" in body
        assert "预计达到配额的 112.5%" in body  # the message, quoted as it is
    assert "单位: 某某钢铁 (91320000100000000X)" in texts.text
    assert "Unit" not in texts.text


def test_english_frame() -> None:
    n = make_notification(make_alert(state="resolved"), kind="resolved", lang="en", unit_name="Steel Co")
    texts = render(n)
    assert texts.title == "[Warning cleared] Steel Co energy use"
    assert "Unit: Steel Co (91320000100000000X)" in texts.text
    assert "State: resolved" in texts.text
    assert "Time: 2026-11-24 10:15 (China time)" in texts.text
    assert "单位" not in texts.text


def test_both_languages_chinese_first() -> None:
    texts = render(make_notification(lang="both", unit_name="某某钢铁"))
    assert texts.title == "【一级预警】某某钢铁 能耗总量 / [Level 1 warning] 某某钢铁 energy use"
    for body in (texts.text, texts.markdown, texts.html):
        assert 0 <= body.index("单位") < body.index("Unit")


def test_markdown_escapes_the_unit_name_and_message() -> None:
    alert = make_alert(message="**粗体** [链接](http://x) <font>_a_</font>")
    md = render(make_notification(alert, unit_name="*星* 钢铁_1")).markdown
    assert r"\*星\* 钢铁\_1" in md
    assert r"\*\*粗体\*\* \[链接\](http://x) \<font\>\_a\_\</font\>" in md
    assert "**粗体**" not in md


def test_html_escapes_and_stays_well_formed() -> None:
    alert = make_alert(message='<script>alert("x")</script> & more')
    page = render(make_notification(alert, unit_name="<b>钢铁</b>")).html
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;钢铁&lt;/b&gt;" in page and "&amp; more" in page

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag != "meta":
                self.open.append(tag)

        def handle_endtag(self, tag: str) -> None:
            assert self.open.pop() == tag

    tags = Tags()
    tags.feed(page)
    assert tags.open == []


def test_newlines_in_fields_cannot_add_lines() -> None:
    alert = make_alert(message="第一行\n# 标题\n- 列表")
    texts = render(make_notification(alert, unit_name="钢铁\n厂"))
    assert "钢铁 厂" in texts.title
    assert "\n# " not in texts.markdown and "\n- 列表" not in texts.markdown
    assert "第一行 # 标题 - 列表" in texts.text


def test_china_time_is_utc_plus_eight_across_midnight() -> None:
    assert china_time(TS_MS) == "2026-11-24 10:15"
    assert china_time(1_767_196_800_000) == "2026-01-01 00:00"  # 2025-12-31 16:00 UTC


def test_numbers_drop_trailing_zeros() -> None:
    assert [number(v) for v in (25.0, 31.5, 0.1234, -0.0001, 1234567.0)] == [
        "25",
        "31.5",
        "0.123",
        "0",
        "1234567",
    ]


def test_escape_markdown_leaves_plain_text_alone() -> None:
    assert escape_markdown("某某钢铁 112.5% - ok") == "某某钢铁 112.5% - ok"
