"""What the dispatcher hands a channel: one message about one alert change for one recipient.

The dispatcher (routing, lifecycle, outbox) decides *who* hears about an alert change and *when*;
a channel (``alerts/channels/``) decides *how* it looks and travels. :class:`Notification` is the
whole contract between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from energy.alert import Alert

#: Why a notification is sent: the alert's own state change, or the dispatcher's escalation of a
#: red alert nobody acknowledged in time.
NotificationKind = Literal["raised", "updated", "resolved", "escalated"]
Lang = Literal["zh", "en", "both"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message about ``alert`` to ``recipient`` over one channel.

    ``recipient`` is the channel's own address for a person or group (an e-mail address; None for
    a robot or webhook, whose URL is the channel itself). ``lang`` picks the template language.
    ``delivery_id`` is the idempotency key: the same notification keeps it across retries and
    dispatcher restarts, so a receiver (or the channel) can drop a repeat. ``attempt`` counts the
    tries so far (1 on the first).

    ``unit_name`` is the unit's name in the registry (None when the registry does not know the unit:
    messages then show the unit id alone). ``folded`` counts the repeats of the alert this message
    reports instead of sending each: those folded into it while it waited to be sent, and on a later
    message those folded after the previous message to the same recipient had gone (see
    ``alerts/README.md``, *Lifecycle*)."""

    alert: Alert
    kind: NotificationKind
    recipient: str | None
    delivery_id: str
    lang: Lang = "zh"
    attempt: int = 1
    unit_name: str | None = None
    folded: int = 0
