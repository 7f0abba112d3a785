"""The `energymon` command line: one entry point for every part."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from energymon.settings import Settings, load

app = typer.Typer(
    help="energymon: online energy-consumption monitoring of key energy-using units.",
    no_args_is_help=True,
    add_completion=False,
)
alerts_app = typer.Typer(help="Alert delivery.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


def _settings() -> Settings:
    try:
        return load()
    except (ValidationError, ValueError) as exc:
        typer.echo(f"energymon: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _stop_event() -> threading.Event:
    """An event set by SIGINT/SIGTERM, for the blocking loops of collectors and dispatchers."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@app.command()
def config() -> None:
    """Print the effective settings as JSON, secrets masked."""
    typer.echo(json.dumps(_settings().masked(), indent=2, ensure_ascii=False))


@app.command()
def up(
    simulator: Annotated[bool, typer.Option(help="Start the simulated fleet.")] = True,
) -> None:
    """Start the local stack (broker, InfluxDB, worker, alert dispatcher, simulator) with a live view."""
    from energymon.up import run_stack

    settings = _settings()
    raise typer.Exit(run_stack(settings, with_simulator=simulator))


@app.command()
def init() -> None:
    """Create the Kafka topics and the InfluxDB database (idempotent)."""
    from energymon.up import init_backends

    settings = _settings()
    _logging(settings)
    init_backends(settings)
    typer.echo("topics and database ready")


@app.command()
def worker() -> None:
    """Run a Faust stream worker (consumes `readings`, writes InfluxDB, emits alerts)."""
    from streams.app import run_worker

    settings = _settings()
    sys.argv = [sys.argv[0]]  # Faust's worker parses sys.argv; our options are settings.
    run_worker(settings)


@app.command()
def simulate() -> None:
    """Run the simulated fleet: publish readings messages to `readings` until stopped."""
    from collectors.simulator import run_simulator

    settings = _settings()
    _logging(settings)
    run_simulator(settings, _stop_event())


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="JSON-lines file, one readings message per line.")],
) -> None:
    """Publish a JSON-lines file of readings messages to `readings`, each line verbatim."""
    from collectors.publisher import Publisher
    from collectors.replay import replay_file

    settings = _settings()
    _logging(settings)
    if not file.is_file():
        typer.echo(f"energymon replay: no such file: {file}", err=True)
        raise typer.Exit(2)
    with Publisher(settings.kafka) as publisher:
        result = replay_file(file, publisher)
    typer.echo(f"published {result.messages} messages ({result.bytes} bytes) from {file}")


@alerts_app.command("run")
def alerts_run() -> None:
    """Run the alert dispatcher: consume `alerts`, log them, POST them to the configured webhook."""
    from alerts.dispatcher import run_dispatcher

    settings = _settings()
    _logging(settings)
    run_dispatcher(settings, _stop_event())


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
