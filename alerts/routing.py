"""Who hears about an alert: the unit's own contacts, its region's duty contacts and escalation list.

A :class:`RoutingConfig` (the routing file, read by ``energymon/routing_file.py``) names the channels
(``kind`` + ``options``; secrets as ``<name>_file`` or ``<name>_env`` options) and, per region (the
unit's province, ``UnitInfo.region``; ``"*"`` for any region not listed), the monitoring centre's
``duty`` contacts (every red alert of the region's units) and its ``escalation`` list (red alerts
nobody acknowledged in time). ``always`` contacts hear every alert at or above their min severity.
A unit's own ``contacts`` (registry) hear its alerts at or above their min severity.

:func:`targets` is pure: the lifecycle says at which severity a notification is routed (a resolve
at the episode's peak, so everyone told about an alert also hears that it ended).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from energy.alert import Severity
from energy.registry import ContactInfo, UnitInfo

from .lifecycle import rank
from .notification import Lang, NotificationKind

#: Region key of the entry that applies to units of a region without one of its own.
ANY_REGION = "*"


class ChannelSpec(BaseModel):
    """One named channel: its ``kind`` (log, webhook, dingtalk, wecom, email, kafka) and ``options``.

    An option named ``<name>_file`` (a path) or ``<name>_env`` (an environment variable) gives the
    secret ``<name>`` (e.g. ``secret_file: /run/secrets/hook`` → secret ``secret``); secrets never
    appear in the options themselves. Options in :data:`PATH_OPTIONS` (``ca_file``) name a file the
    channel opens itself: they stay plain options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(min_length=1, max_length=32)
    options: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict, exclude=True, repr=False)
    """Secrets given in code (the settings' webhook secret); a routing file may not set them."""

    def split(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(plain options, secrets read from their files or environment variables).

        Raises ValueError naming the option when a file cannot be read or a variable is unset."""
        plain: dict[str, Any] = {}
        secrets = {name: value.get_secret_value() for name, value in self.secrets.items()}
        for key, value in self.options.items():
            if key in PATH_OPTIONS:
                plain[key] = value
            elif key.endswith("_file") and value is not None:
                try:
                    secrets[key.removesuffix("_file")] = Path(value).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ValueError(f"options.{key}: cannot read {value}: {exc.strerror}") from exc
            elif key.endswith("_env") and value is not None:
                secret = os.environ.get(str(value))
                if secret is None:
                    raise ValueError(f"options.{key}: environment variable {value} is not set")
                secrets[key.removesuffix("_env")] = secret
            else:
                plain[key] = value
        return plain, secrets


#: Channel options that are paths for the channel itself, not secrets to read: the e-mail channel's
#: ``ca_file`` (a CA bundle to trust besides the system's).
PATH_OPTIONS = frozenset({"ca_file"})


class RegionRoute(BaseModel):
    """A region's monitoring centre: ``duty`` contacts (all red alerts of the region's units) and
    the ``escalation`` list (red alerts not acknowledged in time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duty: tuple[ContactInfo, ...] = ()
    escalation: tuple[ContactInfo, ...] = ()


class RoutingConfig(BaseModel):
    """The routing file: named channels, per-region routes and contacts that hear everything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channels: dict[str, ChannelSpec] = Field(default_factory=dict)
    regions: dict[str, RegionRoute] = Field(default_factory=dict)
    always: tuple[ContactInfo, ...] = ()

    def region(self, name: str | None) -> RegionRoute:
        """The route of region ``name`` (or of ``"*"``; empty when neither is configured)."""
        route = self.regions.get(name or "") or self.regions.get(ANY_REGION)
        return route or RegionRoute()


@dataclass(frozen=True, slots=True)
class Target:
    """One recipient of a notification: the named ``channel``, its ``recipient`` address (None for a
    robot or webhook), the template ``lang`` and the contacts' ``names`` (for lists and logs)."""

    channel: str
    recipient: str | None
    lang: Lang
    names: tuple[str, ...]


def targets(
    routing: RoutingConfig,
    unit: UnitInfo | None,
    kind: NotificationKind,
    route_at: Severity,
) -> list[Target]:
    """The recipients of a notification of ``kind`` about an alert of ``unit`` (None: not in the
    registry), routed at severity ``route_at``; one per (channel, recipient), in contact order."""
    region = routing.region(unit.region if unit else None)
    if kind == "escalated":
        contacts: list[ContactInfo] = list(region.escalation)
    else:
        contacts = [c for c in (*routing.always, *(unit.contacts if unit else ())) if _hears(c, route_at)]
        if route_at == "red":
            contacts += region.duty
    return merge(contacts)


def _hears(contact: ContactInfo, severity: Severity) -> bool:
    return rank(severity) >= rank(contact.min_severity)


def merge(contacts: Iterable[ContactInfo]) -> list[Target]:
    """One target per (channel, recipient): names joined, languages merged (``both`` when they
    differ)."""
    out: dict[tuple[str, str | None], Target] = {}
    for c in contacts:
        where = (c.channel, c.recipient)
        seen = out.get(where)
        if seen is None:
            out[where] = Target(c.channel, c.recipient, c.lang, (c.name,))
        else:
            lang: Lang = seen.lang if seen.lang == c.lang else "both"
            out[where] = Target(c.channel, c.recipient, lang, (*seen.names, c.name))
    return list(out.values())


def default_routing(webhook_url: str | None, webhook_secret: str | None, timeout_s: float) -> RoutingConfig:
    """Routing without a routing file: every alert (yellow and up, and their resolves) to the log,
    and to the webhook of ``alerts.webhook_url`` when it is set (the first cut's behaviour)."""
    channels = {"log": ChannelSpec(kind="log")}
    always = [ContactInfo(name="log", channel="log")]
    if webhook_url:
        options: dict[str, Any] = {"url": webhook_url, "timeout_s": timeout_s}
        secrets = {"secret": SecretStr(webhook_secret)} if webhook_secret else {}
        channels["webhook"] = ChannelSpec(kind="webhook", options=options, secrets=secrets)
        always.append(ContactInfo(name="webhook", channel="webhook"))
    return RoutingConfig(channels=channels, always=tuple(always))
