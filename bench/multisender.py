"""The `multisender` section (issue 9): several `campaign send` processes on one PostgreSQL ledger.

- 3 senders on one campaign, simulator at 150 MPS with 100 ms latency, 1- and 3-part messages:
  joint parts/s against the MPS (from the simulator's log of accepted messages), throttled calls,
  recipients accepted twice;
- the same for 2 campaigns (one sender each) on one origination identity;
- one sender on PostgreSQL against one on SQLite at 500 MPS (same simulator, same messages);
- the time from a sender's SIGKILL to its claims being `unknown` (default liveness: 5 s heartbeat,
  30 s timeout).

The PostgreSQL server is a throwaway cluster (tests/postgres.py), one fresh database per run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import data
from bench.runner import BenchError, SimulatorProcess
from bench.sections import (
    Bench,
    Row,
    _delta,
    _messages_for,
    _send_list,
    say,
    steady_rate,
)

SIM_MPS, LATENCY_MS = 150.0, 100.0
FAST_MPS = 500.0
IDENTITY = "+12065550100"
KILL_AFTER_S = 5.0


def section_multisender(b: Bench) -> None:
    from tests.postgres import SUPERUSER, PostgresCluster, find_binaries

    bin_dir = find_binaries()
    if bin_dir is None:
        raise BenchError("no PostgreSQL binaries (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="campaign-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, SUPERUSER, SUPERUSER)
    cluster = PostgresCluster(bin_dir, root)
    cluster.start()
    try:
        ms = _MultiSender(b, cluster)
        details: dict[str, Any] = {}
        for parts in (1, 3):
            details[f"one campaign, 3 senders, {parts}-part"] = ms.one_campaign(parts)
        for parts in (1, 3):
            details[f"two campaigns, one identity, {parts}-part"] = ms.two_campaigns(parts)
        details["postgresql vs sqlite"] = ms.postgresql_vs_sqlite()
        details["sigkill to unknown"] = ms.sigkill_to_unknown()
        b.details["multisender"] = details
    finally:
        with contextlib.suppress(RuntimeError):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


class _MultiSender:
    def __init__(self, b: Bench, cluster: Any) -> None:
        self.b = b
        self.cluster = cluster
        self.window = b.settings.window_s
        self.env = {**b.runner.env}
        self.n = 0

    # -- scenarios --------------------------------------------------------------------------------

    def one_campaign(self, parts: int) -> dict[str, Any]:
        url = self._database()
        count = _messages_for(SIM_MPS, parts, self.window)
        self._campaign(url, "ms1", parts, count)
        with self._simulator(f"ms-one-p{parts}", SIM_MPS) as sim:
            before = sim.stats()
            self._wait(self._senders(url, sim, ["ms1"] * 3, SIM_MPS), count * parts / SIM_MPS)
            delta = _delta(before, sim.stats())
            log = _read(sim)
        return self._report(f"3 senders, one campaign, {parts}-part", log, ["ms1"], delta, count)

    def two_campaigns(self, parts: int) -> dict[str, Any]:
        url = self._database()
        count = _messages_for(SIM_MPS, parts, self.window) // 2 + 1
        self._campaign(url, "msa", parts, count, seed=1)
        self._campaign(url, "msb", parts, count, seed=2)
        with self._simulator(f"ms-two-p{parts}", SIM_MPS) as sim:
            before = sim.stats()
            procs = self._senders(url, sim, ["msa", "msb"], SIM_MPS)
            self._wait(procs, 2 * count * parts / SIM_MPS)
            delta = _delta(before, sim.stats())
            log = _read(sim)
        return self._report(
            f"2 campaigns on one identity, {parts}-part", log, ["msa", "msb"], delta, 2 * count
        )

    def postgresql_vs_sqlite(self) -> dict[str, Any]:
        count = _messages_for(FAST_MPS, 1, self.window)
        rates: dict[str, float | None] = {}
        for dialect in ("postgresql", "sqlite"):
            if dialect == "postgresql":
                url = self._database()
            else:
                path = self.b.settings.out / "ms-sqlite.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                url = f"sqlite:///{path}"
            self._campaign(url, "fast", 1, count)
            with self._simulator(f"ms-{dialect}", FAST_MPS) as sim:
                self._wait(self._senders(url, sim, ["fast"], FAST_MPS), count / FAST_MPS)
                rates[dialect] = steady_rate(_read(sim)["fast"]["items"])["rate"]
        pg, lite = rates["postgresql"], rates["sqlite"]
        ratio = pg / lite if pg and lite else None
        print(
            f"\n== multisender: one sender at {FAST_MPS:g} MPS == postgresql {pg or 0:.1f} "
            f"parts/s, sqlite {lite or 0:.1f} parts/s, ratio {ratio or 0:.3f}"
        )
        self.b.add(
            Row(
                "multisender",
                f"1 sender {FAST_MPS:g} MPS: PostgreSQL parts/s / SQLite",
                pg,
                "parts/s",
                lite,
                "SQLite, same run",
                ratio,
                ">= 0.90",
                ratio is not None and ratio >= 0.9,
            )
        )
        return {"postgresql": pg, "sqlite": lite, "ratio": ratio}

    def sigkill_to_unknown(self) -> dict[str, Any]:
        """Default liveness (the environment's CAMPAIGN_* liveness settings are left out)."""
        url = self._database()
        count = int(SIM_MPS * 120)
        self._campaign(url, "kill", 1, count)
        with self._simulator("ms-kill", SIM_MPS) as sim:
            procs = self._senders(url, sim, ["kill"] * 3, SIM_MPS, liveness=False)
            try:
                time.sleep(KILL_AFTER_S)
                waited = time.monotonic()
                by_pid = {p.pid: p for p in procs}
                victim = None
                while victim is None:  # a sender mid-call, for sure
                    sender_id = self._scalar(
                        url, "SELECT sender_id FROM recipients WHERE state = 'sending' LIMIT 1"
                    )
                    pid = self._scalar(url, f"SELECT pid FROM senders WHERE id = {sender_id}")
                    victim = by_pid.get(pid)
                    if time.monotonic() - waited > 60:
                        raise BenchError("no sender had a call in flight")
                    time.sleep(0.01)
                procs = [victim, *(p for p in procs if p is not victim)]
                victim.kill()
                victim.wait()
                killed = time.monotonic()
                in_flight = self._scalar(url, self._sending(sender_id))
                elapsed = None
                while time.monotonic() - killed < 120:
                    if not self._scalar(url, self._sending(sender_id)):
                        elapsed = time.monotonic() - killed
                        break
                    time.sleep(0.2)
                unknown = self._scalar(
                    url,
                    f"SELECT count(*) FROM recipients WHERE sender_id = {sender_id} "
                    "AND state = 'unknown'",
                )
            finally:
                for proc in procs:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGINT)
                for proc in procs:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.communicate(timeout=60)
        print(
            f"\n== multisender: SIGKILL of 1 of 3 senders: {in_flight} claims in flight became "
            f"unknown ({unknown}) after {elapsed or 0:.1f} s (heartbeat 5 s, timeout 30 s)"
        )
        self.b.add(
            Row(
                "multisender",
                "SIGKILL of a sender -> its claims unknown",
                elapsed,
                "s",
                None,
                f"{in_flight} claims in flight, {unknown} unknown",
                None,
                "< 60 s",
                elapsed is not None and elapsed < 60 and unknown == in_flight,
            )
        )
        return {"seconds": elapsed, "in_flight": in_flight, "unknown": unknown}

    # -- pieces -----------------------------------------------------------------------------------

    def _report(
        self, label: str, log: dict[str, Any], tags: list[str], delta: dict[str, int], count: int
    ) -> dict[str, Any]:
        items = sorted(i for tag in tags for i in log.get(tag, {"items": []})["items"])
        rate = steady_rate(items)["rate"]
        ratio = (rate or 0.0) / SIM_MPS
        duplicates = sum(log.get(tag, {"duplicates": 0})["duplicates"] for tag in tags)
        calls = max(delta["calls"], 1)
        share = delta["throttled"] / calls
        print(
            f"\n== multisender: {label} (simulator {SIM_MPS:g} MPS, {LATENCY_MS:g} ms) == "
            f"joint {rate or 0:.1f} parts/s ({ratio:.3f} of MPS), throttled "
            f"{delta['throttled']}/{delta['calls']} calls ({100 * share:.2f}%), "
            f"{len(items)}/{count} accepted, {duplicates} duplicates"
        )
        self.b.add(
            Row(
                "multisender",
                f"{label}: joint parts/s / MPS",
                rate,
                "parts/s",
                SIM_MPS,
                "MPS",
                ratio,
                ">= 0.95",
                ratio >= 0.95,
            )
        )
        self.b.add(
            Row(
                "multisender",
                f"{label}: throttled calls",
                100 * share,
                "%",
                None,
                f"{delta['throttled']}/{delta['calls']} calls",
                None,
                "< 1%",
                share < 0.01,
            )
        )
        self.b.add(
            Row(
                "multisender",
                f"{label}: recipients sent twice",
                float(duplicates),
                "",
                None,
                f"{len(items)} accepted of {count}",
                None,
                "0",
                duplicates == 0 and len(items) == count,
            )
        )
        return {"rate": rate, "ratio": ratio, "delta": delta, "duplicates": duplicates}

    def _database(self) -> str:
        return str(self.cluster.url(self.cluster.create_database()))

    def _campaign(self, url: str, name: str, parts: int, count: int, seed: int = 0) -> None:
        message = data.ONE_PART_TEMPLATE if parts == 1 else data.THREE_PART_BODY
        csv = _send_list(self.b, count, self.b.settings.seed + count + seed)
        for label, args in (
            ("create", ["create", name, "-o", IDENTITY, "--message", message, "--no-window"]),
            ("import", ["import", name, str(csv), "--default-region", "US"]),
        ):
            self.b.runner.run(
                f"ms-{label}-{name}",
                [self.b.campaign_bin, "-q", "--db", url, *args],
                timeout=300,
            ).check(f"campaign {label} {name}")

    def _simulator(self, name: str, mps: float) -> SimulatorProcess:
        return self.b.simulator(name, mps, LATENCY_MS, log=True)  # started by `with`

    def _senders(
        self, url: str, sim: SimulatorProcess, names: list[str], mps: float, liveness: bool = True
    ) -> list[subprocess.Popen[bytes]]:
        env = dict(self.env)
        if not liveness:
            env.pop("CAMPAIGN_HEARTBEAT_SECONDS", None)
            env.pop("CAMPAIGN_SENDER_TIMEOUT_SECONDS", None)
        procs = []
        for name in names:
            self.n += 1
            err = (self.b.settings.out / "logs" / f"ms-send-{self.n}.err").open("wb")
            argv = [self.b.campaign_bin, "-q", "--db", url, "--endpoint-url", sim.url]
            argv += ["send", name, "--yes", "--mps", f"{mps:g}"]
            say(f"  $ {' '.join(argv)} &")
            procs.append(
                subprocess.Popen(
                    argv,
                    env=env,
                    cwd=self.b.settings.root,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
        return procs

    def _wait(self, procs: list[subprocess.Popen[bytes]], seconds: float) -> None:
        deadline = time.monotonic() + 3 * seconds + 120
        for proc in procs:
            try:
                code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                for p in procs:
                    p.kill()
                raise BenchError("a sender did not finish in time") from None
            if code != 0:
                raise BenchError(f"a sender exited with {code} (see bench-run/logs/ms-send-*)")

    @staticmethod
    def _sending(sender_id: int) -> str:
        return (
            f"SELECT count(*) FROM recipients WHERE sender_id = {sender_id} AND state = 'sending'"
        )

    @staticmethod
    def _scalar(url: str, sql: str) -> int:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            row = conn.execute(sql).fetchone()  # bench-built SQL, no user input
        return int(row[0]) if row and row[0] is not None else 0


def _read(sim: SimulatorProcess) -> dict[str, Any]:
    """Per campaign tag: accepted (timestamp, parts) in time order, and recipients seen twice."""
    found: dict[str, dict[str, Any]] = {}
    seen: dict[str, Counter[str]] = {}
    assert sim.log_path is not None
    with sim.log_path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("dry_run"):
                continue
            context = record.get("context") or {}
            tag = context.get("campaign", "")
            entry = found.setdefault(tag, {"items": [], "duplicates": 0})
            stamp = datetime.fromisoformat(record["ts"]).timestamp()
            entry["items"].append((stamp, int(record["parts"])))
            seen.setdefault(tag, Counter())[context.get("recipient", "")] += 1
    for tag, entry in found.items():
        entry["items"].sort()
        entry["duplicates"] = sum(n - 1 for n in seen[tag].values() if n > 1)
    return found
