"""Command line of the benchmarks: pick sections, run them, print the summary, write the JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench.runner import MEMORY_METHOD, BenchError, LoadMeter, Runner, kill_all
from bench.sections import SECTIONS, Bench, Row, Settings

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the campaign CLI; every figure is a ratio against a baseline "
        "measured in the same run.",
    )
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help=f"sections to run, of: {' '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="scaled down: 100k rows, 5 s send windows"
    )
    parser.add_argument("--rows", type=int, default=None, help="rows of the import CSV")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--window", type=float, default=None, help="steady-state seconds of each send"
    )
    parser.add_argument(
        "--mps", type=float, nargs="+", default=None, help="MPS settings (default 10 100 500)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-run")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {' '.join(SECTIONS)}")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    quick = args.quick
    return Settings(
        root=ROOT,
        out=args.out.resolve(),
        quick=quick,
        rows=args.rows or (100_000 if quick else 1_000_000),
        seed=args.seed,
        window_s=args.window or (5.0 if quick else 20.0),
        naive_s=4.0 if quick else 10.0,
        bare_calls=500 if quick else 2000,
        mps_values=tuple(args.mps or (10.0, 100.0, 500.0)),
        sections=tuple(s for s in SECTIONS if not args.sections or s in args.sections),
    )


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.2f}%"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".rstrip() if unit not in ("", "%") else text


def summary_table(rows: list[Row]) -> str:
    head = ("metric", "measured", "baseline", "ratio", "target", "result")
    body = []
    for r in rows:
        baseline = _fmt(r.baseline) if r.baseline is not None else ""
        if r.baseline_label:
            baseline = f"{baseline} ({r.baseline_label})" if baseline else r.baseline_label
        result = "-" if r.passed is None else ("PASS" if r.passed else "FAIL")
        if r.note:
            result = f"{result}  {r.note}"
        body.append(
            (
                r.metric,
                _fmt(r.measured, r.unit),
                baseline,
                f"{r.ratio:.2f}x" if r.ratio is not None else "",
                r.target,
                result,
            )
        )
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    widths[-1] = 0  # the last column is not padded
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * max(w, 6) for w in widths))
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(x, widths, strict=True)).rstrip() for x in body
    ]
    return "\n".join(lines)


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class _Terminated(Exception):
    pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated  # unwinds through the finally blocks that stop the children


def _run_sections(bench: Bench, sections: Sequence[str]) -> bool:
    """Each section in turn; a failing one is reported and the others go on. True: interrupted."""
    interrupted = False
    try:
        for name in sections:
            section_started = time.perf_counter()
            meter = LoadMeter()
            try:
                SECTIONS[name](bench)
            except _Terminated:
                raise
            except BenchError as exc:
                bench.errors[name] = str(exc)
                print(f"\n!! section {name} failed: {exc}", file=sys.stderr, flush=True)
            except Exception as exc:  # a bug in the benchmark: report it, go on with the rest
                bench.errors[name] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            finally:
                bench.details.setdefault("timings_s", {})[name] = round(
                    time.perf_counter() - section_started, 1
                )
                load = meter.result()
                bench.details.setdefault("machine_load", {})[name] = load
                print(
                    f"  [{name}: {load['wall_s']:.0f} s; other processes on this machine used "
                    f"{load['other_cpu_s']:.0f} CPU-s meanwhile, "
                    f"{100 * load['other_share_of_machine']:.0f}% of its {os.cpu_count()} cores]",
                    flush=True,
                )
    except (KeyboardInterrupt, _Terminated):
        interrupted = True
        print("\nbench: interrupted; its child processes were stopped", file=sys.stderr)
    finally:
        kill_all()
    return interrupted


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    s = settings_from(args)
    bin_dir = Path(sys.executable).parent
    campaign_bin = bin_dir / "campaign"
    if not campaign_bin.exists():
        sys.exit(
            f"bench: {campaign_bin} not found; run with the project's virtualenv "
            "(.venv/bin/python -m bench, or `make bench`)"
        )
    if not Path("/proc/self/status").exists():
        sys.exit("bench: needs Linux /proc for memory and process-tree sampling")
    s.out.mkdir(parents=True, exist_ok=True)
    for old in (s.out / "logs").glob("*.*"):
        old.unlink()  # this run's child logs only
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.pop("CAMPAIGN_FORCE_PROGRESS", None)
    env["PYTHONPATH"] = str(ROOT)  # `python -m bench.baselines` from any working directory
    runner = Runner(ROOT, s.out / "logs", env)
    bench = Bench(s, str(campaign_bin), sys.executable, runner)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C raises KeyboardInterrupt even when started in the background, where SIGINT is ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    started = time.perf_counter()
    started_at = datetime.now(UTC)
    print(
        f"campaign benchmarks{' (--quick)' if s.quick else ''}: {', '.join(s.sections)} | "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"git {_git('rev-parse', '--short', 'HEAD') or '?'}"
        f"{' + uncommitted changes' if _git('status', '--porcelain') else ''} | "
        f"{started_at:%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    print(f"memory: {MEMORY_METHOD}", flush=True)
    print("CPU: user+sys from wait4() of each child, its waited-for workers included", flush=True)
    interrupted = _run_sections(bench, s.sections)
    elapsed = time.perf_counter() - started

    print(f"\n== summary ({elapsed / 60:.1f} min) ==")
    print(summary_table(bench.rows))
    for name, error in bench.errors.items():
        print(f"ERROR in {name}: {error.splitlines()[0]}")
    failed = [r.metric for r in bench.rows if r.passed is False]
    print(
        f"{sum(1 for r in bench.rows if r.passed)} targets met, {len(failed)} missed"
        + (f", {len(bench.errors)} section(s) failed" if bench.errors else "")
    )
    results: dict[str, Any] = {
        "meta": {
            "started_at": started_at.isoformat(),
            "duration_s": round(elapsed, 1),
            "quick": s.quick,
            "sections": list(s.sections),
            "rows": s.rows,
            "seed": s.seed,
            "send_window_s": s.window_s,
            "naive_window_s": s.naive_s,
            "mps_values": list(s.mps_values),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "git": _git("rev-parse", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain")),
            "memory_method": MEMORY_METHOD,
            "interrupted": interrupted,
        },
        "summary": [asdict(r) for r in bench.rows],
        "details": bench.details,
        "errors": bench.errors,
    }
    out = s.out / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {os.path.relpath(out)}; child logs: {os.path.relpath(s.out / 'logs')}/")
    if interrupted:
        sys.exit(130)
    if bench.errors:
        sys.exit(1)
