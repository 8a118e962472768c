"""Benchmark: time zones per recipient, against the import they will be part of.

    .venv/bin/python -m bench.timezones [--rows 200000] [--seed 7] [--repeat 3] [--no-import]

Measured in one run, on the import benchmark's own CSV (bench/data.py: NANP numbers in seven
formats, +CC mobiles, ~3% invalid) and on a world mix (bench/phones_bench.py: UK, DE, FR, IN, AU,
MX, ZA...):

* the import end to end (`campaign create` + `campaign import`, a fresh SQLite ledger), rows/s;
* TimeZoneResolver per row (a fresh resolver each time: a cold cache, as in a new import worker),
  against phonenumbers' own `time_zones_for_number` (on numbers parsed beforehand, and with the
  parse a naive import would need), and against the Normalizer's own per-row cost;
* the projected cost on the import: the resolver's time for every row over the import's time.
  The import runs its per-row work in worker processes, so this serial figure is an upper bound.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import phonenumbers
from phonenumbers.timezone import time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA

from bench import data
from bench.phones_bench import make_rows
from campaign.phones.normalize import Normalizer, PhoneResult
from campaign.phones.timezones import TimeZoneResolver


def _best_seconds(runs: Sequence[Callable[[], object]], repeat: int) -> list[float]:
    """Best time of each run; they alternate so that a busy machine slows them alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            started = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def _import_seconds(csv_path: Path, workdir: Path) -> float:
    """Wall time of `campaign create` + `campaign import` of the CSV into a fresh ledger."""
    campaign = Path(sys.executable).with_name("campaign")
    db = workdir / "import.db"
    env = {**os.environ, "CAMPAIGN_DB": f"sqlite:///{db}"}
    started = time.perf_counter()
    for args in (
        ["create", "tz-bench", "-o", "+12065550100", "--message", data.BIG_TEMPLATE],
        ["import", "tz-bench", str(csv_path), "--default-region", "US"],
    ):
        subprocess.run([str(campaign), "-q", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _every_prefix_numbers(count: int) -> list[str]:
    """US numbers spread over every NPA-NXX phonenumbers knows: the resolver's largest cache."""
    prefixes = sorted(p for p in TIMEZONE_DATA if p.startswith("1") and len(p) == 7)
    return [f"+{prefixes[i % len(prefixes)]}{i % 10_000:04d}" for i in range(count)]


def _measure(name: str, raws: list[str], regions: list[str | None], repeat: int) -> float:
    """Print one data set's figures; return the resolver's seconds per row."""
    normalizer = Normalizer("US")
    results: list[PhoneResult] = normalizer.normalize_many(raws, regions)
    valid = [r for r in results if r.e164 is not None]
    parsed = [phonenumbers.parse(r.e164) for r in valid if r.e164 is not None]
    resolver = TimeZoneResolver()
    answers = [resolver.for_phone(r) for r in results]
    known = sum(1 for a in answers if a is not None and a.known)

    def resolve_all() -> None:
        fresh = TimeZoneResolver()
        for result in results:
            fresh.for_phone(result)

    def normalize_only() -> None:
        normalizer.normalize_many(raws, regions)

    def phonenumbers_call() -> None:
        for number in parsed:
            time_zones_for_number(number)

    def phonenumbers_parse_and_call() -> None:
        for result in valid:
            time_zones_for_number(phonenumbers.parse(str(result.e164)))

    ours, alone, raw_call, raw_parse = _best_seconds(
        [resolve_all, normalize_only, phonenumbers_call, phonenumbers_parse_and_call], repeat
    )
    n, v = len(raws), max(len(valid), 1)
    print(f"\n== {name}: {n:,} rows, {len(valid):,} valid, {known:,} with known zones, "
          f"{len(resolver._by_prefix):,} cache entries ==")  # fmt: skip
    print(f"  TimeZoneResolver.for_phone (cold cache)  {1e6 * ours / n:8.2f} us/row")
    print(f"  phonenumbers time_zones_for_number       {1e6 * raw_call / v:8.2f} us/number "
          f"({raw_call / ours * n / v:.0f}x)")  # fmt: skip
    print(f"  phonenumbers parse + time_zones_for_...  {1e6 * raw_parse / v:8.2f} us/number "
          f"({raw_parse / ours * n / v:.0f}x)")  # fmt: skip
    print(f"  Normalizer.normalize_many                {1e6 * alone / n:8.2f} us/row "
          f"(the resolver adds {100 * ours / alone:.0f}% to it)")  # fmt: skip
    return ours / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    parser.add_argument("--no-import", action="store_true", help="skip the end-to-end import")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tz-bench-") as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "recipients.csv"
        data.write_big_csv(csv_path, args.rows, args.seed)
        with csv_path.open(newline="", encoding="utf-8") as fh:
            phones = [row["phone"] for row in csv.DictReader(fh)]
        per_row = _measure("import CSV (bench/data.py)", phones, [None] * len(phones), args.repeat)
        world = make_rows(args.rows, args.seed)
        _measure("world mix (bench/phones_bench.py)", [r for r, _ in world],
                 [g for _, g in world], args.repeat)  # fmt: skip
        spread = _every_prefix_numbers(args.rows)
        _measure("every US NPA-NXX", spread, [None] * len(spread), args.repeat)
        if args.no_import:
            return
        seconds = _import_seconds(csv_path, workdir)
    rate = args.rows / seconds
    added = per_row * args.rows
    print(f"\n== the import of the same {args.rows:,}-row CSV, end to end ==")
    print(f"  campaign create + import                {rate:>10,.0f} rows/s ({seconds:.2f} s)")
    print(f"  time zones for every row                {added:10.3f} s = +{100 * added / seconds:.1f}% "
          f"of the import (serial upper bound; the limit is +20%)")  # fmt: skip
    for reference in (35_000, 45_000):
        print(f"  at {reference:,} rows/s it would be         "
              f"+{100 * per_row * reference:.1f}%")  # fmt: skip


if __name__ == "__main__":
    main()
