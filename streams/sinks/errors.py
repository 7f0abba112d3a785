"""What a write to InfluxDB can end in, whatever the backend."""

from __future__ import annotations


class InfluxWriteRejected(RuntimeError):
    """InfluxDB refused a batch (4xx): the request itself is wrong, so it is not retried.

    ``status`` is the HTTP status and ``detail`` InfluxDB's own message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"InfluxDB rejected the write ({status}): {detail}")
        self.status = status
        self.detail = detail


class InfluxUnavailable(RuntimeError):
    """A write failed in a way worth retrying: timeout, connection error, 5xx or 429."""
