"""EmailChannel against a real SMTP server (aiosmtpd): plain, STARTTLS and TLS, with AUTH."""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from alerts.channels import DeliveryError, EmailChannel
from tests.notifications import make_alert, make_notification
from tests.receivers import free_port

USER, PASSWORD = "alerts@energy.example.cn", "s3cret-pass!"
SENDER = "能耗监测 <alerts@energy.example.cn>"
TO = "duty@centre.example.cn"
Cert = tuple[Path, Path]


@dataclass
class Mailbox:
    """An aiosmtpd handler: records mails; ``rcpt_reply`` refuses recipients (e.g. ``550 …``)."""

    mails: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    rcpt_reply: str | None = None
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with openssl: (cert, key)."""
    where = tmp_path_factory.mktemp("tls")
    crt, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(crt)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return crt, key


def server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    return context


@contextmanager
def smtp_server(mailbox: Mailbox, mode: str = "plain", cert: Cert | None = None) -> Iterator[int]:
    """An aiosmtpd server on 127.0.0.1:<free port> with AUTH (``mode``: plain, starttls, tls)."""
    options: dict[str, Any] = {
        "authenticator": mailbox.authenticate,
        "auth_require_tls": mode == "starttls",  # aiosmtpd does not count implicit TLS as TLS
    }
    if mode == "starttls":
        assert cert is not None
        options.update(tls_context=server_context(cert), require_starttls=True)
    elif mode == "tls":
        assert cert is not None
        options.update(ssl_context=server_context(cert))
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def channel(port: int, security: str = "none", **options: Any) -> EmailChannel:
    fields: dict[str, Any] = {"username": USER, "password": PASSWORD, "timeout_s": 5.0}
    fields.update(options)
    return EmailChannel("127.0.0.1", SENDER, port=port, security=security, **fields)  # type: ignore[arg-type]


def test_mail_has_headers_both_parts_and_chinese_text_intact() -> None:
    mailbox = Mailbox()
    n = make_notification(recipient=TO, delivery_id="0123abcd")
    with smtp_server(mailbox) as port:
        channel(port).deliver(n)
    [(mail_from, rcpt, mail)] = mailbox.mails
    assert (mail_from, rcpt) == ("alerts@energy.example.cn", [TO])
    assert mail["Subject"] == "【一级预警】91320000100000000X 能耗总量"
    assert mail["From"] == SENDER and mail["To"] == TO
    assert mail["Message-ID"] == "<0123abcd@energy.example.cn>"
    assert mail.get_content_type() == "multipart/alternative"
    plain, html = (mail.get_body(("plain",)), mail.get_body(("html",)))
    assert plain is not None and html is not None
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert "预计达到配额的 112.5%" in plain.get_content() and "北京时间" in plain.get_content()
    assert "<table>" in html.get_content() and "预计达到配额的 112.5%" in html.get_content()
    assert mailbox.logins == [USER]


def test_repeat_keeps_its_message_id() -> None:
    mailbox = Mailbox()
    n = make_notification(recipient=TO, delivery_id="same-id")
    with smtp_server(mailbox) as port:
        channel(port).deliver(n)
        channel(port).deliver(n)
    assert [m["Message-ID"] for _, _, m in mailbox.mails] == ["<same-id@energy.example.cn>"] * 2


def test_starttls_with_auth(cert: tuple[Path, Path]) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox, "starttls", cert) as port:
        channel(port, "starttls", ca_file=str(cert[0])).deliver(make_notification(recipient=TO))
    assert len(mailbox.mails) == 1 and mailbox.logins == [USER]


def test_implicit_tls_with_auth(cert: tuple[Path, Path]) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox, "tls", cert) as port:
        channel(port, "tls", ca_file=str(cert[0])).deliver(make_notification(recipient=TO, lang="en"))
    [(_, _, mail)] = mailbox.mails
    assert mail["Subject"] == "[Level 1 warning] 91320000100000000X energy use"


def test_untrusted_certificate_is_not_retryable(cert: tuple[Path, Path]) -> None:
    with smtp_server(Mailbox(), "starttls", cert) as port, pytest.raises(DeliveryError) as info:
        channel(port, "starttls").deliver(make_notification(recipient=TO))  # no ca_file: not trusted
    assert info.value.retryable is False


def test_wrong_password_is_not_retryable_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server(Mailbox()) as port, pytest.raises(DeliveryError) as info:
        channel(port, password="wrong-pass").deliver(make_notification(recipient=TO))
    assert info.value.retryable is False and "535" in info.value.detail
    text = info.value.detail + repr(channel(port)) + caplog.text
    assert "wrong-pass" not in text and PASSWORD not in text


def test_mailbox_unavailable_550_is_not_retryable() -> None:
    mailbox = Mailbox(rcpt_reply="550 5.1.1 mailbox unavailable")
    with smtp_server(mailbox) as port, pytest.raises(DeliveryError) as info:
        channel(port).deliver(make_notification(recipient=TO))
    assert info.value.retryable is False and "550" in info.value.detail
    assert mailbox.mails == []


def test_temporary_4xx_reply_is_retryable() -> None:
    mailbox = Mailbox(rcpt_reply="451 4.3.0 try again later")
    with smtp_server(mailbox) as port, pytest.raises(DeliveryError) as info:
        channel(port).deliver(make_notification(recipient=TO))
    assert info.value.retryable is True and "451" in info.value.detail


def test_server_down_is_retryable() -> None:
    with pytest.raises(DeliveryError) as info:
        channel(free_port()).deliver(make_notification(recipient=TO))
    assert info.value.retryable is True


def test_default_recipients_when_the_notification_has_none_and_error_without_any() -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        channel(port, to=["a@x.cn, B <b@y.cn>"]).deliver(make_notification(recipient=None))
        with pytest.raises(DeliveryError) as info:
            channel(port).deliver(make_notification(make_alert(), recipient=None))
    assert [rcpt for _, rcpt, _ in mailbox.mails] == [["a@x.cn", "b@y.cn"]]
    assert info.value.retryable is False


def test_non_ascii_credentials_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        EmailChannel("127.0.0.1", SENDER, username=USER, password="密码")
