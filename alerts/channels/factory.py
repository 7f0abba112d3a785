"""Make a channel from its routing-file entry: ``kind``, plain ``options`` and ``secrets``.

- ``log``: no options.
- ``webhook``: ``url``, ``timeout_s`` (5); secret ``secret`` (HMAC key, optional).
- ``dingtalk``: ``url`` (with ``access_token``), ``timeout_s`` (5); secret ``secret`` (signing, optional).
- ``wecom``: ``url`` (with ``key``), ``timeout_s`` (5).
- ``email``: ``host``, ``sender``, ``security`` (``starttls``; or ``tls``, ``none``), ``port`` (587,
  465, 25 by security), ``username``, ``to`` (used when a notification has no recipient),
  ``timeout_s`` (10), ``ca_file``; secret ``password``.
- ``kafka``: ``bootstrap_servers``, ``topic``, ``timeout_s`` (10), ``producer_options`` (kafka-python);
  secrets ``sasl_plain_password``, ``ssl_password`` (added to the producer options, never inline in them).

A URL may be given as a secret instead of an option (``url_file``/``url_env`` in the routing file):
chat-robot URLs carry their token. Unknown options, missing ones and wrong types raise ValueError
naming them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .base import Channel
from .dingtalk import DingTalkChannel
from .email import EmailChannel
from .kafka_forward import KafkaForwardChannel
from .log import LogChannel
from .webhook import WebhookChannel
from .wecom import WeComChannel


class Options:
    """Typed access to a channel's options; :meth:`done` rejects the ones nobody asked for."""

    def __init__(self, kind: str, options: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        self.kind = kind
        self._options = dict(options)
        self._secrets = secrets
        self._used: set[str] = set()

    def get(self, name: str, types: type | tuple[type, ...], default: Any = None) -> Any:
        """Option ``name`` (None-valued counts as unset), checked against ``types``."""
        self._used.add(name)
        value = self._options.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, types):  # no option is a flag
            raise ValueError(f"{self.kind} channel: option {name!r} has the wrong type")
        return value

    def required(self, name: str, types: type | tuple[type, ...]) -> Any:
        """Option ``name``, or the secret of that name; ValueError when neither is given."""
        value = self._secrets.get(name) or self.get(name, types)
        self._used.add(name)
        if value is None or value == "":
            raise ValueError(f"{self.kind} channel: option {name!r} is required")
        return value

    def number(self, name: str, default: float) -> float:
        """A positive number option."""
        return float(self.get(name, (int, float), default))

    def secret(self, name: str) -> str | None:
        """Secret ``name`` (from ``<name>_file`` / ``<name>_env``), if given."""
        return self._secrets.get(name) or None

    def done(self) -> None:
        """ValueError naming the options no builder used (typos)."""
        unknown = sorted(set(self._options) - self._used)
        if unknown:
            raise ValueError(f"{self.kind} channel: unknown option(s): {', '.join(unknown)}")


def _log(o: Options) -> Channel:
    return LogChannel()


def _webhook(o: Options) -> Channel:
    return WebhookChannel(o.required("url", str), o.secret("secret"), o.number("timeout_s", 5.0))


def _dingtalk(o: Options) -> Channel:
    return DingTalkChannel(o.required("url", str), o.secret("secret"), o.number("timeout_s", 5.0))


def _wecom(o: Options) -> Channel:
    return WeComChannel(o.required("url", str), o.number("timeout_s", 5.0))


def _email(o: Options) -> Channel:
    to = o.get("to", (str, list), ())
    return EmailChannel(
        o.required("host", str),
        o.required("sender", str),
        port=o.get("port", int),
        security=o.get("security", str, "starttls"),
        username=o.get("username", str),
        password=o.secret("password"),
        to=[to] if isinstance(to, str) else [str(t) for t in to],
        timeout_s=o.number("timeout_s", 10.0),
        ca_file=o.get("ca_file", str),
    )


#: kafka-python options that are secrets: channel secrets (``<name>_file``/``<name>_env``), never inline.
KAFKA_SECRET_OPTIONS = ("sasl_plain_password", "ssl_password")


def _kafka(o: Options) -> Channel:
    producer_options = dict(o.get("producer_options", dict) or {})
    inline = sorted(set(producer_options) & set(KAFKA_SECRET_OPTIONS))
    if inline:
        raise ValueError(
            f"kafka channel: producer_options {', '.join(inline)}: give secrets as <name>_file or <name>_env"
        )
    producer_options.update({name: o.secret(name) for name in KAFKA_SECRET_OPTIONS if o.secret(name)})
    return KafkaForwardChannel(
        o.required("bootstrap_servers", (str, list)),
        o.required("topic", str),
        o.number("timeout_s", 10.0),
        producer_options,
    )


BUILDERS: dict[str, Callable[[Options], Channel]] = {
    "log": _log,
    "webhook": _webhook,
    "dingtalk": _dingtalk,
    "wecom": _wecom,
    "email": _email,
    "kafka": _kafka,
}


def channel_from_config(kind: str, options: Mapping[str, Any], secrets: Mapping[str, str]) -> Channel:
    """The channel of ``kind`` made from ``options`` and ``secrets`` (ValueError when they are wrong)."""
    builder = BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"unknown channel kind {kind!r} (one of {', '.join(BUILDERS)})")
    o = Options(kind, options, secrets)
    channel = builder(o)
    o.done()
    return channel
