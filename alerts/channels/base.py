"""The contract every delivery channel meets."""

from __future__ import annotations

from typing import Protocol

from energy.alert import Alert


class DeliveryError(Exception):
    """A channel could not deliver an alert.

    ``retryable`` says whether trying again later may succeed (the peer is down, slow or overloaded)
    or not (the request itself is wrong: bad URL, rejected by the receiver). ``retry_after_s`` is the
    peer's own hint (HTTP ``Retry-After``), if it gave one. ``detail`` never holds a secret.
    """

    def __init__(self, retryable: bool, detail: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retryable = retryable
        self.detail = detail
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return f"DeliveryError(retryable={self.retryable!r}, detail={self.detail!r})"


class Channel(Protocol):
    """Somewhere alerts go. ``deliver`` returns when the alert has been accepted."""

    name: str

    def deliver(self, alert: Alert) -> None:
        """Deliver one alert; raise :class:`DeliveryError` when it was not accepted."""
        ...
