"""Delivery workers: one thread per channel takes due notifications from the outbox and sends them.

Each notification is claimed (``sending``), handed to the channel, then recorded: ``delivered``;
queued again after a retryable :class:`DeliveryError` with exponential backoff and jitter (the wait
before retry *n* is drawn from [½·c, c], c = min(cap, initial·2ⁿ⁻¹); a peer's ``Retry-After``
lengthens it up to the cap); ``failed`` for good otherwise (a non-retryable error or a channel bug).
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

from .channels.base import Channel, DeliveryError
from .notification import Notification
from .outbox import Outbox

log = logging.getLogger("energymon.alerts.delivery")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry waits in seconds: ``initial_s`` doubling per attempt up to ``max_s``, half jittered."""

    initial_s: float = 1.0
    max_s: float = 300.0

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Wait after failed attempt ``attempt`` (1-based)."""
        ceiling = min(self.max_s, self.initial_s * 2 ** min(max(attempt - 1, 0), 32))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_s))
        return delay


class DeliveryWorker(threading.Thread):
    """Sends the due notifications of the channel named ``name`` until ``stop`` is set; ``wake``
    (set by the dispatcher after enqueueing) cuts a wait short. ``idle_s`` is the longest wait."""

    def __init__(
        self,
        name: str,
        channel: Channel,
        outbox: Outbox,
        backoff: Backoff,
        stop: threading.Event,
        idle_s: float = 1.0,
    ) -> None:
        super().__init__(name=f"deliver-{name}", daemon=True)
        self.channel_name = name
        self.channel = channel
        self.outbox = outbox
        self.backoff = backoff
        self.stop = stop
        self.wake = threading.Event()
        self.idle_s = idle_s

    def run(self) -> None:
        """Deliver until stopped (a notification being sent when ``stop`` is set is finished)."""
        while not self.stop.is_set():
            self.wake.clear()
            due = self.outbox.claim(self.channel_name, self.outbox.now_ms())
            for n in due:
                self.send(n)
            if due:
                continue
            self.wake.wait(self._wait_s())

    def _wait_s(self) -> float:
        next_ms = self.outbox.next_due_ms(self.channel_name)
        if next_ms is None:
            return self.idle_s
        return min(self.idle_s, max(0.0, (next_ms - self.outbox.now_ms()) / 1000))

    def send(self, n: Notification) -> None:
        """Hand ``n`` to the channel and record what happened."""
        try:
            self.channel.deliver(n)
        except DeliveryError as exc:
            if not exc.retryable:
                log.error(
                    "notification %s (%s) to %s failed for good: %s",
                    n.alert.key,
                    n.kind,
                    self.channel_name,
                    exc.detail,
                )
                self.outbox.failed(n, exc.detail)
                return
            delay = self.backoff.delay_s(n.attempt, exc.retry_after_s)
            log.warning(
                "notification %s (%s) to %s not delivered (attempt %d), retrying in %.1f s: %s",
                n.alert.key,
                n.kind,
                self.channel_name,
                n.attempt,
                delay,
                exc.detail,
            )
            self.outbox.retry(n, self.outbox.now_ms() + round(delay * 1000), exc.detail)
        except Exception as exc:  # a channel bug must not stop the worker
            log.exception("channel %s failed on notification %s", self.channel_name, n.delivery_id)
            self.outbox.failed(n, f"channel error: {exc!r}"[:500])
        else:
            self.outbox.delivered(n)
