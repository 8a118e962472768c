"""Benchmark: campaign.phones.normalize.Normalizer against a plain phonenumbers loop on the same column.

    .venv/bin/python bench/phones_bench.py [--rows 200000] [--seed 7]

The plain loop is what the importer's own benchmark compares against: parse + is_valid_number +
format_number(E164) per row. Both run in this process on the same 200k mixed rows (NANP national
formats, UK/DE/FR/IN/AU numbers, 00 prefixes, spreadsheet damage, ~3% garbage), and the script
prints rows/s for each and the ratio. Before timing, both normalizers (fast path and phonenumbers
alone) are run over the rows and must agree on every E.164 result.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import phonenumbers

from campaign.phones.normalize import Normalizer

Row = tuple[str, str | None]

# Real NANP area codes (US, and a few CA/Caribbean ones that make region lookup work harder).
_AREA_CODES = [
    "201", "202", "206", "212", "213", "303", "305", "312", "404", "415", "425", "503", "512",
    "602", "617", "646", "702", "713", "718", "805", "808", "917", "416", "514", "604", "780",
    "613", "787",
]  # fmt: skip


def _nanp(rng: random.Random) -> Row:
    area = rng.choice(_AREA_CODES)
    exchange = rng.randint(200, 999)
    line = rng.randint(0, 9999)
    shape = rng.randrange(6)
    if shape == 0:
        return f"({area}) {exchange}-{line:04d}", "US"
    if shape == 1:
        return f"{area}-{exchange}-{line:04d}", "US"
    if shape == 2:
        return f"{area}.{exchange}.{line:04d}", "US"
    if shape == 3:
        return f"{area}{exchange}{line:04d}", "US"
    if shape == 4:
        return f"+1 {area} {exchange} {line:04d}", None
    return f"1{area}{exchange}{line:04d}", "US"


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


# GB mobile blocks phonenumbers knows as MOBILE for any 6-digit rest (no 76xx pagers, no 7700 900).
_UK_MOBILE = (*range(7400, 7600), *range(7701, 7911), *range(7912, 8000))


def _international(rng: random.Random) -> Row:
    shape = rng.randrange(10)
    if shape == 0:
        return f"+44 {rng.choice(_UK_MOBILE)} {_digits(rng, 6)}", None
    if shape == 1:
        return f"0{rng.choice(_UK_MOBILE)} {_digits(rng, 6)}", "GB"
    if shape == 2:
        return f"0049 15{rng.choice('12579')} {_digits(rng, 8)}", "US"
    if shape == 3:
        return f"+49 17{rng.randint(0, 9)} {_digits(rng, 7)}", None
    if shape == 4:
        return (
            f"06 {rng.randint(10, 89)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
            "FR",
        )
    if shape == 5:
        return f"+91 {rng.choice('789')}{_digits(rng, 4)} {_digits(rng, 5)}", None
    if shape == 6:
        return f"04{rng.randint(0, 3)}{rng.randint(0, 9)} {_digits(rng, 3)} {_digits(rng, 3)}", "AU"
    if shape == 7:
        return f"+61 4{rng.randint(0, 3)}{_digits(rng, 7)}", None
    if shape == 8:
        return f"+52 55 {_digits(rng, 4)} {_digits(rng, 4)}", None
    return f"0{rng.choice(['71', '72', '73', '74', '82', '83', '84'])} {_digits(rng, 7)}", "ZA"


def _damaged_or_invalid(rng: random.Random) -> Row:
    shape = rng.randrange(6)
    if shape == 0:
        return f"1.{rng.choice(_AREA_CODES)}555{_digits(rng, 4)}E+10", "US"  # every digit kept
    if shape == 1:
        return f"1.{_digits(rng, 5)}E+10", "US"  # digits lost
    if shape == 2:
        return f"{rng.choice(_AREA_CODES)}555{_digits(rng, 4)}.0", "US"
    if shape == 3:
        return rng.choice(["n/a", "unknown", "-", "call me", "?", "TBD"]), "US"
    if shape == 4:
        return _digits(rng, rng.randint(3, 7)), "GB"  # too short
    return "+" + _digits(rng, rng.randint(16, 19)), None  # too long


def make_rows(count: int, seed: int) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    for _ in range(count):
        pick = rng.random()
        if pick < 0.55:
            rows.append(_nanp(rng))
        elif pick < 0.97:
            rows.append(_international(rng))
        else:
            rows.append(_damaged_or_invalid(rng))
    return rows


def plain_loop(rows: list[Row]) -> int:
    accepted = 0
    for raw, region in rows:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            accepted += 1
    return accepted


def normalizer_loop(rows: list[Row]) -> int:
    normalizer = Normalizer("US")
    raws = [raw for raw, _ in rows]
    regions = [region for _, region in rows]
    return sum(1 for result in normalizer.normalize_many(raws, regions) if result.e164)


def _rates(runs: list[Callable[[list[Row]], int]], rows: list[Row], repeat: int) -> list[float]:
    """Best rows/s of each run; the runs alternate so that a busy machine slows them alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            started = time.perf_counter()
            run(rows)
            best[i] = min(best[i], time.perf_counter() - started)
    return [len(rows) / seconds for seconds in best]


def _check_agreement(rows: list[Row]) -> None:
    fast = Normalizer("US")
    slow = Normalizer("US")
    slow._fast = False  # phonenumbers alone
    for raw, region in rows:
        a, b = fast.normalize(raw, region), slow.normalize(raw, region)
        if a != b:
            raise SystemExit(f"fast path disagrees on {raw!r} ({region}): {a} != {b}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = parser.parse_args()

    rows = make_rows(args.rows, args.seed)
    _check_agreement(rows[:20_000])
    unique = len(set(rows))
    print(f"{len(rows):,} rows ({unique:,} distinct), best of {args.repeat}")
    plain, ours = _rates([plain_loop, normalizer_loop], rows, args.repeat)
    print(f"plain phonenumbers loop     {plain:>10,.0f} rows/s")
    print(f"Normalizer.normalize_many   {ours:>10,.0f} rows/s")
    print(f"ratio                       {ours / plain:>10.2f}x")


if __name__ == "__main__":
    main()
