"""A channel that mails each notification over SMTP (stdlib ``smtplib``): plain text and HTML.

Connection ``security``: ``starttls`` (upgrade a plain connection, port 587 by default), ``tls``
(TLS from the first byte, port 465) or ``none`` (port 25; only for a relay on a trusted network).
The server's certificate is verified (``ca_file`` adds a CA, e.g. a site's own). With a
``username`` the channel logs in (AUTH) with ``password``; the password is never logged.

The mail goes to ``notification.recipient`` (one address or several separated by commas), else to
the channel's default recipients. Its ``Message-ID`` is ``<delivery_id@sender's domain>``, the same on
every try, so a repeat after a retry is recognisable (and dropped by servers that de-duplicate).

Failures: 4xx replies, connection errors, timeouts and a dropped connection are retryable; 5xx
replies (550 mailbox unavailable, 535 bad credentials, …), a refused certificate, a server without
STARTTLS or AUTH, and a notification without any recipient are not. When only some recipients are
refused, the mail has gone to the others: it counts as delivered (the refusals are logged), since
retrying would repeat it to everyone.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Literal

from ..notification import Notification
from ..templates import render
from .base import DeliveryError
from .http import describe

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
_REPLY_CHARS = 200

log = logging.getLogger("energymon.alerts.email")


def addresses(text: str | None) -> list[str]:
    """The addresses in a comma-separated list (``"A <a@x.cn>, b@y.cn"`` → ``["a@x.cn", "b@y.cn"]``)."""
    return [addr for _, addr in getaddresses([text or ""]) if "@" in addr]


class EmailChannel:
    """Mails notifications through one SMTP server."""

    name = "email"

    def __init__(
        self,
        host: str,
        sender: str,
        *,
        port: int | None = None,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        to: Sequence[str] = (),
        timeout_s: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        if security not in DEFAULT_PORTS:
            raise ValueError(f"email security must be one of {', '.join(DEFAULT_PORTS)}: {security!r}")
        if not addresses(sender):
            raise ValueError(f"email sender is not an address: {sender!r}")
        if username and not password:
            raise ValueError("email username given without a password")
        if not f"{username or ''}{password or ''}".isascii():  # smtplib sends AUTH in ASCII only
            raise ValueError("email username and password must be ASCII")
        if timeout_s <= 0:
            raise ValueError("email timeout must be positive")
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        self.security = security
        self.sender = sender
        self.to = tuple(addr for entry in to for addr in addresses(entry))
        self.timeout_s = timeout_s
        self._username = username or None
        self._password = password
        self._tls = ssl.create_default_context(cafile=ca_file) if security != "none" else None
        self._where = f"SMTP {host}:{self.port}"

    def __repr__(self) -> str:
        auth = f", user {self._username!r}" if self._username else ""
        return f"EmailChannel({self._where!r}, {self.security}{auth})"

    def message(self, n: Notification, recipients: Sequence[str]) -> EmailMessage:
        """The mail for ``n``: multipart/alternative with a plain-text and an HTML part."""
        texts = render(n)
        domain = addresses(self.sender)[0].rsplit("@", 1)[1]
        mail = EmailMessage()
        mail["Subject"] = texts.title
        mail["From"] = self.sender
        mail["To"] = ", ".join(recipients)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{n.delivery_id}@{domain}>"
        mail["X-Energymon-Alert-Key"] = n.alert.key
        mail.set_content(texts.text)
        mail.add_alternative(texts.html, subtype="html")
        return mail

    def deliver(self, notification: Notification) -> None:
        """Send the mail; raise :class:`DeliveryError` unless the server accepted it."""
        recipients = addresses(notification.recipient) or list(self.to)
        if not recipients:
            raise DeliveryError(False, f"{self._where}: no recipient for {notification.alert.key}")
        mail = self.message(notification, recipients)
        try:
            refused = self._send(mail, recipients)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._error(exc) from None
        if refused:
            log.warning(
                "%s: mail %s sent, but some recipients were refused: %s",
                self._where,
                notification.delivery_id,
                _refusals(refused),
            )

    def _send(self, mail: EmailMessage, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        smtp = self._connect()
        try:
            if self._username:
                smtp.login(self._username, self._password or "")
            return smtp.send_message(mail, from_addr=addresses(self.sender)[0], to_addrs=recipients)
        finally:  # once the mail is accepted, a failing QUIT must not turn it into a retry
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=self._tls)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        if self.security == "starttls":
            try:
                smtp.starttls(context=self._tls)
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _error(self, exc: smtplib.SMTPException | OSError) -> DeliveryError:
        """4xx replies and connection trouble are retryable; 5xx replies and configuration errors not."""
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            retryable = all(400 <= code < 500 for code, _ in exc.recipients.values())
            return DeliveryError(retryable, f"{self._where}: recipients refused: {_refusals(exc.recipients)}")
        if isinstance(exc, smtplib.SMTPResponseException):
            detail = f"{self._where}: {_reply(exc.smtp_code, exc.smtp_error)}"
            return DeliveryError(400 <= exc.smtp_code < 500, detail)
        # SMTPException is an OSError: a dropped connection is retryable, other SMTP errors (no
        # STARTTLS, no AUTH mechanism in common) are configuration, as is a refused certificate
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            retryable = True
        else:
            retryable = not isinstance(exc, smtplib.SMTPException | ssl.SSLCertVerificationError)
        return DeliveryError(retryable, f"{self._where}: {describe(exc)}")


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {message[:_REPLY_CHARS]}"


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{addr}: {_reply(code, text)}" for addr, (code, text) in refused.items())
