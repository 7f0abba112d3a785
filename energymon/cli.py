"""The `energymon` command line: one entry point for every part."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from energymon.settings import Settings, load

if TYPE_CHECKING:
    from energy.registry import UnitInfo

app = typer.Typer(
    help="energymon: online energy-consumption monitoring of key energy-using units.",
    no_args_is_help=True,
    add_completion=False,
)
alerts_app = typer.Typer(help="Alert delivery.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
registry_app = typer.Typer(
    help="Registry files: units, meters, products, targets (YAML).", no_args_is_help=True
)
app.add_typer(registry_app, name="registry")
influx_app = typer.Typer(help="InfluxDB: database, retention policies and rollups.", no_args_is_help=True)
app.add_typer(influx_app, name="influx")
grafana_app = typer.Typer(
    help="Grafana dashboards as code: generate the JSON, push it.", no_args_is_help=True
)
app.add_typer(grafana_app, name="grafana")


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


@app.command()
def bench(
    units: Annotated[int | None, typer.Option(help="Units of the generated fleet [2000; quick 200].")] = None,
    meters: Annotated[int | None, typer.Option(help="Meters per unit [50].")] = None,
    per_message: Annotated[int | None, typer.Option(help="Readings per message [50].")] = None,
    rate: Annotated[float | None, typer.Option(help="Fixed offered load, readings/s [10000].")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds of each paced run [30; quick 10].")] = None,
    backlog_minutes: Annotated[
        int | None, typer.Option(help="Minutes of fleet readings in the saturation backlog [30; quick 15].")
    ] = None,
    quick: Annotated[bool, typer.Option(help="A small fleet and short runs (under 3 minutes).")] = False,
    peers: Annotated[bool, typer.Option(help="Run the naive and Quix Streams peers too.")] = True,
    profile: Annotated[
        Path | None, typer.Option(help="Profile the worker with pyinstrument into this file (.html/.txt).")
    ] = None,
    configured: Annotated[
        bool,
        typer.Option(help="Use the configured broker and InfluxDB (a test cluster: it gets the fleet)."),
    ] = False,
) -> None:
    """Benchmark the real pipeline on a generated fleet against two peers (BENCHMARKS.md); the last
    line is `energymon end-to-end: N readings/s`."""
    from bench.runner import resolve_options, run_bench

    settings = _settings()
    try:
        options = resolve_options(
            quick,
            units=units,
            meters=meters,
            per_message=per_message,
            rate=rate,
            duration_s=duration,
            backlog_minutes=backlog_minutes,
            peers=peers,
            profile=profile.resolve() if profile else None,
            configured=configured,
        )
    except ValueError as exc:
        typer.echo(f"energymon bench: {exc}", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(run_bench(settings, options))


@alerts_app.command("run")
def alerts_run() -> None:
    """Run the alert dispatcher: consume `alerts`, route them, deliver them through the outbox
    (and serve the alerts HTTP API when alerts.api_port is set)."""
    from alerts.dispatcher import run_dispatcher

    settings = _settings()
    _logging(settings)
    routing = _routing(settings)
    try:
        run_dispatcher(settings, _stop_event(), routing)
    except ValueError as exc:  # a channel's options, the API without a token
        typer.echo(f"energymon alerts run: {exc}", err=True)
        raise typer.Exit(2) from exc


if TYPE_CHECKING:
    from alerts.outbox import Outbox
    from alerts.routing import RoutingConfig


def _routing(settings: Settings) -> RoutingConfig | None:
    """The routing file of the settings (None when unset); every problem on stderr, exit 2."""
    path = settings.alerts.routing_file
    return None if path is None else _routing_at(path, "alerts")


def _routing_at(path: Path, command: str) -> RoutingConfig:
    """The routing file at ``path``; every problem on stderr and exit code 2 when it is not valid."""
    from energymon.routing_file import RoutingError, load_routing

    try:
        return load_routing(path)
    except RoutingError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"energymon {command}: {_count(len(exc.problems), 'problem')} in {path}", err=True)
        raise typer.Exit(2) from exc


def _outbox() -> Outbox:
    """The dispatcher's outbox file (this machine's), opened directly."""
    from alerts.dispatcher import outbox_path
    from alerts.outbox import Outbox

    path = outbox_path(_settings())
    if not path.exists():
        typer.echo(f"energymon alerts: no outbox at {path} (has `energymon alerts run` run here?)", err=True)
        raise typer.Exit(1)
    return Outbox(path)


@alerts_app.command("list")
def alerts_list(
    open_only: Annotated[bool, typer.Option("--open", help="Only raised or updated alerts.")] = False,
    unit: Annotated[str | None, typer.Option(help="Only this unit's alerts.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many alerts.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, as GET /v1/alerts answers.")] = False,
) -> None:
    """Alerts (latest change first), their notifications and every delivery attempt."""
    from alerts.actions import alert_json

    outbox = _outbox()
    try:
        views = [alert_json(v) for v in outbox.alerts(open_only=open_only, unit=unit, limit=limit)]
    finally:
        outbox.close()
    if as_json:
        typer.echo(json.dumps({"alerts": views}, indent=2, ensure_ascii=False))
        return
    for a in views:
        flags = [
            f"folded {a['folded']}" if a["folded"] else "",
            f"acked by {a['acked_by'] or '?'}" if a["acked_at_ms"] else "",
            f"silenced until {_when(a['silenced_until_ms'])}" if a["silenced_until_ms"] else "",
            "escalated" if a["escalated"] else "",
        ]
        name = f" {a['unit_name']}" if a["unit_name"] else ""
        head = f"{a['key']}{name}  {a['state']} {a['severity']} (peak {a['peak']})"
        typer.echo(f"{head}  {' '.join(f for f in flags if f)}".rstrip())
        for n in a["notifications"]:
            to = f"{n['channel']}" + (f" <{n['recipient']}>" if n["recipient"] else "")
            status = f"{n['status']} after {n['attempts']} attempt(s)"
            if n["folded"]:
                status += f", reports {n['folded']} repeat(s)"
            typer.echo(f"  {n['kind']:<9} → {to}: {status}  id {n['delivery_id'][:12]}")
            for h in n["history"]:
                detail = f": {h['detail']}" if h["detail"] else ""
                typer.echo(f"      #{h['attempt']} {_when(h['at_ms'])} {h['outcome']}{detail}")
    typer.echo(_count(len(views), "alert"))


def _when(ms: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")


@alerts_app.command("ack")
def alerts_ack(
    key: Annotated[str, typer.Argument(help="The alert key (unit|rule|indicator).")],
    by: Annotated[str | None, typer.Option(help="Who acknowledges.")] = None,
) -> None:
    """Acknowledge an alert: its escalation is cancelled (acts on this machine's outbox file)."""
    from alerts.actions import acknowledge

    outbox = _outbox()
    try:
        found = acknowledge(outbox, key, by)
    finally:
        outbox.close()
    if not found:
        typer.echo(f"energymon alerts ack: no alert {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"acknowledged {key}" + (f" by {by}" if by else ""))


@alerts_app.command("silence")
def alerts_silence(
    key: Annotated[str, typer.Argument(help="The alert key (unit|rule|indicator).")],
    duration: Annotated[str, typer.Option("--for", help="How long: 90s, 30m, 2h, 1d.")],
) -> None:
    """Silence an alert: nothing is sent about it until then, its changes are still recorded."""
    from alerts.actions import silence
    from alerts.lifecycle import parse_duration_ms

    try:
        duration_ms = parse_duration_ms(duration)
    except ValueError as exc:
        typer.echo(f"energymon alerts silence: {exc}", err=True)
        raise typer.Exit(2) from exc
    outbox = _outbox()
    try:
        until = silence(outbox, key, duration_ms)
    finally:
        outbox.close()
    if until is None:
        typer.echo(f"energymon alerts silence: no alert {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"silenced {key} until {_when(until)}")


RegistryPath = Annotated[
    Path, typer.Argument(help="A registry YAML file, or a directory of *.yaml / *.yml files.")
]


def _load_registry(path: Path, command: str, channels: Collection[str] | None = None) -> list[UnitInfo]:
    """The registry at ``path`` (contacts checked against ``channels`` when given); every problem on
    stderr and exit code 2 when it is not valid."""
    from energymon.registry_files import RegistryError, load_registry

    try:
        return load_registry(path, channels)
    except RegistryError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        summary = f"energymon registry {command}: {_count(len(exc.problems), 'problem')} in {path}"
        typer.echo(summary, err=True)
        raise typer.Exit(2) from exc


@registry_app.command("check")
def registry_check(
    path: RegistryPath,
    routing_file: Annotated[
        Path | None,
        typer.Option(
            "--routing",
            help="Alert routing file whose channels the contacts must name (default: alerts.routing_file).",
        ),
    ] = None,
) -> None:
    """Validate registry files and print a summary of their units (exit 2 with every problem).

    With a routing file (``--routing`` or the setting alerts.routing_file), every contact must name
    one of its channels."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    routing_file = routing_file or _settings().alerts.routing_file
    routing = _routing_at(routing_file, "registry check") if routing_file else None
    units = _load_registry(path, "check", list(routing.channels) if routing else None)
    table = Table(
        title=f"registry {path}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
        show_edge=False,
    )
    table.add_column("unit", no_wrap=True)
    table.add_column("industry", no_wrap=True)
    table.add_column("region", no_wrap=True)
    table.add_column("meters", justify="right", no_wrap=True)
    table.add_column("products")
    table.add_column("targets", no_wrap=True)
    for u in units:
        excluded = sum(1 for m in u.meters if m.excluded)
        table.add_row(
            u.unit_id,
            u.industry,
            f"{u.region} {u.grid_region}",
            f"{len(u.meters)}" + (f" ({excluded} excl.)" if excluded else ""),
            ", ".join(p.name for p in u.products) or "-",
            " ".join(str(t.year) for t in sorted(u.targets, key=lambda t: t.year)) or "-",
        )
    Console().print(table)
    meters = sum(len(u.meters) for u in units)
    products = sum(len(u.products) for u in units)
    years = sorted({t.year for u in units for t in u.targets})
    contacts = sum(len(u.contacts) for u in units)
    if routing_file:
        typer.echo(f"{_count(contacts, 'contact')}: channels checked against {routing_file}")
    elif contacts:
        unchecked = "channels not checked (no alerts.routing_file; see --routing)"
        typer.echo(f"{_count(contacts, 'contact')}: {unchecked}")
    typer.echo(
        f"{_count(len(units), 'unit')}, {_count(meters, 'meter')}, {_count(products, 'product')}, "
        f"target years {', '.join(map(str, years)) or 'none'}: OK"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


@registry_app.command("load")
def registry_load(path: RegistryPath) -> None:
    """Validate registry files, then publish each unit to the compacted `registry` topic (key unit_id).

    Running workers apply a unit's new record as soon as it arrives; no restart is needed.
    """
    from collectors.publisher import Publisher, PublishError
    from energy.topics import REGISTRY

    units = _load_registry(path, "load")
    settings = _settings()
    _logging(settings)
    try:
        with Publisher(settings.kafka, client_id="energymon-registry") as publisher:
            for info in units:
                publisher.send(REGISTRY, info.unit_id, info.to_json())
                if settings.kafka.tansu:
                    publisher.flush()  # one record per batch on the local tansu broker
    except (PublishError, RuntimeError) as exc:
        typer.echo(f"energymon registry load: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"published {len(units)} registry records from {path} to `{REGISTRY}`")


@registry_app.command("show")
def registry_show(
    unit_id: Annotated[str, typer.Argument(help="The unit to show.")],
    path: Annotated[Path, typer.Option("--path", help="Registry file or directory.")],
) -> None:
    """Print one unit of registry files as the JSON record `registry load` would publish."""
    units = _load_registry(path, "show")
    for info in units:
        if info.unit_id == unit_id:
            typer.echo(json.dumps(info.model_dump(), indent=2, ensure_ascii=False))
            return
    typer.echo(f"energymon registry show: no unit {unit_id!r} in {path}", err=True)
    raise typer.Exit(1)


output_app = typer.Typer(
    help="Production output and output value (intensity denominators).", no_args_is_help=True
)
app.add_typer(output_app, name="output")


@output_app.command("add")
def output_add(
    unit_id: Annotated[str, typer.Argument(help="The unit's code.")],
    at: Annotated[str, typer.Option(help="End of the period the output covers, ISO-8601 with offset.")],
    value: Annotated[float | None, typer.Option(help="Output value in 万元 (10⁴ yuan).")] = None,
    product: Annotated[str | None, typer.Option(help="Product id (registry) of --quantity.")] = None,
    quantity: Annotated[float | None, typer.Option(help="Quantity of --product, in its uom.")] = None,
) -> None:
    """Publish one output item to `output` (sending the same product and --at again replaces it)."""
    import time

    from pydantic import ValidationError as PydanticValidationError

    from collectors.publisher import Publisher
    from energy import topics
    from energy.output import OutputItem, output_message

    settings = _settings()
    item = {"ts": at, "product_id": product, "quantity": quantity, "value_10k_yuan": value}
    try:
        OutputItem.model_validate(item)
    except PydanticValidationError as exc:
        typer.echo(f"energymon output add: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from exc
    with Publisher(settings.kafka, client_id="energymon-output") as publisher:
        raw = output_message(unit_id, "cli", time.time_ns() // 1_000_000, [item])
        publisher.send(topics.OUTPUT, unit_id, raw)
        publisher.flush()
    typer.echo(f"published output of {unit_id} for the period ending {at}")


collect_app = typer.Typer(
    help="The site collector: read meters, buffer locally, forward to Kafka (site.yaml).",
    invoke_without_command=True,
)
app.add_typer(collect_app, name="collect")
SiteConfigPath = Annotated[Path, typer.Option("--config", "-c", help="The site config (site.yaml).")]

if TYPE_CHECKING:
    from collectors.site_config import SiteConfig


def _site_config(path: Path, command: str) -> SiteConfig:
    """The site config at ``path``; every problem on stderr and exit code 2 when it is not valid."""
    from collectors.site_config import ConfigError, load_site_config

    try:
        return load_site_config(path, _settings().kafka)
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"energymon {command}: {_count(len(exc.problems), 'problem')} in {path}", err=True)
        raise typer.Exit(2) from exc


@collect_app.callback()
def collect(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="The site config.")] = None,
) -> None:
    """Run the collector of a site until SIGINT/SIGTERM (without a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        typer.echo("energymon collect: --config site.yaml is required", err=True)
        raise typer.Exit(2)
    import asyncio

    from collectors.agent import run_agent

    site = _site_config(config, "collect")
    settings = _settings()
    _logging(settings)
    if settings.log_level != "DEBUG":  # the forwarder logs outages itself, once per attempt
        logging.getLogger("kafka").setLevel(logging.CRITICAL)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(site, stop)

    asyncio.run(main())


@collect_app.command("check")
def collect_check(
    config: SiteConfigPath,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each source.")] = 10.0,
) -> None:
    """Validate a site config, read each source once and print what it got (exit 1 if one failed)."""
    import asyncio

    from collectors.check import check_sources

    site = _site_config(config, "collect check")
    typer.echo(f"{config}: site {site.site.id}, {_count(len(site.sources), 'source')}: config OK")
    failed = asyncio.run(check_sources(site, timeout, typer.echo))
    raise typer.Exit(1 if failed else 0)


@collect_app.command("status")
def collect_status(config: SiteConfigPath) -> None:
    """Print the backlog, the oldest unsent message and the last success per source."""
    from collectors.check import status_lines

    site = _site_config(config, "collect status")
    for line in status_lines(site):
        typer.echo(line)


@influx_app.command("init")
def influx_init() -> None:
    """Create the database, retention policies (raw, hourly, daily) and rollup continuous queries on
    InfluxDB 1.x, as configured; running it again changes nothing and says so."""
    from streams.sinks.retention import init_influx

    settings = _settings()
    try:
        done = init_influx(settings)
    except OSError as exc:  # InfluxError is a RuntimeError; connection errors are OSErrors
        where = settings.influx.base_url()
        typer.echo(f"energymon influx init: cannot reach InfluxDB at {where}: {exc}", err=True)
        raise typer.Exit(1) from exc
    except RuntimeError as exc:
        typer.echo(f"energymon influx init: {exc}", err=True)
        raise typer.Exit(1) from exc
    for line in done:
        typer.echo(line)


@grafana_app.command("generate")
def grafana_generate(
    out: Annotated[
        Path | None, typer.Option(help="Folder to write into (default: grafana/dashboards of the package).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when a committed dashboard differs.")
    ] = False,
) -> None:
    """Build the dashboards from grafana/boards and write them as <uid>.json (sorted keys, stable uids)."""
    from grafana.generate import DASHBOARDS, documents, generate, render

    folder = out or DASHBOARDS
    if check:
        stale = [
            uid
            for uid, doc in sorted(documents().items())
            if not (folder / f"{uid}.json").is_file()
            or (folder / f"{uid}.json").read_text(encoding="utf-8") != render(doc)
        ]
        for uid in stale:
            typer.echo(f"{folder / (uid + '.json')}: differs from what grafana/boards generates", err=True)
        if stale:
            raise typer.Exit(1)
        typer.echo(f"all dashboards in {folder} are up to date")
        return
    for path in generate(folder):
        typer.echo(f"wrote {path}")


@grafana_app.command("push")
def grafana_push() -> None:
    """Create or update the folder, the InfluxDB datasource and the dashboards in the configured
    Grafana over its HTTP API (idempotent); prints what changed."""
    from grafana_client.client import GrafanaException

    from grafana.push import push

    settings = _settings()
    _logging(settings)
    try:
        report = push(settings)
    except (GrafanaException, OSError, RuntimeError) as exc:
        typer.echo(f"energymon grafana push: {exc}", err=True)
        raise typer.Exit(1) from exc
    for line in report:
        typer.echo(line)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
