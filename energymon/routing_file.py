"""The alert routing file: YAML validated into :class:`alerts.routing.RoutingConfig`, every problem
reported as ``file:line: field: message`` (see alerts/README.md for the format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from alerts.routing import RoutingConfig
from energy.registry import ContactInfo
from energymon.registry_files import Problem, RegistryError, YamlFile, read_yaml

__all__ = ["RoutingError", "load_routing"]

RoutingError = RegistryError
"""Raised with every problem of a routing file (``problems``; one per line of ``str(exc)``)."""


def load_routing(path: Path) -> RoutingConfig:
    """The routing at ``path``; raises :class:`RoutingError` with every problem found."""
    f = YamlFile(str(path))
    data, ok = read_yaml(path, f, "a mapping with `channels:` and `regions:`")
    config = _validate(data, f) if ok else None
    if f.problems or config is None:
        raise RoutingError(f.problems or [Problem(f.name, None, None, "not a routing file")])
    return config


def _validate(data: Any, f: YamlFile) -> RoutingConfig | None:
    try:
        config = RoutingConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            f.problem(tuple(err["loc"]), err["msg"])
        return None
    raw_channels = data.get("channels") or {}
    for name, spec in raw_channels.items():
        if isinstance(spec, dict) and "secrets" in spec:
            f.problem(("channels", name, "secrets"), "give secrets as <name>_file or <name>_env options")
        try:
            config.channels[name].split()
        except ValueError as exc:
            f.problem(("channels", name, "options"), str(exc))
    lists: list[tuple[tuple[str, ...], tuple[ContactInfo, ...]]] = [(("always",), config.always)]
    for region, route in config.regions.items():
        lists += [
            (("regions", region, "duty"), route.duty),
            (("regions", region, "escalation"), route.escalation),
        ]
    for loc, contacts in lists:
        for i, contact in enumerate(contacts):
            if contact.channel not in config.channels:
                known = ", ".join(config.channels) or "none"
                f.problem((*loc, i, "channel"), f"unknown channel {contact.channel!r} (channels: {known})")
    return config
