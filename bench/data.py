"""Seeded test data for the benchmarks: a large mixed recipients CSV and small send lists.

Everything is generated from a seed, so two runs with the same settings read the same bytes. The
generator keeps its own tally of what it wrote (valid, invalid, duplicate, non-GSM names) so the
import section can check the tool's verdict against it.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Real NANP area codes; a few Canadian ones make region lookup work (they stay +1, region CA).
US_AREA_CODES = (  # noqa: SIM905 (a list of words reads better as words)
    "201 202 203 205 206 212 213 214 215 216 217 248 253 267 281 301 302 303 304 305 310 312 "
    "313 314 315 317 318 319 320 321 323 330 336 347 352 360 402 404 405 406 407 408 410 412 "
    "413 414 415 417 425 435 443 469 480 484 501 502 503 504 505 510 512 513 515 516 517 518 "
    "520 530 540 541 559 561 562 571 573 585 586 601 602 603 605 608 609 610 612 614 615 616 "
    "617 618 619 626 630 646 650 651 678 702 703 704 706 707 708 712 713 714 716 717 718 719 "
    "720 727 732 734 737 757 760 763 770 773 775 781 786 801 802 803 804 805 808 810 813 814 "
    "815 816 817 818 828 832 843 845 847 856 858 860 864 865 901 904 907 908 909 910 912 913 "
    "914 915 916 917 918 919 925 929 937 941 949 951 954 970 971 972 973 978 980"
).split()
CA_AREA_CODES = ("416", "514", "604", "613", "780")
# GB mobile prefixes (7xxx) that phonenumbers knows as valid MOBILE for every 6-digit suffix.
UK_MOBILE_PREFIXES = (*range(7400, 7600), *range(7701, 7911), *range(7912, 8000))

GSM_FIRST_NAMES = (  # noqa: SIM905 (a list of words reads better as words)
    "Ava Liam Olivia Noah Emma Lucas Mia Ethan Harper Mason Amelia James Sophia Henry "
    "Isabella Jack Charlotte Leo Grace Daniel Aria Jacob Lily Oliver Chloe William Ella "
    "Scarlett José Renée Søren Åsa Müller Muñoz Björn André Hélène Çelik"
).split()  # the accented letters (é è ø å ü ñ ö Ç) are all in GSM 03.38
ASCII_FIRST_NAMES = tuple(name for name in GSM_FIRST_NAMES if name.isascii())
# Each forces UCS-2: ë, Ł, á, ğ, ı, ţ and ō are not in GSM 03.38.
NON_GSM_FIRST_NAMES = ("Zoë", "Chloë", "Łukasz", "Siobhán", "Ayşe", "Ştefan", "Yūki")
LAST_NAMES = (  # noqa: SIM905 (a list of words reads better as words)
    "Thompson Nguyen García Patel O'Brien Kowalski Schmidt Rossi Smith Brown Martin Williams "
    "Jones Miller Davis Wilson Taylor Anderson Thomas Jackson White Harris Clark Lewis "
    "Walker"
).split()
CITIES = (  # noqa: SIM905 (a list of words reads better as words)
    "Seattle Chicago Boston Denver Austin Portland Atlanta Miami Phoenix Toronto London "
    "Manchester Berlin Mexico-City São-Paulo"
).split()

BIG_TEMPLATE = (
    "Hi {first_name|there}, our spring sale starts today: 20% off everything in store and online "
    "until Sunday. Reply STOP to opt out"
)
ONE_PART_TEMPLATE = "Hi {first_name|there}, your order has shipped. Reply STOP to opt out"
# Plain GSM-7 text of 400 characters: more than 2 x 153, at most 3 x 153, so exactly 3 parts.
THREE_PART_BODY = (
    "Spring sale at Example Store: 20% off everything this weekend, in store and online. " * 5
)[:392].rstrip() + " Reply STOP"
assert len(THREE_PART_BODY) <= 459 and len(THREE_PART_BODY) > 306, len(THREE_PART_BODY)
assert THREE_PART_BODY.isascii() and "{" not in THREE_PART_BODY


@dataclass
class BigCsvFacts:
    """What the generator wrote, by its own tally."""

    path: str
    rows: int
    seed: int
    unique_valid: int = 0
    duplicates: int = 0
    invalid: int = 0
    non_gsm_names: int = 0
    empty_names: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    invalid_kinds: dict[str, int] = field(default_factory=dict)


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


def _us_number(rng: random.Random) -> tuple[int, str, str, str]:
    """(E.164 as int, area, exchange, line) of a random NANP number, US mostly, some CA."""
    area = rng.choice(CA_AREA_CODES) if rng.random() < 0.05 else rng.choice(US_AREA_CODES)
    exchange = str(rng.randint(200, 999))
    line = _digits(rng, 4)
    return int(f"1{area}{exchange}{line}"), area, exchange, line


def _write_us(area: str, exchange: str, line: str, shape: int) -> tuple[str, str]:
    shapes = (
        ("us-paren", f"({area}) {exchange}-{line}"),
        ("us-plus-spaced", f"+1 {area} {exchange} {line}"),
        ("us-dots", f"{area}.{exchange}.{line}"),
        ("us-dashes", f"{area}-{exchange}-{line}"),
        ("us-digits", f"{area}{exchange}{line}"),
        ("us-1-dashes", f"1-{area}-{exchange}-{line}"),
        ("us-plus-compact", f"+1{area}{exchange}{line}"),
    )
    return shapes[shape % len(shapes)]


def _international(rng: random.Random) -> tuple[int, str, str]:
    """(E.164 as int, format label, text) of a valid foreign mobile written with +CC."""
    pick = rng.random()
    if pick < 0.6:
        prefix = rng.choice(UK_MOBILE_PREFIXES)
        rest = _digits(rng, 6)
        text = f"+44 {prefix} {rest}" if rng.random() < 0.7 else f"+44{prefix}{rest}"
        return int(f"44{prefix}{rest}"), "uk-plus", text
    if pick < 0.75:
        head = f"15{rng.choice('129')}{rng.randint(0, 9)}"
        rest = _digits(rng, 7)
        return int(f"49{head}{rest}"), "de-plus", f"+49 {head} {rest}"
    if pick < 0.85:
        a, b = _digits(rng, 4), _digits(rng, 5)
        return int(f"919{a}{b}"), "in-plus", f"+91 9{a} {b}"
    if pick < 0.93:
        a, b = _digits(rng, 4), _digits(rng, 4)
        return int(f"5511 9{a}{b}".replace(" ", "")), "br-plus", f"+55 11 9{a}-{b}"
    a, b = _digits(rng, 4), _digits(rng, 4)
    return int(f"5255{a}{b}"), "mx-plus", f"+52 55 {a} {b}"


def _rewrite(e164: int, rng: random.Random) -> tuple[str, str]:
    """The same number in another written format (for duplicates)."""
    text = str(e164)
    if text.startswith("1") and len(text) == 11:
        area, exchange, line = text[1:4], text[4:7], text[7:]
        return _write_us(area, exchange, line, rng.randrange(7))
    if text.startswith("44"):
        return "uk-dup", f"+44 ({text[2:6]}) {text[6:]}"
    return "intl-dup", "+" + text


def _invalid(rng: random.Random) -> tuple[str, str]:
    """(kind, text) of a cell the tool must reject."""
    pick = rng.randrange(7)
    if pick == 0:
        return "garbage", rng.choice(["n/a", "call me", "TBD", "???", "none", "12ab34", "-"])
    if pick == 1:
        return "too-short", rng.choice([f"555-{_digits(rng, 4)}", _digits(rng, 5)])
    if pick == 2:
        return "uk-fixed-line", f"+44 20 7946 {_digits(rng, 4)}"
    if pick == 3:
        return "us-toll-free", f"+1 800 555 {_digits(rng, 4)}"
    if pick == 4:
        return "too-long", f"+1 206 555 {_digits(rng, 4)} {_digits(rng, 3)}"
    if pick == 5:
        return "uk-drama-range", f"+44 7700 900{_digits(rng, 3)}"
    return "empty", ""


def _first_name(rng: random.Random, facts: BigCsvFacts) -> str:
    pick = rng.random()
    if pick < 0.03:
        facts.non_gsm_names += 1
        return rng.choice(NON_GSM_FIRST_NAMES)
    if pick < 0.05:
        facts.empty_names += 1
        return ""  # the template's fallback applies
    return rng.choice(GSM_FIRST_NAMES)


def write_big_csv(
    path: Path,
    rows: int,
    seed: int,
    *,
    invalid_share: float = 0.03,
    duplicate_share: float = 0.02,
) -> BigCsvFacts:
    """first_name,last_name,phone,city: NANP numbers in seven formats, +CC mobiles (GB mostly),
    ~3% invalid cells, ~2% repeats of an earlier number written another way."""
    rng = random.Random(seed)
    facts = BigCsvFacts(str(path), rows, seed)
    formats: Counter[str] = Counter()
    invalid_kinds: Counter[str] = Counter()
    seen: set[int] = set()
    written: list[int] = []  # numbers that may be repeated later
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["first_name", "last_name", "phone", "city"])
        for _ in range(rows):
            pick = rng.random()
            if pick < invalid_share:
                kind, phone = _invalid(rng)
                invalid_kinds[kind] += 1
                facts.invalid += 1
                label = "invalid"
            elif pick < invalid_share + duplicate_share and written:
                label, phone = _rewrite(rng.choice(written), rng)
                facts.duplicates += 1
            else:
                while True:
                    if rng.random() < 0.85:
                        e164, area, exchange, line = _us_number(rng)
                        label, phone = _write_us(area, exchange, line, rng.randrange(7))
                    else:
                        e164, label, phone = _international(rng)
                    if e164 not in seen:
                        break
                seen.add(e164)
                if len(written) < 200_000:
                    written.append(e164)
                facts.unique_valid += 1
            formats[label] += 1
            out.writerow(
                [_first_name(rng, facts), rng.choice(LAST_NAMES), phone, rng.choice(CITIES)]
            )
    tmp.replace(path)
    facts.formats = dict(formats.most_common())
    facts.invalid_kinds = dict(invalid_kinds.most_common())
    return facts


def big_csv(directory: Path, rows: int, seed: int) -> BigCsvFacts:
    """The big CSV for (rows, seed), generated once and reused (its tally is kept beside it)."""
    path = directory / f"recipients-{rows}-s{seed}.csv"
    tally = path.with_suffix(".json")
    if path.exists() and tally.exists():
        try:
            cached = BigCsvFacts(**json.loads(tally.read_text()))
        except (TypeError, ValueError):
            cached = None
        if cached is not None and cached.rows == rows and cached.seed == seed:
            return cached
    facts = write_big_csv(path, rows, seed)
    tally.write_text(json.dumps(asdict(facts), indent=2))
    return facts


def unique_us_numbers(count: int, seed: int) -> list[str]:
    """`count` distinct valid US mobile-capable numbers in E.164."""
    rng = random.Random(seed)
    seen: set[int] = set()
    numbers: list[str] = []
    while len(numbers) < count:
        e164 = int(f"1{rng.choice(US_AREA_CODES)}{rng.randint(200, 999)}{_digits(rng, 4)}")
        if e164 not in seen:
            seen.add(e164)
            numbers.append(f"+{e164}")
    return numbers


def write_send_csv(path: Path, count: int, seed: int) -> None:
    """A send list: `count` distinct valid numbers, GSM-7 first names only (fixed part counts)."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["first_name", "phone"])
        for number in unique_us_numbers(count, seed):
            out.writerow([rng.choice(ASCII_FIRST_NAMES), number])
