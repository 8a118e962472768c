"""Issue 13, what a new user's session broke, each at the level where it broke: the real command
against the local simulator (or, for the region, a local proxy that only records where boto3
meant to go), the ledger read back with sqlite3.

Items covered here: 5 (AWS_REGION), 6 (a killed sender and `Last run`), 8 (MaxPrice refused by
the simulator as AWS does), 9 (no endpoint password in the ledger or the report), and the
SIGTERM note."""

from __future__ import annotations

import os
import signal
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from campaign.simulator.server import Simulator, SimulatorConfig
from tests.helpers import Cli, campaign_process, write_csv

pytestmark = pytest.mark.slow

ORIGIN = "+12065550100"
SECRET = "s3cr3t-pw"


def recipients_csv(path: Path, n: int, name: str = "Sam") -> Path:
    lines = ["first_name,phone"] + [f"{name}{i},+1206555{i:04d}" for i in range(n)]
    return write_csv(path, "\n".join(lines) + "\n")


def make_campaign(run: Cli, tmp_path: Path, n: int, *extra: str) -> None:
    run("create", "c1", "-o", ORIGIN, "-m", "Hi {first_name}", "--no-window", *extra)  # any hour
    run("import", "c1", str(recipients_csv(tmp_path / "c1.csv", n)))


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# -- 5. AWS_REGION ---------------------------------------------------------------------------------


class ConnectRecorder(socketserver.ThreadingTCPServer):
    """An HTTPS proxy that records each CONNECT line and refuses it: where boto3 meant to go,
    without a packet leaving the machine."""

    daemon_threads = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        super().__init__(("127.0.0.1", 0), _RecordConnect)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RecordConnect(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1").strip()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        assert isinstance(self.server, ConnectRecorder)
        self.server.lines.append(line)
        self.wfile.write(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )


@pytest.fixture
def connect_recorder() -> Iterator[ConnectRecorder]:
    server = ConnectRecorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("environment", "region"),
    [
        pytest.param({"AWS_REGION": "eu-west-2"}, "eu-west-2", id="AWS_REGION alone"),
        pytest.param(
            {"AWS_REGION": "eu-west-2", "AWS_DEFAULT_REGION": "us-west-1"},
            "eu-west-2",
            id="AWS_REGION wins over AWS_DEFAULT_REGION",
        ),
        pytest.param({"AWS_DEFAULT_REGION": "us-west-1"}, "us-west-1", id="AWS_DEFAULT_REGION"),
    ],
)
def test_aws_region_is_honoured_by_send(
    run: Cli,
    tmp_path: Path,
    connect_recorder: ConnectRecorder,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    region: str,
) -> None:
    """`AWS_REGION=eu-west-2 campaign send c1` used to stop at "no AWS region: ... set AWS_REGION".
    With no --endpoint-url the client goes to AWS: the proxy sees which region it asked for."""
    make_campaign(run, tmp_path, 2)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    proc = campaign_process(
        "send", "c1", "--yes", env={**environment, "HTTPS_PROXY": connect_recorder.url}
    )
    try:
        wait_for(lambda: bool(connect_recorder.lines) or proc.poll() is not None)
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert "no AWS region" not in err
    assert connect_recorder.lines, err
    assert connect_recorder.lines[0].startswith(f"CONNECT sms-voice.{region}.amazonaws.com:443 ")


def test_without_any_region_send_says_so(
    run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_campaign(run, tmp_path, 2)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    result = run("send", "c1", "--yes", code=1)
    assert "no AWS region: pass --region or set AWS_REGION" in result.stderr


def test_the_event_queue_clients_take_aws_region_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from campaign.aws.sqs import make_client

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    assert make_client("sqs").meta.region_name == "eu-west-2"
    assert make_client("sns", region="ap-south-1").meta.region_name == "ap-south-1"


# -- 6. a dead sender is dead for every command; `Last run` says how it ended -----------------------


def test_a_killed_sender_is_dead_to_status_and_edit_and_last_run_says_so(
    run: Cli, tmp_path: Path
) -> None:
    with Simulator(SimulatorConfig(mps=500, latency_ms=300)) as sim:
        make_campaign(run, tmp_path, 200)
        proc = campaign_process("--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "20")
        wait_for(lambda: len(sim.accepted()) >= 3)
        # Alive: status shows it sending (the rule's other half).
        assert run.json("status", "c1", "--json")["sender"]["pid"] == proc.pid
        proc.kill()
        proc.communicate(timeout=30)
        # Well inside the 60 s heartbeat: only the pid tells it is dead.
        status = run.json("status", "c1", "--json")
        assert status["sender"] is None
        assert status["last_run"]["ended_at"] is None and status["last_run"]["crashed"] is True
        text = run("status", "c1").stdout
        assert "Sending now" not in text
        in_flight = status["counts"]["sending"]
        assert "Last run: " in text and ", crashed / killed while sending" in text
        if in_flight:
            assert f"{in_flight} recipient" in text and "marks them `unknown`" in text
        run("edit", "c1", "--ttl", "600")  # not refused: nobody is sending

        # The next send recovers the claims and ends properly: no longer `crashed`.
        sim.set_faults(latency_ms=0)
        run("--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "500")
        after = run.json("status", "c1", "--json")
        assert after["last_run"]["crashed"] is False and after["last_run"]["exit_code"] == 0
        assert "crashed" not in run("status", "c1").stdout
        assert after["counts"]["unknown"] == in_flight
        assert max(Counter(a["destination"] for a in sim.accepted(dry_run=False)).values()) == 1


# -- 8. MaxPrice: the simulator prices each message and refuses as AWS does -------------------------


def test_messages_over_max_price_are_refused_by_the_simulator(
    run: Cli, tmp_path: Path, simulator: Simulator, isolated_env: Path
) -> None:
    # The simulator's price: 0.00581 a part. MaxPrice 0.01: one part goes, two parts (0.01162)
    # are refused with PRICE_OVER_THRESHOLD, like the service.
    run("create", "c1", "-o", ORIGIN, "-m", "Hi {first_name}", "--max-price", "0.01", "--no-window")
    long_name = "L" * 170  # 2 parts in GSM-7
    csv = "first_name,phone\nAva,+12065550100\nBo,+12065550101\n" + f"{long_name},+12065550102\n"
    run("import", "c1", str(write_csv(tmp_path / "r.csv", csv)))
    result = run("--endpoint-url", simulator.url, "send", "c1", "--yes", "--mps", "100")
    assert "Sent 2 " in result.stderr
    accepted = sorted(a["destination"] for a in simulator.accepted(dry_run=False))
    assert accepted == ["+12065550100", "+12065550101"]
    ((state, reason),) = rows(
        isolated_env, "SELECT state, reason FROM recipients WHERE phone = '+12065550102'"
    )
    assert state == "failed" and "PRICE_OVER_THRESHOLD" in reason


# -- 9. no endpoint password in the ledger, the report or the terminal -------------------------------


def _with_userinfo(url: str) -> str:
    return url.replace("http://", f"http://admin:{SECRET}@")


def test_endpoint_password_is_masked_in_reasons_and_the_report(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    # Answers that never come (a read timeout) and dropped connections: botocore's messages quote
    # the endpoint URL, and they become the `unknown` recipients' reasons.
    config = SimulatorConfig(mps=500, timeout_rate=0.3, drop_rate=0.3, timeout_delay_s=3, seed=7)
    with Simulator(config) as sim:
        make_campaign(run, tmp_path, 20)
        result = run(
            "--endpoint-url", _with_userinfo(sim.url), "send", "c1", "--yes", "--timeout", "1"
        )
    report = run("report", "c1").stdout
    reasons = [r for (r,) in rows(isolated_env, "SELECT reason FROM recipients") if r]
    attempts = [r for (r,) in rows(isolated_env, "SELECT reason FROM attempts") if r]
    assert reasons and attempts  # the faults happened and left their reasons
    everything = "\n".join([*reasons, *attempts, report, result.stdout, result.stderr])
    assert SECRET not in everything
    assert f"admin:***@127.0.0.1:{sim.url.rsplit(':', 1)[1]}" in "\n".join(reasons)


def test_endpoint_password_is_masked_when_the_endpoint_does_not_answer(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    make_campaign(run, tmp_path, 200)
    endpoint = f"http://admin:{SECRET}@127.0.0.1:{port}"
    result = run("--endpoint-url", endpoint, "send", "c1", "--yes", "--mps", "500", code=4)
    notes = [n for (n,) in rows(isolated_env, "SELECT note FROM runs") if n]
    attempts = [r for (r,) in rows(isolated_env, "SELECT reason FROM attempts") if r]
    assert notes and attempts
    everything = "\n".join([*notes, *attempts, result.stdout, result.stderr])
    assert SECRET not in everything
    masked = f"http://admin:***@127.0.0.1:{port}"
    assert masked in notes[-1] and masked in result.stderr and masked in attempts[0]


# -- SIGTERM: the note names what was received --------------------------------------------------------

_STOP_SCRIPT = """
import os, signal, sys, threading, time
from campaign.cli.signals import StopSignal
stop = StopSignal(threading.Event(), say=lambda text: print(text, flush=True), stopping="testing")
with stop.installed():
    print("ready", flush=True)
    stop.requested.wait(30)
"""


@pytest.mark.parametrize(
    ("signum", "named"),
    [
        (signal.SIGTERM, "(got SIGTERM; a second SIGTERM or Ctrl-C quits at once)"),
        (signal.SIGINT, "(Ctrl-C again to quit at once)"),
    ],
)
def test_the_stop_note_names_the_signal_received(signum: int, named: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _STOP_SCRIPT],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out.strip() == f"Stopping: testing {named}"


def test_sigterm_to_send_names_sigterm(run: Cli, tmp_path: Path) -> None:
    with Simulator(SimulatorConfig(mps=500, latency_ms=300)) as sim:
        make_campaign(run, tmp_path, 100)
        proc = campaign_process("--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "20")
        wait_for(lambda: len(sim.accepted()) >= 3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "got SIGTERM" in err and "Ctrl-C again" not in err
