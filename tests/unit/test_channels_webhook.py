"""WebhookChannel (Notification contract) against a real local HTTP receiver."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from urllib.parse import unquote

import orjson
import pytest

from alerts.channels import DeliveryError, WebhookChannel, notification_json, verify
from energy.alert import Alert
from tests.notifications import make_alert, make_notification
from tests.receivers import WebhookReceiver, free_port

SECRET = "s3cr3t-不要泄露"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as r:
        yield r


def test_body_is_the_alert_json_plus_kind_delivery_id_unit_name_and_folded(receiver: WebhookReceiver) -> None:
    n = make_notification(kind="escalated", delivery_id="abc123", unit_name="某某钢铁", folded=2)
    WebhookChannel(receiver.url, SECRET, 2.0).deliver(n)
    [req] = receiver.wait_for(1)
    assert req.method == "POST" and req.path == "/hook"
    assert req.body == notification_json(n)
    body = orjson.loads(req.body)
    assert list(body)[-4:] == ["kind", "delivery_id", "unit_name", "folded"]
    assert [body[k] for k in list(body)[-4:]] == ["escalated", "abc123", "某某钢铁", 2]
    assert Alert.from_json(req.body) == n.alert  # old receivers still parse it
    assert req.header("Content-Type") == "application/json"


def test_headers_carry_the_notifications_delivery_id_and_alert_key(receiver: WebhookReceiver) -> None:
    n = make_notification(delivery_id="feedface42")
    WebhookChannel(receiver.url, SECRET, 2.0).deliver(n)
    [req] = receiver.wait_for(1)
    assert req.header("X-Energymon-Delivery") == "feedface42"
    assert req.header("X-Energymon-Alert-Key") == n.alert.key


def test_signature_verifies_with_the_secret_only(receiver: WebhookReceiver) -> None:
    WebhookChannel(receiver.url, SECRET, 2.0).deliver(make_notification())
    [req] = receiver.wait_for(1)
    assert req.signature_ok is True
    signature = req.header("X-Energymon-Signature")
    assert signature is not None and signature.startswith("sha256=")
    assert verify(req.body, SECRET, signature)
    assert not verify(req.body, "another-secret", signature)
    assert not verify(req.body + b" ", SECRET, signature)


def test_wrong_secret_fails_the_receivers_check(receiver: WebhookReceiver) -> None:
    WebhookChannel(receiver.url, "another-secret", 2.0).deliver(make_notification())
    [req] = receiver.wait_for(1)
    assert req.signature_ok is False


def test_no_signature_header_without_secret(receiver: WebhookReceiver) -> None:
    WebhookChannel(receiver.url, None, 2.0).deliver(make_notification())
    [req] = receiver.wait_for(1)
    assert req.header("X-Energymon-Signature") is None
    assert req.signature_ok is False


def test_non_ascii_key_is_percent_encoded(receiver: WebhookReceiver) -> None:
    alert = make_alert(key="京能热电|小时上限", unit_id="京能热电", rule="小时上限")
    WebhookChannel(receiver.url, SECRET, 2.0).deliver(make_notification(alert))
    [req] = receiver.wait_for(1)
    header = req.header("X-Energymon-Alert-Key")
    assert header is not None and header.isascii()
    assert unquote(header) == alert.key


def test_server_error_is_retryable(receiver: WebhookReceiver) -> None:
    receiver.fail_next(1, 500, b"boom")
    with pytest.raises(DeliveryError) as info:
        WebhookChannel(receiver.url, SECRET, 2.0).deliver(make_notification())
    assert info.value.retryable is True
    assert "500" in info.value.detail


def test_too_many_requests_is_retryable_and_passes_retry_after(receiver: WebhookReceiver) -> None:
    receiver.fail_next(1, 429, b"slow down", headers={"Retry-After": "3"})
    with pytest.raises(DeliveryError) as info:
        WebhookChannel(receiver.url, SECRET, 2.0).deliver(make_notification())
    assert info.value.retryable is True
    assert info.value.retry_after_s == 3.0


def test_not_found_is_permanent_with_status_and_body(receiver: WebhookReceiver) -> None:
    receiver.fail_next(1, 404, b"no such hook " + b"x" * 500)
    with pytest.raises(DeliveryError) as info:
        WebhookChannel(receiver.url, SECRET, 2.0).deliver(make_notification())
    assert info.value.retryable is False
    assert "404" in info.value.detail and "no such hook" in info.value.detail
    assert "x" * 201 not in info.value.detail  # only the first 200 characters of the answer


def test_redirect_is_not_followed(receiver: WebhookReceiver) -> None:
    receiver.fail_next(1, 302, b"", headers={"Location": "/elsewhere"})
    with pytest.raises(DeliveryError) as info:
        WebhookChannel(receiver.url, SECRET, 2.0).deliver(make_notification())
    assert info.value.retryable is False
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_connection_refused_is_retryable() -> None:
    channel = WebhookChannel(f"http://127.0.0.1:{free_port()}/hook", SECRET, 2.0)
    with pytest.raises(DeliveryError) as info:
        channel.deliver(make_notification())
    assert info.value.retryable is True


def test_timeout_is_retryable(receiver: WebhookReceiver) -> None:
    receiver.stall_next(1, 2.0)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        WebhookChannel(receiver.url, SECRET, 0.2).deliver(make_notification())
    assert time.monotonic() - started < 1.5  # did not wait for the stalled answer
    assert info.value.retryable is True
    assert "timed out" in info.value.detail


def test_retries_carry_the_same_delivery_id_and_body(receiver: WebhookReceiver) -> None:
    receiver.fail_next(1, 503)
    channel = WebhookChannel(receiver.url, SECRET, 2.0)
    n = make_notification()
    with pytest.raises(DeliveryError):
        channel.deliver(n)
    channel.deliver(n)
    first, second = receiver.wait_for(2)
    assert first.header("X-Energymon-Delivery") == second.header("X-Energymon-Delivery")
    assert first.body == second.body
    assert (first.status, second.status) == (503, 200)


def test_secret_and_url_token_never_reach_errors_or_logs(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.fail_next(1, 400, b"bad request")
    channel = WebhookChannel(receiver.url + "?access_token=tok123", SECRET, 2.0)
    with pytest.raises(DeliveryError) as info:
        channel.deliver(make_notification())
    [req] = receiver.wait_for(1)
    signature = req.header("X-Energymon-Signature")
    assert signature
    text = info.value.detail + repr(info.value) + repr(channel) + caplog.text
    assert SECRET not in text and signature not in text and "tok123" not in text


def test_bad_url_is_refused_up_front() -> None:
    with pytest.raises(ValueError):
        WebhookChannel("ftp://example.org/hook", None, 1.0)
