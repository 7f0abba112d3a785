"""`energymon up`: the local stack in one command.

Starts what the settings do not point at (the tansu broker, a private influxd under the state
directory), creates topics and the database, then runs the Faust worker, the alert dispatcher and
the simulator as child processes and shows a live view until Ctrl-C. On SIGINT/SIGTERM every child
is stopped, newest first, and nothing is left listening.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from energy import topics
from energymon.live import LiveView
from energymon.localstack.broker import TansuBroker, create_topics
from energymon.localstack.influxdb import LocalInfluxDB, create_database
from energymon.localstack.ports import pick_port
from energymon.localstack.process import ManagedProcess
from energymon.localstack.server import LocalServer
from energymon.settings import Settings
from streams.status import STATUS_FILE

#: Topic configs `init` sets on a real Kafka (tansu accepts and ignores them): the registry keeps the
#: newest record per unit; `readings` records carry the broker's append time, which the collectors'
#: clock check compares with their own (the worker uses each reading's own time, never this one).
TOPIC_CONFIGS = {
    topics.REGISTRY: {"cleanup.policy": "compact"},
    topics.READINGS: {"message.timestamp.type": "LogAppendTime"},
}
ALL_TOPICS = (topics.READINGS, topics.READINGS_REJECTED, topics.OUTPUT, topics.REGISTRY, topics.ALERTS)


def init_backends(settings: Settings) -> None:
    """Create the topics and the InfluxDB database (both idempotent)."""
    kafka = settings.kafka
    options = kafka.kafka_python_options()
    options.pop("bootstrap_servers")
    create_topics(
        kafka.servers(),
        ALL_TOPICS,
        kafka.topic_partitions,
        kafka.replication_factor,
        TOPIC_CONFIGS,
        **options,
    )
    influx = settings.influx
    create_database(
        influx.base_url(),
        influx.database,
        influx.username,
        influx.password.get_secret_value() if influx.password else None,
    )


@dataclass
class Stack:
    """What `up` started, so that it can all be stopped again."""

    servers: list[LocalServer] = field(default_factory=list)
    children: list[ManagedProcess] = field(default_factory=list)

    def stop(self) -> None:
        """Stop children newest first, then the servers."""
        for child in reversed(self.children):
            child.stop(15.0)
        for server in reversed(self.servers):
            server.stop()


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ENERGYMON_KAFKA__BOOTSTRAP_SERVERS=settings.kafka.servers(),
        ENERGYMON_KAFKA__TANSU="true" if settings.kafka.tansu else "false",
        ENERGYMON_INFLUX__URL=settings.influx.base_url(),
        ENERGYMON_STREAM__STORE=settings.stream.store,
        ENERGYMON_STATE_DIR=str(Path(settings.state_dir).resolve()),
        PYTHONUNBUFFERED="1",
    )
    return env


def _set_aside_outbox(state_dir: Path) -> None:
    """Move an earlier run's alert outbox (``<state_dir>/alerts``) to ``alerts.previous``: the fresh
    broker brings the same alert changes again, and that outbox would take them for repeats and send
    nothing (`energymon alerts list` lists the new run's)."""
    outbox = state_dir / "alerts"
    if outbox.exists():
        previous = state_dir / "alerts.previous"
        shutil.rmtree(previous, ignore_errors=True)
        outbox.rename(previous)


def run_stack(settings: Settings, with_simulator: bool = True) -> int:
    """Run the local stack until SIGINT/SIGTERM; returns the process exit code."""
    from rich.console import Console

    console = Console()
    state_dir = Path(settings.state_dir).resolve()
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # A status file left by an earlier run would show stale figures until the worker writes anew.
    (state_dir / STATUS_FILE).unlink(missing_ok=True)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    stack = Stack()
    started = time.monotonic()
    try:
        if not settings.kafka.bootstrap_servers:
            broker = TansuBroker(pick_port(settings.local.broker_port), logs / "tansu.log")
            console.print(f"starting tansu broker on {broker.bootstrap} …")
            broker.start()
            stack.servers.append(broker)
            settings.kafka.bootstrap_servers = broker.bootstrap
            settings.kafka.tansu = True
            # The broker keeps nothing across restarts, so neither may the tables.
            settings.stream.store = "memory://"
            if settings.alerts.outbox_file is None:
                _set_aside_outbox(state_dir)
        if not settings.influx.url:
            influxd = LocalInfluxDB(
                state_dir / "influxdb", pick_port(settings.local.influx_port), logs / "influxd.log"
            )
            console.print(f"starting influxd on {influxd.url} (data in {state_dir / 'influxdb'}) …")
            influxd.start()
            stack.servers.append(influxd)
            settings.influx.url = influxd.url
        init_backends(settings)

        env = _child_env(settings)
        python = sys.executable
        parts = [("worker", ["worker"]), ("alerts", ["alerts", "run"])]
        if with_simulator:
            parts.append(("simulator", ["simulate"]))
        for name, args in parts:
            child = ManagedProcess(name, [python, "-m", "energymon", *args], logs / f"{name}.log", env=env)
            child.start()
            stack.children.append(child)

        console.print(f"[bold]energymon is up[/] ({time.monotonic() - started:.1f} s)")
        console.print(f"  Kafka broker    {settings.kafka.bootstrap_servers}")
        console.print(f"  InfluxDB        {settings.influx.base_url()}  database {settings.influx.database}")
        web = settings.stream.web_port
        console.print(f"  Faust worker    {'web on 127.0.0.1:' + str(web) if web else 'no web server'}")
        console.print(f"  alert webhook   {settings.alerts.webhook_url or '(none: alerts are logged)'}")
        console.print(f"  logs            {logs}")
        console.print("  Ctrl-C stops everything.\n")
        LiveView(settings, stack.children, console).run(stop)
        return 0
    except (RuntimeError, TimeoutError, OSError) as exc:
        console.print(f"[red]energymon up failed:[/] {exc}")
        return 1
    finally:
        console.print("stopping …")
        stack.stop()
        console.print("stopped.")
