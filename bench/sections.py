"""The benchmark sections (the throttle control's is in controller.py). Each drives the real CLI
in child processes and measures its baseline in the same run; each adds rows to the summary and a
details dict to results.json."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import data
from bench.runner import BenchError, Measured, Runner, SimulatorProcess

ORIGINATION = "+12065550100"  # the simulator's own 10DLC number
# One origination identity per kind of run: the simulator paces each identity with its own bucket,
# so every run starts from a full bucket, as the first run would.
IDENTITY = {
    ("tool", 1): "+12065550100",
    ("tool", 3): "+18335550123",
    ("naive", 1): "+447700900123",
    ("naive", 3): "55500",
    ("startup", 1): "CAMPAIGN",
}
HEAD_S, TAIL_S = 2.0, 1.0  # dropped from each send before measuring the steady state
STARTUP_REPEATS = 3
LATENCY_MS = 100.0


@dataclass
class Settings:
    root: Path  # the repository (children run here)
    out: Path  # bench-run/
    quick: bool
    rows: int
    seed: int
    window_s: float  # steady-state window of each tool send
    naive_s: float  # length of each naive-loop run
    bare_calls: int
    mps_values: tuple[float, ...]
    sections: tuple[str, ...]


@dataclass
class Row:
    section: str
    metric: str
    measured: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None  # None: no target (for information)
    note: str = ""


@dataclass
class Bench:
    settings: Settings
    campaign_bin: str
    python: str
    runner: Runner
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    big_db: Path | None = None  # the 1M-row campaign, once imported in this run
    tool_runs: dict[tuple[float, int], dict[str, Any]] = field(default_factory=dict)
    startup: dict[str, Any] | None = None

    # -- helpers --------------------------------------------------------------------------------

    def cli(
        self,
        label: str,
        db: Path,
        *args: str,
        timeout: float,
        endpoint: str | None = None,
        sample_memory: bool = True,
    ) -> Measured:
        argv = [self.campaign_bin, "-q"]
        if endpoint:
            argv += ["--endpoint-url", endpoint]
        return self.runner.run(
            label,
            [*argv, *args],
            timeout=timeout,
            env={"CAMPAIGN_DB": f"sqlite:///{db}"},
            sample_memory=sample_memory,
        )

    def baseline(self, label: str, *args: str, timeout: float) -> Measured:
        return self.runner.run(
            label, [self.python, "-m", "bench.baselines", *args], timeout=timeout
        )

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def simulator(self, name: str, mps: float, latency_ms: float, log: bool) -> SimulatorProcess:
        log_path = self.settings.out / f"{name}.jsonl" if log else None
        if log_path is not None and log_path.exists():
            log_path.unlink()
        return SimulatorProcess(
            self.campaign_bin,
            mps=mps,
            latency_ms=latency_ms,
            log_path=log_path,
            stderr_path=self.settings.out / "logs" / f"{name}.simulator.err",
            cwd=self.settings.root,
            env=self.runner.env,
        )


def say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def fresh_db(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.unlink()
    return path


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# == 1. import ===================================================================================

BIG = "big"


def section_import(b: Bench) -> None:
    s = b.settings
    say(f"[import] {s.rows:,}-row CSV (seed {s.seed})")
    started = time.perf_counter()
    facts = data.big_csv(s.out, s.rows, s.seed)
    say(f"  data ready in {time.perf_counter() - started:.1f} s: {facts.path}")
    csv_path = Path(facts.path)
    db = fresh_db(s.out / "import.db")

    create = b.cli(
        "import-create",
        db,
        "create",
        BIG,
        "-o",
        ORIGINATION,
        "--message",
        data.BIG_TEMPLATE,
        timeout=120,
    ).check("campaign create")
    imp = b.cli(
        "import-import",
        db,
        "import",
        BIG,
        str(csv_path),
        "--default-region",
        "US",
        timeout=max(900.0, s.rows / 500),
    ).check("campaign import")
    b.big_db = db
    wal = Path(str(db) + "-wal")
    wal_mb = wal.stat().st_size / 2**20 if wal.exists() else 0.0
    first_status = b.cli("status-first", db, "status", BIG, "--json", timeout=300).check(
        "campaign status"
    )
    counts = first_status.json()["counts"]

    base = b.baseline(
        "baseline-phones",
        "phones",
        str(csv_path),
        "--column",
        "phone",
        "--region",
        "US",
        timeout=max(900.0, s.rows / 500),
    ).check("baseline phonenumbers loop")
    base_out = base.json()

    statuses = [
        b.cli(f"status-{i}", db, "status", BIG, "--json", timeout=120).check("campaign status")
        for i in range(3)
    ]
    for m in statuses:
        m.json()
    status_sql = [
        b.baseline(f"baseline-sql-status-{i}", "sql", str(db), BIG, "status", timeout=120).check(
            "baseline status query"
        )
        for i in range(3)
    ]
    startup = _startup_floor(b)

    tool_s = create.wall_s + imp.wall_s
    tool_rate = s.rows / tool_s
    base_rate = base_out["rows_per_s"]
    peak = max(create.peak_mb, imp.peak_mb)
    status_s = median([m.wall_s for m in statuses])
    status_base = median([m.wall_s for m in status_sql])

    expected = {
        "pending": facts.unique_valid,
        "duplicate": facts.duplicates,
        "invalid": facts.invalid,
    }
    b.details["import"] = {
        "rows": s.rows,
        "data": asdict(facts),
        "template": data.BIG_TEMPLATE,
        "create": create.summary(),
        "import": imp.summary(),
        "import_rows_per_s": tool_rate,
        "import_only_rows_per_s": s.rows / imp.wall_s,
        "import_cpu_s_per_1k_rows": 1000 * imp.cpu_s / s.rows,
        "counts": counts,
        "generator_tally": expected,
        "baseline_phones": {**base_out, "process": base.summary()},
        "wal_mb_after_import": wal_mb,
        "first_status_after_import_s": first_status.wall_s,
        "status_s": [m.wall_s for m in statuses],
        "status_peak_mb": max(m.peak_mb for m in statuses),
        "status_baseline_sql_s": [m.wall_s for m in status_sql],
        "cli_startup_s": startup,
    }
    print(
        f"\n== import: {s.rows:,} rows ==\n"
        f"  campaign create + import   {tool_s:8.2f} s  {tool_rate:>10,.0f} rows/s  "
        f"(create {create.wall_s:.2f} s, import {imp.wall_s:.2f} s, "
        f"CPU {imp.cpu_s:.1f} s over {imp.processes} processes)\n"
        f"  peak memory (tree)         {peak:8.1f} MB  (PSS sum {imp.tree_pss_peak_mb:.1f} MB, "
        f"per process: {', '.join(f'{x:.0f}' for x in imp.process_hwm_mb)} MB)\n"
        f"  plain phonenumbers loop    {base_out['loop_s']:8.2f} s  {base_rate:>10,.0f} rows/s  "
        f"(reading the column first: {base_out['read_s']:.2f} s), peak {base.peak_mb:.1f} MB\n"
        f"  ledger counts: {_fmt_counts(counts)}\n"
        f"  generator's tally: {expected['pending']:,} unique valid, "
        f"{expected['duplicate']:,} repeats, {expected['invalid']:,} invalid "
        f"({facts.non_gsm_names:,} non-GSM first names, {facts.empty_names:,} empty)\n"
        f"  status --json              {status_s:8.3f} s median of 3 "
        f"({', '.join(f'{m.wall_s:.3f}' for m in statuses)}); bare SQL in a fresh python: "
        f"{status_base:.3f} s; `campaign --version`: {startup['median_s']:.3f} s\n"
        f"  first status after the import: {first_status.wall_s:.3f} s (not in the median; the "
        f"import left a {wal_mb:.0f} MB WAL file)",
        flush=True,
    )
    b.add(
        Row(
            "import",
            "import rate: create + import (rows/s)",
            tool_rate,
            "rows/s",
            base_rate,
            "plain phonenumbers loop",
            tool_rate / base_rate,
            ">= 1.5x",
            tool_rate / base_rate >= 1.5,
        )
    )
    b.add(
        Row(
            "import",
            "import peak memory, whole process tree (MB)",
            peak,
            "MB",
            base.peak_mb,
            "plain loop process",
            peak / base.peak_mb,
            "< 400 MB",
            peak < 400,
        )
    )
    b.add(
        Row(
            "import",
            "status --json on the campaign (s, median of 3)",
            status_s,
            "s",
            status_base,
            "bare SQL GROUP BY, fresh python",
            status_s / status_base,
            "< 1 s",
            status_s < 1.0,
        )
    )
    mismatch = {k: (counts.get(k, 0), v) for k, v in expected.items() if counts.get(k, 0) != v}
    if mismatch:
        say(f"  NOTE: ledger counts differ from the generator's tally: {mismatch}")
        b.details["import"]["tally_mismatch"] = mismatch


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)


def _status_json(b: Bench, db: Path, name: str = BIG) -> dict[str, Any]:
    m = b.cli(f"status-{name}", db, "status", name, "--json", timeout=120).check("campaign status")
    info: dict[str, Any] = m.json()
    return info


def _startup_floor(b: Bench) -> dict[str, Any]:
    runs = [
        b.runner.run(f"startup-version-{i}", [b.campaign_bin, "--version"], timeout=60).check(
            "campaign --version"
        )
        for i in range(3)
    ]
    return {"median_s": median([m.wall_s for m in runs]), "runs_s": [m.wall_s for m in runs]}


def _ensure_big_campaign(b: Bench) -> Path:
    """The 1M-row campaign: this run's, else a previous run's with the same rows, else import."""
    if b.big_db is not None:
        return b.big_db
    s = b.settings
    db = s.out / "import.db"
    if db.exists():
        probe = b.cli("status-reuse", db, "status", BIG, "--json", timeout=120)
        if probe.returncode == 0:
            try:
                info = probe.json()
            except BenchError:
                info = {}
            if info.get("recipients") == s.rows and info.get("counts", {}).get("sent") == 0:
                say(f"  reusing the {s.rows:,}-row campaign in {db} from an earlier run")
                b.big_db = db
                return db
    say("  importing the big campaign first (not measured here; run the import section for that)")
    facts = data.big_csv(s.out, s.rows, s.seed)
    fresh_db(db)
    b.cli(
        "setup-create",
        db,
        "create",
        BIG,
        "-o",
        ORIGINATION,
        "--message",
        data.BIG_TEMPLATE,
        timeout=120,
    ).check("campaign create")
    b.cli(
        "setup-import",
        db,
        "import",
        BIG,
        facts.path,
        "--default-region",
        "US",
        timeout=max(900.0, s.rows / 500),
    ).check("campaign import")
    b.big_db = db
    return db


# == 2. estimate =================================================================================


def section_estimate(b: Bench) -> None:
    s = b.settings
    say("[estimate]")
    db = _ensure_big_campaign(b)
    prices = s.root / "samples" / "prices.csv"
    runs = []
    for i in range(3):
        m = b.cli(
            f"estimate-{i}", db, "estimate", BIG, "--prices", str(prices), "--json", timeout=300
        ).check("campaign estimate")
        runs.append(m)
    result = runs[0].json()
    for key in ("campaign", "total", "countries", "ucs2_characters", "duration_seconds"):
        if key not in result:
            raise BenchError(f"estimate --json has no {key!r} key (docs/contract.md)")
    sql_runs = [
        b.baseline(
            f"baseline-sql-estimate-{i}", "sql", str(db), BIG, "estimate", timeout=300
        ).check("baseline estimate query")
        for i in range(3)
    ]
    seconds = median([m.wall_s for m in runs])
    peak = max(m.peak_mb for m in runs)
    base_s = median([m.wall_s for m in sql_runs])
    base_peak = max(m.peak_mb for m in sql_runs)
    total = result["total"]
    b.details["estimate"] = {
        "runs": [m.summary() for m in runs],
        "seconds_median": seconds,
        "peak_mb": peak,
        "baseline_sql_s": [m.wall_s for m in sql_runs],
        "baseline_sql_peak_mb": base_peak,
        "total": total,
        "countries": len(result["countries"]),
        "ucs2_characters": [u.get("character") for u in result["ucs2_characters"]],
    }
    print(
        f"\n== estimate --json on {total.get('recipients', 0):,} pending recipients ==\n"
        f"  campaign estimate          {seconds:8.3f} s median of 3 "
        f"({', '.join(f'{m.wall_s:.3f}' for m in runs)}), peak {peak:.1f} MB, "
        f"CPU {runs[0].cpu_s:.2f} s\n"
        f"  bare SQL GROUP BY          {base_s:8.3f} s (fresh python + sqlite3), "
        f"peak {base_peak:.1f} MB\n"
        f"  totals: {total.get('parts', 0):,} parts, ${total.get('cost', 0):,.2f}, "
        f"{len(result['countries'])} countries, UCS-2 characters: "
        f"{' '.join(str(u.get('character')) for u in result['ucs2_characters'])}",
        flush=True,
    )
    b.add(
        Row(
            "estimate",
            "estimate --json (s, median of 3)",
            seconds,
            "s",
            base_s,
            "bare SQL GROUP BY, fresh python",
            seconds / base_s,
            "< 10 s",
            seconds < 10,
        )
    )
    b.add(
        Row(
            "estimate",
            "estimate peak memory (MB)",
            peak,
            "MB",
            base_peak,
            "bare SQL GROUP BY process",
            peak / base_peak,
            "",
            None,
        )
    )


# == 3. send pacing ==============================================================================


def _parse_ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def read_log(path: Path) -> dict[str, list[tuple[float, int]]]:
    """Accepted messages by Context campaign tag: [(timestamp, parts)], in time order."""
    by_tag: dict[str, list[tuple[float, int]]] = defaultdict(list)
    if not path.exists():
        return by_tag
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            tag = (record.get("context") or {}).get("campaign", "")
            if record.get("dry_run"):
                continue
            by_tag[tag].append((_parse_ts(record["ts"]), int(record["parts"])))
    for items in by_tag.values():
        items.sort()
    return by_tag


def steady_rate(items: list[tuple[float, int]]) -> dict[str, Any]:
    """Parts per second between first+HEAD_S and last-TAIL_S, from the accepted messages' times.

    Inter-arrival estimate: the parts of every message after the first one inside the window,
    over the time from the first to the last one inside it (no rounding to whole messages)."""
    if len(items) < 3:
        return {"rate": None, "window_s": 0.0, "messages": len(items)}
    first, last = items[0][0], items[-1][0]
    start, end = first + HEAD_S, last - TAIL_S
    inside = [(t, p) for t, p in items if start <= t <= end]
    trimmed = True
    if len(inside) < 3 or inside[-1][0] - inside[0][0] < 1.0:
        inside, trimmed = items, False  # too short to trim: the whole run
    span = inside[-1][0] - inside[0][0]
    parts = sum(p for _, p in inside[1:])
    whole_span = last - first
    return {
        "rate": parts / span if span > 0 else None,
        "window_s": span,
        "trimmed": trimmed,
        "messages": len(items),
        "parts": sum(p for _, p in items),
        "whole_run_rate": sum(p for _, p in items[1:]) / whole_span if whole_span > 0 else None,
        "first_to_last_s": whole_span,
    }


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    calls = after.get("operations", {}).get("SendTextMessage", 0) - before.get(
        "operations", {}
    ).get("SendTextMessage", 0)
    return {
        "calls": calls,
        "throttled": after["throttled"] - before["throttled"],
        "accepted": after["accepted"] - before["accepted"],
        "errors": after["errors"] - before["errors"],
        "rejected": after["rejected"] - before["rejected"],
    }


def _send_list(b: Bench, count: int, seed: int) -> Path:
    path = b.settings.out / f"send-{count}-s{seed}.csv"
    if not path.exists():
        tmp = path.with_name(path.name + ".part")
        data.write_send_csv(tmp, count, seed)
        tmp.replace(path)
    return path


def _prepare_campaign(
    b: Bench,
    db: Path,
    name: str,
    parts: int,
    count: int,
    identity: str,
    window: Sequence[str] = (),
) -> None:
    message = data.ONE_PART_TEMPLATE if parts == 1 else data.THREE_PART_BODY
    b.cli(
        f"create-{name}",
        db,
        "create",
        name,
        "-o",
        identity,
        "--message",
        message,
        *(window or ("--no-window",)),  # promotional: at any hour, unless the bench sets one
        timeout=120,
    ).check(f"campaign create {name}")
    b.cli(
        f"import-{name}",
        db,
        "import",
        name,
        str(_send_list(b, count, b.settings.seed + count)),
        "--default-region",
        "US",
        timeout=300,
    ).check(f"campaign import {name}")


def _messages_for(mps: float, parts: int, window_s: float) -> int:
    return math.ceil(mps * (window_s + HEAD_S + TAIL_S) / parts)


def run_pacing(
    b: Bench, mps_values: Sequence[float], *, tool_parts: Sequence[int], naive: bool, startup: bool
) -> None:
    s = b.settings
    db = s.out / "send.db"
    fresh_db(db)
    for mps in mps_values:
        m = f"{mps:g}"
        with_startup = startup and mps == 100
        plans = [(p, _messages_for(mps, p, s.window_s)) for p in tool_parts]
        for parts, count in plans:
            _prepare_campaign(b, db, f"send-m{m}-p{parts}", parts, count, IDENTITY[("tool", parts)])
        if with_startup:
            _prepare_campaign(b, db, "startup", 1, STARTUP_REPEATS + 2, IDENTITY[("startup", 1)])
        sim = b.simulator(f"sim-m{m}", mps, LATENCY_MS, log=True)
        try:
            sim.start()
            deltas: dict[str, dict[str, int]] = {}
            measured: dict[str, Measured] = {}
            for parts, count in plans:
                name = f"send-m{m}-p{parts}"
                before = sim.stats()
                run = b.cli(
                    name,
                    db,
                    "send",
                    name,
                    "--yes",
                    "--mps",
                    m,
                    endpoint=sim.url,
                    timeout=count * parts / mps * 3 + 90,
                ).check(f"campaign send at {m} MPS, {parts}-part")
                deltas[name] = _delta(before, sim.stats())
                measured[name] = run
            naive_out: dict[str, dict[str, Any]] = {}
            if naive:
                for parts in (1, 3):
                    tag = f"naive-m{m}-p{parts}"
                    body = (
                        data.THREE_PART_BODY
                        if parts == 3
                        else data.ONE_PART_TEMPLATE.replace("{first_name|there}", "there")
                    )
                    before = sim.stats()
                    run = b.baseline(
                        tag,
                        "naive",
                        sim.url,
                        "--mps",
                        m,
                        "--seconds",
                        f"{s.naive_s:g}",
                        "--identity",
                        IDENTITY[("naive", parts)],
                        "--body",
                        body,
                        "--tag",
                        tag,
                        timeout=s.naive_s + 120,
                    ).check(f"naive loop at {m} MPS, {parts}-part")
                    deltas[tag] = _delta(before, sim.stats())
                    naive_out[tag] = {**run.json(), "cpu_s": run.cpu_s}
            if with_startup:
                runs = [
                    b.cli(
                        f"startup-send-{i}",
                        db,
                        "send",
                        "startup",
                        "--yes",
                        "--mps",
                        m,
                        "--limit",
                        "1",
                        endpoint=sim.url,
                        timeout=120,
                    ).check("campaign send --limit 1")
                    for i in range(STARTUP_REPEATS)
                ]
                b.startup = {
                    "mps": mps,
                    "cpu_s": [r.cpu_s for r in runs],
                    "wall_s": [r.wall_s for r in runs],
                    "cpu_median_s": median([r.cpu_s for r in runs]),
                }
        finally:
            sim.stop()
        assert sim.log_path is not None
        log = read_log(sim.log_path)
        for parts, count in plans:
            name = f"send-m{m}-p{parts}"
            rate = steady_rate(log.get(name, []))
            run = measured[name]
            delta = deltas[name]
            b.tool_runs[(mps, parts)] = {
                "campaign": name,
                "mps": mps,
                "parts_per_message": parts,
                "recipients": count,
                "sent_in_log": len(log.get(name, [])),
                "pacing": rate,
                "simulator": delta,
                "process": run.summary(),
                "cpu_s": run.cpu_s,
            }
        for tag, out in naive_out.items():
            parts = 3 if tag.endswith("p3") else 1
            b.tool_runs[(mps, -parts)] = {
                "naive": tag,
                "mps": mps,
                "parts_per_message": parts,
                "pacing": steady_rate(log.get(tag, [])),
                "simulator": deltas[tag],
                "client": out,
            }
        b.details.setdefault("send", {})[f"simulator_m{m}_cpu_s"] = sim.cpu_s


def section_send(b: Bench) -> None:
    s = b.settings
    say(
        f"[send] simulator limit = --mps = M in {', '.join(f'{m:g}' for m in s.mps_values)}, "
        f"{LATENCY_MS:g} ms latency; steady window ~{s.window_s:g} s (first {HEAD_S:g} s and "
        f"last {TAIL_S:g} s dropped); naive loop {s.naive_s:g} s"
    )
    run_pacing(
        b,
        s.mps_values,
        tool_parts=(1, 3),
        naive=True,
        startup="cpu" in s.sections and 100 in s.mps_values,
    )
    print("\n== send pacing (simulator limit = M; achieved parts/s from the simulator's log) ==")
    header = (
        f"  {'run':<22} {'M':>5} {'parts/s':>9} {'/M':>6} {'window':>7} {'msgs':>6} "
        f"{'calls':>6} {'throttled':>9} {'CPU s':>6}"
    )
    print(header)
    details = []
    for mps in s.mps_values:
        for parts in (1, 3):
            for who, key in (("tool", (mps, parts)), ("naive", (mps, -parts))):
                r = b.tool_runs.get(key)
                if r is None:
                    continue
                rate = r["pacing"]["rate"]
                sim = r["simulator"]
                calls = max(sim["calls"], 1)
                share = sim["throttled"] / calls
                cpu = r["cpu_s"] if who == "tool" else r["client"]["cpu_s"]
                label = f"{who} {parts}-part"
                print(
                    f"  {label:<22} {mps:>5g} {rate or 0:>9.2f} {(rate or 0) / mps:>6.3f} "
                    f"{r['pacing']['window_s']:>6.1f}s {r['pacing']['messages']:>6} "
                    f"{sim['calls']:>6} {sim['throttled']:>5} {100 * share:>4.1f}% {cpu:>6.2f}"
                )
                details.append({"who": who, **r})
                metric = f"{who} {mps:g} MPS {parts}-part: parts/s / M"
                if who == "tool":
                    b.add(
                        Row(
                            "send",
                            metric,
                            rate,
                            "parts/s",
                            mps,
                            "limit M",
                            (rate or 0) / mps,
                            ">= 0.97",
                            rate is not None and rate / mps >= 0.97,
                        )
                    )
                    b.add(
                        Row(
                            "send",
                            f"tool {mps:g} MPS {parts}-part: throttled calls",
                            100 * share,
                            "%",
                            None,
                            f"{sim['throttled']}/{sim['calls']} calls",
                            None,
                            "< 1%",
                            share < 0.01,
                        )
                    )
                else:
                    b.add(
                        Row(
                            "send",
                            metric,
                            rate,
                            "parts/s",
                            mps,
                            "limit M",
                            (rate or 0) / mps,
                            "(baseline)",
                            None,
                            note=f"throttled {sim['throttled']}/{sim['calls']} calls",
                        )
                    )
    b.details.setdefault("send", {})["runs"] = details
    sims = {k: v for k, v in b.details["send"].items() if k.startswith("simulator_")}
    print(
        "  simulator process CPU over its whole life: "
        + ", ".join(f"{k.split('_')[1]}: {v:.1f} s" for k, v in sims.items() if v is not None)
    )


# == 3b. claim-time checks: windows, a 100k do-not-send list, the frequency cap ==================

GATE_SUPPRESSIONS = 100_000
GATE_LISTED_SHARE = 0.01  # recipients of the send list that are on the do-not-send list too


def _gate_suppression_csv(b: Bench, send_list: Path, count: int) -> tuple[Path, int]:
    """GATE_SUPPRESSIONS numbers: 1% of the send list, the rest other US numbers."""
    path = b.settings.out / f"gate-suppress-{count}.csv"
    with send_list.open(encoding="utf-8") as fh:
        recipients = [line.rstrip("\n").split(",")[1] for line in fh][1:]
    listed = recipients[:: int(1 / GATE_LISTED_SHARE)]
    others = set(data.unique_us_numbers(GATE_SUPPRESSIONS + count, b.settings.seed + 99))
    others -= set(recipients)
    numbers = listed + sorted(others)[: GATE_SUPPRESSIONS - len(listed)]
    path.write_text("phone\n" + "\n".join(numbers) + "\n", encoding="utf-8")
    return path, len(listed)


def section_gate(b: Bench) -> None:
    """The same send with every claim-time check in force (a window around the whole day over
    the recipients' time-zone groups, 100k numbers on the do-not-send list, a frequency cap, a
    deadline) and without any (--no-window, an empty list): the pacing must not notice."""
    s = b.settings
    mps = max(s.mps_values)
    m = f"{mps:g}"
    count = _messages_for(mps, 1, s.window_s)
    say(
        f"[gate] {mps:g} MPS, 1-part, ~{s.window_s:g} s steady: windows + {GATE_SUPPRESSIONS:,} "
        "do-not-send numbers + frequency cap + deadline, vs. none; off/on/on/off"
    )
    off_db, on_db = fresh_db(s.out / "gate-off.db"), fresh_db(s.out / "gate-on.db")
    deadline = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    checks = ("--window", "00:00-24:00", "--max-per-recipient", "3", "--per", "24")
    identity = IDENTITY[("tool", 1)]
    for i in (1, 2):
        _prepare_campaign(b, off_db, f"gate-off-{i}", 1, count, identity)
        _prepare_campaign(
            b, on_db, f"gate-on-{i}", 1, count, identity, (*checks, "--deadline", deadline)
        )
    listed_csv, listed = _gate_suppression_csv(b, _send_list(b, count, s.seed + count), count)
    b.cli("gate-suppress", on_db, "suppress", "add", str(listed_csv), timeout=600).check(
        "campaign suppress add (100k numbers)"
    )
    sim = b.simulator(f"sim-gate-m{m}", mps, LATENCY_MS, log=True)
    runs: dict[str, Measured] = {}
    try:
        sim.start()
        for name, db in (
            ("gate-off-1", off_db),
            ("gate-on-1", on_db),
            ("gate-on-2", on_db),
            ("gate-off-2", off_db),
        ):
            runs[name] = b.cli(
                name,
                db,
                "send",
                name,
                "--yes",
                "--mps",
                m,
                endpoint=sim.url,
                timeout=count / mps * 3 + 90,
            ).check(f"campaign send {name}")
    finally:
        sim.stop()
    assert sim.log_path is not None
    log = read_log(sim.log_path)
    rates = {name: steady_rate(log.get(name, []))["rate"] for name in runs}
    on = [r for n, r in rates.items() if n.startswith("gate-on") and r is not None]
    off = [r for n, r in rates.items() if n.startswith("gate-off") and r is not None]
    on_rate = sum(on) / len(on) if len(on) == 2 else None
    off_rate = sum(off) / len(off) if len(off) == 2 else None
    suppressed = _status_json(b, on_db, "gate-on-1")["counts"]["suppressed"]
    print("\n== send pacing with claim-time checks (windows, 100k do-not-send list, cap) ==")
    for name, rate in rates.items():
        print(f"  {name:<12} {rate or 0:>9.2f} parts/s  {(rate or 0) / mps:>6.3f} of M  "
              f"CPU {runs[name].cpu_s:.2f} s")  # fmt: skip
    print(f"  suppressed at claim time in gate-on-1: {suppressed} (listed: {listed})")
    ratio = on_rate / off_rate if on_rate and off_rate else None
    b.add(
        Row(
            "send",
            f"tool {m} MPS with windows + 100k do-not-send list + cap: parts/s / without",
            on_rate,
            "parts/s",
            off_rate,
            "same send, no checks",
            ratio,
            ">= 0.97",
            ratio is not None and ratio >= 0.97,
            note=f"{suppressed}/{listed} listed recipients suppressed",
        )
    )
    b.add(
        Row(
            "send",
            f"tool {m} MPS with windows + 100k do-not-send list + cap: parts/s / M",
            on_rate,
            "parts/s",
            mps,
            "limit M",
            (on_rate or 0) / mps,
            ">= 0.97",
            on_rate is not None and on_rate / mps >= 0.97,
        )
    )
    b.details["gate"] = {
        "mps": mps,
        "recipients": count,
        "rates": rates,
        "suppressed": suppressed,
        "listed": listed,
        "runs": {n: r.summary() for n, r in runs.items()},
    }


# == 4. CPU per message ==========================================================================


def _tool_concurrency(db: Path, campaign: str) -> int | None:
    """The calls in flight the tool chose for its last run of `campaign` (its runs table)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            row = conn.execute(
                "SELECT runs.concurrency FROM runs JOIN campaigns ON campaigns.id = "
                "runs.campaign_id WHERE campaigns.name = ? ORDER BY runs.id DESC LIMIT 1",
                (campaign,),
            ).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def section_cpu(b: Bench) -> None:
    s = b.settings
    say("[cpu] tool CPU per message at 100 MPS vs. a bare boto3 send_text_message loop")
    if (100.0, 1) not in b.tool_runs or b.startup is None:
        run_pacing(b, (100.0,), tool_parts=(1,), naive=False, startup=True)
    tool = b.tool_runs[(100.0, 1)]
    startup = b.startup
    assert startup is not None
    body = data.ONE_PART_TEMPLATE.replace("{first_name|there}", "there")
    concurrency = _tool_concurrency(s.out / "send.db", tool["campaign"]) or 61
    threaded_calls = 300 if s.quick else 1000

    sim = b.simulator("sim-unthrottled", 100_000, 0, log=False)
    try:
        sim.start()
        bare = b.baseline(
            "baseline-bare-boto3",
            "bare",
            sim.url,
            "--count",
            str(s.bare_calls),
            "--identity",
            ORIGINATION,
            "--body",
            body,
            timeout=s.bare_calls * 0.5 + 120,
        ).check("bare boto3 loop")
        bare_stats = sim.stats()
    finally:
        sim.stop()
    if bare_stats["accepted"] < s.bare_calls:
        raise BenchError(f"bare loop: only {bare_stats['accepted']} of {s.bare_calls} accepted")
    # The tool's shape without the tool: the same calls from a pool as large as the tool's, paced
    # at 100 calls/s, against a simulator with the same 100 ms latency (but no limit).
    sim = b.simulator("sim-unthrottled-latency", 100_000, LATENCY_MS, log=False)
    try:
        sim.start()
        threaded = b.baseline(
            "baseline-threaded-boto3",
            "threaded",
            sim.url,
            "--count",
            str(threaded_calls),
            "--rate",
            "100",
            "--concurrency",
            str(concurrency),
            "--identity",
            ORIGINATION,
            "--body",
            body,
            timeout=threaded_calls / 100 * 3 + 120,
        ).check("threaded boto3 loop")
    finally:
        sim.stop()
    bare_out, threaded_out = bare.json(), threaded.json()

    sent = tool["sent_in_log"]
    if sent < 2:
        raise BenchError("the 100 MPS send logged fewer than 2 messages")
    per_msg = 1000 * tool["cpu_s"] / sent
    fixed = startup["cpu_median_s"]
    per_msg_excl = 1000 * (tool["cpu_s"] - fixed) / (sent - 1)
    base = bare_out["cpu_per_call_ms"]
    threaded_base = threaded_out["cpu_per_call_ms"]
    b.details["cpu"] = {
        "tool_send": {
            "messages": sent,
            "cpu_s": tool["cpu_s"],
            "wall_s": tool["process"]["wall_s"],
            "concurrency": concurrency,
        },
        "startup_send_limit_1": startup,
        "tool_cpu_per_message_ms": per_msg,
        "tool_cpu_per_message_excl_startup_ms": per_msg_excl,
        "bare_boto3": {**bare_out, "process": bare.summary()},
        "threaded_boto3": {**threaded_out, "process": threaded.summary()},
    }
    print(
        f"\n== CPU per message (user+sys) ==\n"
        f"  campaign send, 100 MPS, {sent:,} msgs        {tool['cpu_s']:7.2f} s CPU "
        f"{per_msg:7.3f} ms/msg ({concurrency} calls in flight at most)\n"
        f"  start-up (send --limit 1, median of {STARTUP_REPEATS})  {fixed:7.2f} s CPU "
        f"({', '.join(f'{c:.2f}' for c in startup['cpu_s'])})\n"
        f"  campaign send minus start-up                        {per_msg_excl:7.3f} ms/msg "
        f"(= (CPU - start-up CPU) / (messages - 1))\n"
        f"  bare boto3 loop, {s.bare_calls:,} sequential calls              {base:7.3f} ms/call "
        f"({bare_out['wall_per_call_ms']:.2f} ms/call wall; client creation and a warm-up "
        f"call excluded; simulator unthrottled, 0 ms latency)\n"
        f"  boto3 from {concurrency} threads, 100 calls/s, {threaded_calls:,} calls   "
        f"{threaded_base:7.3f} ms/call (simulator unthrottled, {LATENCY_MS:g} ms latency: "
        f"the tool's shape without the tool)",
        flush=True,
    )
    b.add(
        Row(
            "cpu",
            "CPU per message, whole tool at 100 MPS (ms)",
            per_msg,
            "ms",
            base,
            "bare boto3 call",
            per_msg / base,
            "<= 1.5x",
            per_msg / base <= 1.5,
        )
    )
    b.add(
        Row(
            "cpu",
            "CPU per message, tool minus start-up (ms)",
            per_msg_excl,
            "ms",
            base,
            "bare boto3 call",
            per_msg_excl / base,
            "<= 1.5x",
            per_msg_excl / base <= 1.5,
        )
    )
    b.add(
        Row(
            "cpu",
            "CPU per message, tool minus start-up (ms)",
            per_msg_excl,
            "ms",
            threaded_base,
            f"boto3 from {concurrency} threads",
            per_msg_excl / threaded_base,
            "",
            None,
        )
    )


def section_controller(b: Bench) -> None:
    from bench.controller import run_controller  # it imports this module: load it when used

    run_controller(b)


def section_events(b: Bench) -> None:
    from bench.events import section_events as events  # its own module: delivery events

    events(b)


def section_report(b: Bench) -> None:
    from bench.report import section_report as report  # its own module: the HTML report

    report(b)


def section_pg_import(b: Bench) -> None:
    """Import and suppress add on PostgreSQL against SQLite (bench/pg_import.py)."""
    from bench.pg_import import section_pg_import as run

    run(b)


SECTIONS = {
    "import": section_import,
    "estimate": section_estimate,
    "send": section_send,
    "gate": section_gate,
    "cpu": section_cpu,
    "controller": section_controller,
    "events": section_events,
    "report": section_report,
    "pg-import": section_pg_import,
    "multisender": lambda b: _multisender(b),
}


def _multisender(b: Bench) -> None:
    from bench.multisender import section_multisender  # imports this module: loaded on use

    section_multisender(b)
