"""The throttle control against throttles it did not cause and a limit it must find (issue 8).

Three sends at --mps 200 against `campaign simulator` at 100 ms latency, each with its own
simulator process:

  random   10% random throttles + 5% 500s, no limit in reach: goal 0.85 x 200 x 0.85 = 144.5
           accepted messages/s (round 1 collapsed to ~1.7 msg/s here)
  limit    a hidden limit of 120 MPS (the simulator's --mps), no random throttles: goal
           0.9 x 120 = 108 accepted/s, under 2% of calls throttled
  both     the limit of 120 plus 5% random throttles: goal 0.8 x 120 = 96 accepted/s

Accepted messages per second come from the simulator's log, over the steady state: from
WARMUP_S after the first accepted message (the controller's first test and climb) to TAIL_S
before the last. Throttled calls over the same window come from the simulator's counters, polled
while the send runs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.runner import BenchError
from bench.sections import ORIGINATION, Bench, Row, _prepare_campaign, fresh_db, read_log, say

MPS = 200.0
LATENCY_MS = 100.0
WARMUP_S, TAIL_S = 15.0, 1.0
POLL_S = 0.5
LIMIT = 120.0


@dataclass(frozen=True)
class Case:
    name: str
    simulator_mps: float
    throttle_rate: float
    error_rate: float
    goal: float  # accepted messages/s in the steady state
    goal_label: str
    max_throttled: float | None  # share of calls in the steady state, when the issue sets one


CASES = (
    Case("random", 1000.0, 0.10, 0.05, 0.85 * MPS * 0.85, "0.85 x 200 x 0.85", None),
    Case("limit", LIMIT, 0.0, 0.0, 0.9 * LIMIT, "0.9 x 120", 0.02),
    Case("both", LIMIT, 0.05, 0.0, 0.8 * LIMIT, "0.8 x 120", None),
)


class StatsPoller:
    """The simulator's counters every POLL_S seconds, stamped with wall-clock time (the log's)."""

    def __init__(self, fetch: Any) -> None:
        self.fetch = fetch
        self.samples: list[tuple[float, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatsPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.samples.append((time.time(), self.fetch()))

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.samples.append((time.time(), self.fetch()))
            except Exception:  # one missed sample changes nothing; the next will do
                continue

    def between(self, start: float, end: float) -> dict[str, int]:
        """Calls and throttles between the samples nearest to `start` and `end`."""
        first = min(self.samples, key=lambda s: abs(s[0] - start))[1]
        last = min(self.samples, key=lambda s: abs(s[0] - end))[1]
        return {
            "calls": _calls(last) - _calls(first),
            "throttled": last["throttled"] - first["throttled"],
            "errors": last["errors"] - first["errors"],
        }


def _calls(stats: dict[str, Any]) -> int:
    return int(stats.get("operations", {}).get("SendTextMessage", 0))


def run_case(b: Bench, db: Path, case: Case, window_s: float) -> dict[str, Any]:
    name = f"controller-{case.name}"
    expected = case.goal / 0.85 if case.name == "random" else case.simulator_mps
    count = int(min(expected, MPS) * (WARMUP_S + window_s + TAIL_S))
    _prepare_campaign(b, db, name, 1, count, ORIGINATION)
    sim = b.simulator(f"sim-{name}", case.simulator_mps, LATENCY_MS, log=True)
    sim.argv += ["--throttle-rate", f"{case.throttle_rate:g}", "--error-rate"]
    sim.argv += [f"{case.error_rate:g}", "--seed", str(b.settings.seed)]
    try:
        sim.start()
        with StatsPoller(sim.stats) as poller:
            run = b.cli(
                name,
                db,
                "send",
                name,
                "--yes",
                "--mps",
                f"{MPS:g}",
                endpoint=sim.url,
                timeout=count / 10 + 120,  # round 1's collapse would take far longer: give up
                sample_memory=False,
            ).check(f"campaign send {name}")
    finally:
        sim.stop()
    assert sim.log_path is not None
    times = [t for t, _ in read_log(sim.log_path).get(name, [])]
    if len(times) < 3:
        raise BenchError(f"{name}: fewer than 3 messages in the simulator's log")
    start, end = times[0] + WARMUP_S, times[-1] - TAIL_S
    steady = [t for t in times if start <= t <= end]
    if len(steady) < 3:
        start, end, steady = times[0], times[-1], times  # too short to trim: the whole run
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    calls = poller.between(start, end)
    whole = poller.between(times[0] - 1, times[-1] + 1)
    return {
        "case": case.name,
        "recipients": count,
        "accepted": len(times),
        "wall_s": run.wall_s,
        "steady_window_s": steady[-1] - steady[0],
        "accepted_per_s": rate,
        "whole_run_accepted_per_s": (len(times) - 1) / (times[-1] - times[0]),
        "steady": calls,
        "whole_run": whole,
        "cpu_s": run.cpu_s,
    }


def _share(counts: dict[str, int]) -> float:
    return counts["throttled"] / counts["calls"] if counts["calls"] else 0.0


def run_controller(b: Bench) -> None:
    s = b.settings
    window_s = s.window_s if s.quick else max(s.window_s, 30.0)
    say(
        f"[controller] --mps {MPS:g} against random throttles and a hidden limit of {LIMIT:g}; "
        f"{LATENCY_MS:g} ms latency; steady state from {WARMUP_S:g} s, ~{window_s:g} s"
    )
    db = fresh_db(s.out / "controller.db")
    results = [run_case(b, db, case, window_s) for case in CASES]
    b.details["controller"] = {"mps": MPS, "warmup_s": WARMUP_S, "runs": results}
    print("\n== throttle control (--mps 200; accepted messages/s from the simulator's log) ==")
    print(
        f"  {'case':<8} {'accepted/s':>10} {'goal':>7} {'ratio':>6} {'window':>7} "
        f"{'throttled (steady)':>19} {'throttled (run)':>16} {'wall':>6}"
    )
    for case, r in zip(CASES, results, strict=True):
        steady, whole = r["steady"], r["whole_run"]
        ratio = r["accepted_per_s"] / case.goal
        print(
            f"  {case.name:<8} {r['accepted_per_s']:>10.1f} {case.goal:>7.1f} {ratio:>6.2f} "
            f"{r['steady_window_s']:>6.1f}s {100 * _share(steady):>8.2f}% of {steady['calls']:>6} "
            f"{100 * _share(whole):>7.2f}% of {whole['calls']:>5} {r['wall_s']:>5.1f}s"
        )
        b.add(
            Row(
                "controller",
                f"{case.name}: accepted msgs/s / goal",
                r["accepted_per_s"],
                "msgs/s",
                case.goal,
                case.goal_label,
                ratio,
                ">= 1.0",
                ratio >= 1.0,
            )
        )
        limit = case.max_throttled
        b.add(
            Row(
                "controller",
                f"{case.name}: throttled calls, steady state",
                100 * _share(steady),
                "%",
                None,
                f"{steady['throttled']}/{steady['calls']} calls",
                None,
                f"< {100 * limit:g}%" if limit is not None else "",
                _share(steady) < limit if limit is not None else None,
                note="" if limit is not None else "random throttles included",
            )
        )
