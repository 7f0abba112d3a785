"""The contract every delivery channel meets: ``deliver(notification)`` or raise :class:`DeliveryError`."""

from __future__ import annotations

from typing import Protocol

from ..notification import Notification


class DeliveryError(Exception):
    """A channel could not deliver a notification.

    ``retryable`` says whether trying again later may succeed (the peer is down, slow or overloaded)
    or not (the request itself is wrong: bad URL, bad credentials, rejected by the receiver).
    ``retry_after_s`` is the peer's own hint (HTTP ``Retry-After``, a robot's rate limit), if any.
    ``detail`` never holds a secret.
    """

    def __init__(self, retryable: bool, detail: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retryable = retryable
        self.detail = detail
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return f"DeliveryError(retryable={self.retryable!r}, detail={self.detail!r})"


class Channel(Protocol):
    """Somewhere notifications go. ``deliver`` returns when the peer has accepted one; it is
    synchronous (the dispatcher calls it from a delivery thread) and bounded by the channel's timeout."""

    name: str

    def deliver(self, notification: Notification) -> None:
        """Deliver one notification; raise :class:`DeliveryError` when it was not accepted."""
        ...
