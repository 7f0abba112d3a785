"""DingTalk and WeCom robot channels against local receivers that check their formats."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest

from alerts.channels import DeliveryError, DingTalkChannel, WeComChannel
from alerts.channels.robot import truncate_utf8
from tests.notifications import make_alert, make_notification
from tests.receivers import DingTalkReceiver, WeComReceiver

DING_SECRET = "SECdeadbeef-签名"


@pytest.fixture
def ding() -> Iterator[DingTalkReceiver]:
    with DingTalkReceiver(token="ding-token-1", secret=DING_SECRET) as r:
        yield r


@pytest.fixture
def wecom() -> Iterator[WeComReceiver]:
    with WeComReceiver(token="wecom-key-1") as r:
        yield r


# -- DingTalk -------------------------------------------------------------------------------------


def test_dingtalk_posts_signed_markdown(ding: DingTalkReceiver) -> None:
    DingTalkChannel(ding.url, DING_SECRET, 2.0).deliver(make_notification())
    [req] = ding.wait_for(1)
    assert req.problems == () and req.signature_ok is True
    message = orjson.loads(req.body)
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["title"] == "【一级预警】91320000100000000X 能耗总量"
    assert "2026-11-24 10:15" in message["markdown"]["text"]
    assert "access_token=ding-token-1&timestamp=" in req.path


def test_dingtalk_signature_fails_with_a_stale_timestamp_or_wrong_secret(ding: DingTalkReceiver) -> None:
    DingTalkChannel(ding.url, DING_SECRET, 2.0, clock=lambda: time.time() - 7200).deliver(make_notification())
    DingTalkChannel(ding.url, "another", 2.0).deliver(make_notification())
    stale, wrong = ding.wait_for(2)
    assert stale.signature_ok is False and wrong.signature_ok is False


def test_dingtalk_unsigned_robot_gets_no_signature(ding: DingTalkReceiver) -> None:
    DingTalkChannel(ding.url, None, 2.0).deliver(make_notification())
    [req] = ding.wait_for(1)
    assert "sign=" not in req.path and "timestamp=" not in req.path


def test_dingtalk_sign_error_is_not_retryable(ding: DingTalkReceiver) -> None:
    ding.errcode_next(1, 310000, "sign not match")
    with pytest.raises(DeliveryError) as info:
        DingTalkChannel(ding.url, DING_SECRET, 2.0).deliver(make_notification())
    assert info.value.retryable is False
    assert "310000" in info.value.detail and "sign not match" in info.value.detail


def test_dingtalk_rate_limit_is_retryable_with_a_wait(ding: DingTalkReceiver) -> None:
    ding.errcode_next(1, 130101, "send too fast, exceed 20 times per minute")
    with pytest.raises(DeliveryError) as info:
        DingTalkChannel(ding.url, DING_SECRET, 2.0).deliver(make_notification())
    assert info.value.retryable is True and info.value.retry_after_s == 600


def test_dingtalk_answer_that_is_not_json_is_not_retryable(ding: DingTalkReceiver) -> None:
    ding.fail_next(1, 200, b"<html>proxy</html>")
    with pytest.raises(DeliveryError) as info:
        DingTalkChannel(ding.url, None, 2.0).deliver(make_notification())
    assert info.value.retryable is False


def test_dingtalk_token_secret_and_sign_stay_out_of_errors(ding: DingTalkReceiver) -> None:
    ding.fail_next(1, 503, b"busy")
    channel = DingTalkChannel(ding.url, DING_SECRET, 2.0)
    with pytest.raises(DeliveryError) as info:
        channel.deliver(make_notification())
    assert info.value.retryable is True
    sign = ding.requests[0].path.split("sign=")[1]
    text = info.value.detail + repr(channel)
    assert "ding-token-1" not in text and DING_SECRET not in text and sign not in text


# -- WeCom ----------------------------------------------------------------------------------------


def test_wecom_posts_markdown_content(wecom: WeComReceiver) -> None:
    WeComChannel(wecom.url, 2.0).deliver(make_notification(lang="en"))
    [req] = wecom.wait_for(1)
    assert req.problems == ()
    message = orjson.loads(req.body)
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["content"].startswith("### \\[Level 1 warning\\] 91320000100000000X")
    assert req.path.endswith("?key=wecom-key-1")


def test_wecom_long_content_is_cut_to_4096_bytes_on_a_character_boundary(wecom: WeComReceiver) -> None:
    alert = make_alert(message="超" * 3000)  # 9000 bytes of UTF-8
    WeComChannel(wecom.url, 2.0).deliver(make_notification(alert))
    [req] = wecom.wait_for(1)
    assert req.problems == ()  # the receiver checks ≤ 4096 bytes and valid UTF-8 JSON
    content = orjson.loads(req.body)["markdown"]["content"]
    assert 4090 <= len(content.encode()) <= 4096 and content.endswith("超…")


def test_wecom_rate_limit_is_retryable(wecom: WeComReceiver) -> None:
    wecom.errcode_next(1, 45009, "api freq out of limit")
    with pytest.raises(DeliveryError) as info:
        WeComChannel(wecom.url, 2.0).deliver(make_notification())
    assert info.value.retryable is True and info.value.retry_after_s == 60


def test_wecom_invalid_key_is_not_retryable(wecom: WeComReceiver) -> None:
    wecom.errcode_next(1, 93000, "invalid webhook url")
    channel = WeComChannel(wecom.url, 2.0)
    with pytest.raises(DeliveryError) as info:
        channel.deliver(make_notification())
    assert info.value.retryable is False
    assert "wecom-key-1" not in info.value.detail + repr(channel)


@pytest.mark.parametrize("limit", range(1, 12))
def test_truncate_utf8_never_splits_a_character(limit: int) -> None:
    cut = truncate_utf8("能耗ab总量", limit, marker="")
    assert len(cut.encode()) <= limit and "能耗ab总量".startswith(cut)
