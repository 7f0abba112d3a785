"""The MQTT source plugin: one broker connection (aiomqtt), its subscriptions, reconnection with
backoff, one ``emit`` per payload (README.md)."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl

import aiomqtt

from collectors.sources.base import Emit, Source, SourceError, SourceReading
from collectors.sources.context import SourceContext
from collectors.sources.mqtt.config import Config
from collectors.sources.mqtt.mapping import PayloadMapper
from collectors.sources.push import PushCounters, first_payload, log_rejections, read_secret

__all__ = ["SOURCE_TYPES", "Config", "MqttSource", "create"]

SOURCE_TYPES = ("mqtt",)

log = logging.getLogger("energymon.collect")


class Backoff:
    """Reconnect delays: ``min_s``, doubling up to ``max_s`` (seconds, ±20 % jitter so that the
    collectors of many sites do not knock at once); :meth:`reset` after a good connection."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self._min_s, self._max_s = min_s, max_s
        self._next_s = min_s
        self.failures = 0

    def reset(self) -> None:
        self._next_s = self._min_s
        self.failures = 0

    def next_delay(self) -> float:
        delay = self._next_s * random.uniform(0.8, 1.2)
        self._next_s = min(self._next_s * 2, self._max_s)
        self.failures += 1
        return delay


class MqttSource:
    """Subscribes to the configured topics and emits each payload's readings. ``subscribed`` is
    set while subscribed (cleared when the connection drops)."""

    def __init__(self, config: Config, context: SourceContext) -> None:
        self.name = config.name
        self.counters = PushCounters()
        self.subscribed = asyncio.Event()
        self._config = config
        self._password = read_secret(config.password, config.password_file)
        self._tls = _tls_context(config)
        self._mapper = PayloadMapper(config.subscriptions, context.clock)
        self._identifier = config.client_id or f"energymon-{context.site_id}-{config.name}"
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        self._broker = f"{config.host}:{config.broker_port}"

    async def run(self, emit: Emit) -> None:
        """Stay subscribed until cancelled; a lost or refused connection is logged and retried."""
        while True:
            try:
                await self._session(emit, self._identifier, self._config.clean_session)
            except aiomqtt.MqttError as exc:
                delay = self._backoff.next_delay()
                why = f"MQTT broker {self._broker}: {exc}"
                log.warning(
                    "source %s: %s; reconnecting in %.1f s (failure %d)",
                    self.name,
                    why,
                    delay,
                    self._backoff.failures,
                )
                await asyncio.sleep(delay)

    async def read_once(self, timeout_s: float = 10.0) -> list[SourceReading]:
        """The first payload's readings within ``timeout_s`` seconds, from a separate clean session
        (``<client_id>-check``), so that a check does not take what the broker keeps for the agent."""

        async def one_session(emit: Emit) -> None:
            try:
                await self._session(emit, f"{self._identifier}-check", clean_session=True)
            except aiomqtt.MqttError as exc:
                raise SourceError(f"source {self.name}: MQTT broker {self._broker}: {exc}") from exc

        topics = ", ".join(self._mapper.topic_filters)
        return await first_payload(one_session, timeout_s, f"waiting for MQTT {topics} on {self._broker}")

    async def close(self) -> None:
        """Nothing to release: the connection closes when :meth:`run` is cancelled."""

    async def _session(self, emit: Emit, identifier: str, clean_session: bool) -> None:
        c = self._config
        client = aiomqtt.Client(
            c.host,
            c.broker_port,
            username=c.username,
            password=self._password,
            identifier=identifier,
            clean_session=clean_session,
            tls_context=self._tls,
            keepalive=c.keepalive_s,
            timeout=c.connect_timeout_s,
        )
        try:
            async with client:
                filters: list[tuple[str, int]] = [(topic, c.qos) for topic in self._mapper.topic_filters]
                await client.subscribe(filters)
                if self._backoff.failures:
                    log.info("source %s: reconnected to %s", self.name, self._broker)
                self._backoff.reset()
                self.subscribed.set()
                topics = self._mapper.topic_filters
                log.info("source %s: subscribed to %s on %s", self.name, topics, self._broker)
                async for message in client.messages:
                    await self._deliver(message, emit)
        finally:
            self.subscribed.clear()

    async def _deliver(self, message: aiomqtt.Message, emit: Emit) -> None:
        """Map one payload and emit its readings; a bad payload is logged and counted, never raised."""
        topic = message.topic.value
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        self.counters.payloads += 1
        readings, rejections = self._mapper.map(topic, payload)
        log_rejections(self.name, f"topic {topic}", rejections)
        if rejections and not readings:
            self.counters.rejected_payloads += 1
        else:
            self.counters.rejected_readings += len(rejections)
        if readings:
            self.counters.readings += len(readings)
            await emit(readings)


def _tls_context(config: Config) -> ssl.SSLContext | None:
    if config.tls is None:
        return None
    try:
        return config.tls.ssl_context()
    except ValueError as exc:
        raise SourceError(f"source {config.name}: {exc}") from exc


def create(config: Config, context: SourceContext) -> Source:
    """The plugin entry point."""
    return MqttSource(config, context)
