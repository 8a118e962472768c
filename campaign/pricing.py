"""Price tables and the offline estimate (`campaign estimate`).

No AWS API quotes prices, so a price table is user data: a CSV with `country` (ISO alpha-2, or `*`
for every other country), `price_per_part` and optional `carrier_fee_per_part`, in USD. A message
costs parts x (price_per_part + carrier_fee_per_part).

Money is `decimal.Decimal` throughout: 0.00581 x 3,000,000 parts must come out as exactly 17430.00,
which binary floats do not promise. Only `Estimate.to_json()` turns amounts into floats, rounded to
6 decimal places (a micro-dollar: finer than any price on the AWS pricing page), and it adds the
exact amount as a string (`cost_exact`) for whoever needs it to the last digit.

The estimate works on `PartsClass`es, pending recipients grouped by (country, encoding, parts), so a
million recipients are a few hundred classes and no individual row is touched.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from campaign.domain import PartsClass, Ucs2Character
from campaign.errors import UserError, count

if TYPE_CHECKING:  # the ledger is the caller's: pricing stays offline and light
    from campaign.ledger import Ledger

CURRENCY = "USD"
ANY_COUNTRY = "*"
# JSON amounts are rounded to a micro-dollar (see the module docstring).
JSON_QUANTUM = Decimal("0.000001")
# No SMS part costs this much (MaxPrice, per message, stops at 99.99999): a figure above it is a
# typo or another unit, and one far above it leaves Decimal's precision in the totals.
MAX_AMOUNT_PER_PART = Decimal(100)
UNKNOWN_COUNTRY_LABEL = "??"

_COUNTRY_RE = re.compile(r"[A-Z]{2}")
# Codes people reach for that are not ISO 3166 alpha-2.
_COUNTRY_HINTS = {"UK": "GB", "EL": "GR"}


class PriceTableError(UserError, ValueError):
    """The price table cannot be used. The message is one line naming the file and the row."""


# -- price tables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    price_per_part: Decimal
    carrier_fee_per_part: Decimal = Decimal(0)

    @property
    def per_part(self) -> Decimal:
        """What one part costs: the price plus the carrier fee."""
        return self.price_per_part + self.carrier_fee_per_part

    def for_message(self, parts: int) -> Decimal:
        return self.per_part * parts


@dataclass(frozen=True)
class PriceTable:
    """Prices by ISO alpha-2 country (upper case), `*` for every other country."""

    prices: Mapping[str, Price] = field(default_factory=dict)
    source: str = ""  # the file name, for display; "" when there is no table

    @classmethod
    def default(cls) -> PriceTable:
        """No table: every country is unpriced (never free)."""
        return cls()

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        name = path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PriceTableError(
                f"{name}: cannot read the price table: {exc.strerror or exc}"
            ) from None
        try:
            text = data.decode("utf-8-sig")  # Excel writes a BOM; accept it either way
        except UnicodeDecodeError as exc:
            raise PriceTableError(
                f"{name}: not UTF-8 text (byte {exc.start}); save the price table as UTF-8"
            ) from None
        return cls.parse(text, source=name)

    @classmethod
    def parse(cls, text: str, *, source: str) -> PriceTable:
        """Parse CSV text; `source` names the table in error messages."""
        rows = csv.reader(io.StringIO(text, newline=""))
        header: list[str] | None = None
        for cells in rows:
            if any(c.strip() for c in cells):
                header = cells
                break
        if header is None:
            raise PriceTableError(f"{source}: empty price table (no header, no rows)")
        columns = _header_columns(header, source)
        prices: dict[str, Price] = {}
        first_seen: dict[str, int] = {}
        data_row = 0
        for cells in rows:
            data_row += 1  # blank lines count too, so row N is the Nth line after the header
            if not any(c.strip() for c in cells):
                continue
            where = f"{source}: row {data_row}"
            if len(cells) > len(header):
                # Almost always a decimal comma ("0,00581") splitting a price into two cells.
                raise PriceTableError(
                    f"{where}: {count(len(cells), 'cell')} but the header has "
                    f"{count(len(header), 'column')} "
                    "(a decimal comma? write prices with a dot: 0.00581)"
                )
            country = _parse_country(_cell(cells, columns.get("country")), where)
            price = _parse_amount(
                _cell(cells, columns.get("priceperpart")), "price_per_part", where, required=True
            )
            fee = _parse_amount(
                _cell(cells, columns.get("carrierfeeperpart")),
                "carrier_fee_per_part",
                where,
                required=False,
            )
            if country in first_seen:
                raise PriceTableError(
                    f"{where}: country {country} listed twice (first at row {first_seen[country]})"
                )
            first_seen[country] = data_row
            prices[country] = Price(price, fee)
        if not prices:
            raise PriceTableError(f"{source}: empty price table (a header but no price rows)")
        return cls(prices=prices, source=source)

    def price_for(self, country: str | None) -> Price | None:
        """The exact country's price, else the `*` price, else None (unpriced).

        A recipient whose country is unknown gets the `*` price: `*` means "every other country"."""
        if country is not None:
            found = self.prices.get(country.upper())
            if found is not None:
                return found
        return self.prices.get(ANY_COUNTRY)

    def __bool__(self) -> bool:
        return bool(self.prices)


def _norm_header(name: str) -> str:
    # "Price per part", "price_per_part" and "PricePerPart" all name the same column.
    return re.sub(r"[\s_\-]+", "", name).lower()


def _header_columns(header: Sequence[str], source: str) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        key = _norm_header(raw)
        if not key:
            continue
        if key in columns and key in {"country", "priceperpart", "carrierfeeperpart"}:
            raise PriceTableError(f"{source}: header: column {raw.strip()!r} appears twice")
        columns.setdefault(key, index)  # other columns (a note, a carrier name) are ignored
    for needed, spelled in (("country", "country"), ("priceperpart", "price_per_part")):
        if needed not in columns:
            found = ", ".join(h.strip() for h in header if h.strip()) or "nothing"
            raise PriceTableError(
                f"{source}: header: missing column {spelled} (found: {found}); "
                "want country,price_per_part[,carrier_fee_per_part]"
            )
    return columns


def _cell(cells: Sequence[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


def _parse_country(text: str, where: str) -> str:
    if not text:
        raise PriceTableError(f"{where}: empty country (want an ISO alpha-2 code like US, or *)")
    code = text.upper()
    if code == ANY_COUNTRY:
        return code
    if not _COUNTRY_RE.fullmatch(code):
        raise PriceTableError(
            f"{where}: ill-formed country code {text!r} (want two letters like US or GB, or *)"
        )
    if code not in _phone_regions():
        hint = f"; did you mean {_COUNTRY_HINTS[code]}?" if code in _COUNTRY_HINTS else ""
        raise PriceTableError(
            f"{where}: unknown country code {text!r} (no phone numbers belong to it){hint}"
        )
    return code


def _phone_regions() -> frozenset[str]:
    # Recipients' countries come from phonenumbers, so a code it does not know can never match.
    from phonenumbers import SUPPORTED_REGIONS

    return frozenset(SUPPORTED_REGIONS)


def _parse_amount(text: str, column: str, where: str, *, required: bool) -> Decimal:
    if not text:
        if required:
            raise PriceTableError(f"{where}: empty {column}")
        return Decimal(0)
    try:
        value = Decimal(text.removeprefix("$").strip())
    except InvalidOperation:
        raise PriceTableError(f"{where}: {column} {text!r} is not a number") from None
    if not value.is_finite():
        raise PriceTableError(f"{where}: {column} {text!r} is not a number")
    if value < 0:
        raise PriceTableError(f"{where}: {column} {text!r} is negative")
    if value > MAX_AMOUNT_PER_PART:
        raise PriceTableError(
            f"{where}: {column} {text!r} is more than ${MAX_AMOUNT_PER_PART} a part "
            "(the table is in US dollars per message part)"
        )
    return value


def cost_of(parts: int, country: str | None, table: PriceTable | None) -> Decimal | None:
    """Estimated cost of one message of `parts` parts, or None when the country has no price.

    The sender calls this per claim to enforce a budget: a dict lookup and one multiplication."""
    if table is None:
        return None
    price = table.price_for(country)
    return None if price is None else price.per_part * parts


# -- the estimate ----------------------------------------------------------------------------------


def classes_cost(classes: Iterable[PartsClass], table: PriceTable) -> tuple[Decimal, int]:
    """(estimated cost, unpriced recipients) of recipients grouped in (country, parts) classes.
    Unpriced recipients are counted apart, never as free."""
    total = Decimal(0)
    unpriced = 0
    for cls in classes:
        cost = cost_of(cls.parts, cls.country, table)
        if cost is None:
            unpriced += cls.recipients
        else:
            total += cost * cls.recipients
    return total, unpriced


def recorded_spend(
    ledger: Ledger, campaign_id: int, prices: PriceTable | None
) -> tuple[Decimal, int]:
    """(estimated spend, unpriced calls) of the calls the ledger says may have cost money:
    accepted, `unknown` and in flight, each call of a recipient retried with --retry-unknown."""
    if prices is None:
        return Decimal(0), 0
    return classes_cost(ledger.called_classes(campaign_id), prices)


@dataclass(frozen=True)
class CountryEstimate:
    country: str | None  # None: the recipients' country is not known
    recipients: int
    gsm7: int  # messages (one per recipient) by encoding
    ucs2: int
    parts_gsm7: int
    parts_ucs2: int
    price: Price | None  # None: unpriced
    cost: Decimal | None  # None: unpriced, never zero
    over_max_price: int  # messages AWS would reject for costing more than MaxPrice
    over_max_price_from_parts: int | None  # the smallest part count that goes over MaxPrice

    @property
    def parts(self) -> int:
        return self.parts_gsm7 + self.parts_ucs2

    @property
    def priced(self) -> bool:
        return self.price is not None

    @property
    def label(self) -> str:
        return self.country or UNKNOWN_COUNTRY_LABEL


@dataclass(frozen=True)
class Totals:
    recipients: int
    gsm7: int
    ucs2: int
    parts_gsm7: int
    parts_ucs2: int
    cost: Decimal | None  # sum over priced countries; None when nothing could be priced
    over_max_price: int
    unpriced: int  # recipients whose country has no price
    unpriced_parts: int

    @property
    def parts(self) -> int:
        return self.parts_gsm7 + self.parts_ucs2


@dataclass(frozen=True)
class Ucs2Finding:
    character: str
    name: str
    codepoint: str  # "U+2019" (several, space-separated, for a multi-code-point character)
    source: str  # "template" or "column:<name>"
    rows: int
    extra_parts: int  # parts the rows with it take beyond what they would in GSM-7
    gsm_safe: str | None  # what --gsm-safe replaces it with; None: no GSM-7 look-alike


@dataclass(frozen=True)
class Estimate:
    campaign: str
    countries: tuple[CountryEstimate, ...]
    total: Totals
    prices_source: str | None  # the price table's file name; None without a table
    max_price: str | None  # MaxPrice as stored (the API's own string)
    mps: float | None
    mps_source: str | None
    duration_seconds: float | None
    ucs2_characters: tuple[Ucs2Finding, ...]
    gsm_safe_hint: str | None

    def to_json(self) -> dict[str, Any]:
        """The `estimate --json` object. Amounts are floats rounded to 6 decimals (micro-dollars),
        `cost_exact` the exact Decimal as a string; `cost` is null when unpriced."""
        t = self.total
        return {
            "campaign": self.campaign,
            "currency": CURRENCY,
            "prices": self.prices_source,
            "max_price": self.max_price,
            "total": {
                "recipients": t.recipients,
                "parts": t.parts,
                "cost": _money(t.cost),
                "cost_exact": _exact(t.cost),
                "over_max_price": t.over_max_price,
                "unpriced": t.unpriced,
                "unpriced_parts": t.unpriced_parts,
                "gsm7": t.gsm7,
                "ucs2": t.ucs2,
                "parts_gsm7": t.parts_gsm7,
                "parts_ucs2": t.parts_ucs2,
            },
            "countries": [_country_json(c) for c in self.countries],
            "ucs2_characters": [_finding_json(u) for u in self.ucs2_characters],
            "gsm_safe_hint": self.gsm_safe_hint,
            "mps": self.mps,
            "mps_source": self.mps_source,
            "duration_seconds": self.duration_seconds,
        }


def _country_json(c: CountryEstimate) -> dict[str, Any]:
    return {
        "country": c.country,
        "recipients": c.recipients,
        "gsm7": c.gsm7,
        "ucs2": c.ucs2,
        "parts": c.parts,
        "parts_gsm7": c.parts_gsm7,
        "parts_ucs2": c.parts_ucs2,
        "cost": _money(c.cost),
        "cost_exact": _exact(c.cost),
        "over_max_price": c.over_max_price,
        "over_max_price_from_parts": c.over_max_price_from_parts,
        "unpriced": not c.priced,
        "price_per_part": _money(c.price.per_part if c.price else None),
        "base_price_per_part": _money(c.price.price_per_part if c.price else None),
        "carrier_fee_per_part": _money(c.price.carrier_fee_per_part if c.price else None),
    }


def _finding_json(u: Ucs2Finding) -> dict[str, Any]:
    return {
        "character": u.character,
        "name": u.name,
        "codepoint": u.codepoint,
        "source": u.source,
        "rows": u.rows,
        "extra_parts": u.extra_parts,
        "gsm_safe": u.gsm_safe,
    }


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(JSON_QUANTUM, ROUND_HALF_UP))


def _exact(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _is_ucs2(encoding: str | None) -> bool:
    # The ledger stores "UCS-2"/"GSM-7"; be lenient about spelling. Anything else is counted as
    # GSM-7: the parts were already counted at import, the encoding only splits the report.
    return encoding is not None and re.sub(r"[^a-z0-9]", "", encoding.lower()) in {"ucs2", "utf16"}


def parse_max_price(max_price: str | None) -> Decimal | None:
    if max_price is None or not max_price.strip():
        return None
    try:
        value = Decimal(max_price.strip())
    except InvalidOperation:
        raise ValueError(f"MaxPrice {max_price!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"MaxPrice {max_price!r} is not a price")
    return value


def estimate(
    *,
    campaign: str,
    classes: Sequence[PartsClass],
    table: PriceTable | None,
    max_price: str | None,
    mps: float | None,
    mps_source: str | None,
    ucs2: Sequence[Ucs2Character],
    lookalikes: Mapping[str, str] | None = None,
) -> Estimate:
    """The offline estimate of sending `classes`. Pure: no I/O.

    Per message, AWS compares parts x (price + carrier fee) with MaxPrice and rejects it when the
    price is strictly greater; equal is allowed. The carrier fee is included: the conservative
    reading, since the fee is part of what a message costs. `lookalikes` defaults to
    campaign.message.GSM_LOOKALIKES (what `--gsm-safe` replaces)."""
    ceiling = parse_max_price(max_price)
    countries = _by_country(classes, table, ceiling)
    total = _totals(countries, has_table=table is not None and bool(table))
    duration = total.parts / mps if mps is not None and mps > 0 else None
    findings = _findings(ucs2, lookalikes)
    return Estimate(
        campaign=campaign,
        countries=tuple(countries),
        total=total,
        prices_source=(table.source or None) if table is not None else None,
        max_price=max_price,
        mps=mps,
        mps_source=mps_source,
        duration_seconds=None if duration is None else round(duration, 3),
        ucs2_characters=findings,
        gsm_safe_hint=_gsm_safe_hint(findings),
    )


def _by_country(
    classes: Sequence[PartsClass], table: PriceTable | None, ceiling: Decimal | None
) -> list[CountryEstimate]:
    """One `CountryEstimate` per destination country, biggest audience first."""
    acc: dict[str | None, dict[str, int]] = {}
    for cls in classes:
        slot = acc.setdefault(
            cls.country.upper() if cls.country else None,
            {"gsm7": 0, "ucs2": 0, "parts_gsm7": 0, "parts_ucs2": 0, "over": 0},
        )
        kind = "ucs2" if _is_ucs2(cls.encoding) else "gsm7"
        slot[kind] += cls.recipients
        slot[f"parts_{kind}"] += cls.parts * cls.recipients
        price = table.price_for(cls.country) if table is not None else None
        if ceiling is not None and price is not None and price.for_message(cls.parts) > ceiling:
            slot["over"] += cls.recipients
    # The cost multiplies per-part price by the country's total parts: exact in Decimal, and
    # the same as summing message by message.
    countries: list[CountryEstimate] = []
    for country, s in acc.items():
        price = table.price_for(country) if table is not None else None
        parts = s["parts_gsm7"] + s["parts_ucs2"]
        countries.append(
            CountryEstimate(
                country=country,
                recipients=s["gsm7"] + s["ucs2"],
                gsm7=s["gsm7"],
                ucs2=s["ucs2"],
                parts_gsm7=s["parts_gsm7"],
                parts_ucs2=s["parts_ucs2"],
                price=price,
                cost=None if price is None else price.per_part * parts,
                over_max_price=s["over"],
                over_max_price_from_parts=_first_part_over(price, ceiling),
            )
        )
    # Biggest audiences first: that is where the money goes. Ties by code, unknown country last.
    countries.sort(key=lambda c: (-c.recipients, c.country is None, c.country or ""))
    return countries


def _totals(countries: Sequence[CountryEstimate], *, has_table: bool) -> Totals:
    """The sums over every country; the cost is unknown (None) rather than $0 when unpriced."""
    priced = [c for c in countries if c.priced]
    unpriced = [c for c in countries if not c.priced]
    recipients = sum(c.recipients for c in countries)
    total_cost: Decimal | None = sum((c.cost for c in priced if c.cost is not None), Decimal(0))
    # Unpriced is never free: with no table, or nobody priced, the total is unknown, not $0.
    if not has_table or (recipients and not priced):
        total_cost = None
    return Totals(
        recipients=recipients,
        gsm7=sum(c.gsm7 for c in countries),
        ucs2=sum(c.ucs2 for c in countries),
        parts_gsm7=sum(c.parts_gsm7 for c in countries),
        parts_ucs2=sum(c.parts_ucs2 for c in countries),
        cost=total_cost,
        over_max_price=sum(c.over_max_price for c in countries),
        unpriced=sum(c.recipients for c in unpriced),
        unpriced_parts=sum(c.parts for c in unpriced),
    )


def _findings(
    ucs2: Sequence[Ucs2Character], lookalikes: Mapping[str, str] | None
) -> tuple[Ucs2Finding, ...]:
    if lookalikes is None:
        from campaign.message import GSM_LOOKALIKES

        lookalikes = GSM_LOOKALIKES
    return tuple(_finding(u, lookalikes) for u in ucs2)


def _first_part_over(price: Price | None, ceiling: Decimal | None) -> int | None:
    """The smallest number of parts whose price is over MaxPrice (None: no ceiling or no price)."""
    if price is None or ceiling is None:
        return None
    if price.per_part == 0:
        return None  # free parts never pass a ceiling
    return math.floor(ceiling / price.per_part) + 1


def _finding(u: Ucs2Character, lookalikes: Mapping[str, str]) -> Ucs2Finding:
    return Ucs2Finding(
        character=u.character,
        name=char_name(u.character),
        codepoint=" ".join(f"U+{ord(c):04X}" for c in u.character),
        source=u.source,
        rows=u.rows,
        extra_parts=u.extra_parts,
        gsm_safe=lookalikes.get(u.character),
    )


def char_name(character: str) -> str:
    names = [unicodedata.name(c, "") or _unnamed(c) for c in character]
    return " + ".join(names)


def _unnamed(c: str) -> str:
    # Control characters have no Unicode name; say what they are rather than nothing.
    return f"<{unicodedata.category(c)} U+{ord(c):04X}>"


def _gsm_safe_hint(findings: Sequence[Ucs2Finding]) -> str | None:
    if not findings:
        return None
    fixable = _unique(f for f in findings if f.gsm_safe is not None)
    stuck = _unique(f for f in findings if f.gsm_safe is None)
    if not fixable:
        return None
    swaps = ", ".join(
        f"{show_character(f.character)} with {show_character(f.gsm_safe or '')}" for f in fixable
    )
    if not stuck:
        return (
            f"create the campaign with --gsm-safe: it would replace {swaps}, and these messages "
            "would be GSM-7"
        )
    kept = ", ".join(f"{show_character(f.character)} ({f.codepoint})" for f in stuck)
    return (
        f"--gsm-safe would replace {swaps}, but {kept} has no GSM-7 look-alike: messages "
        "containing it stay UCS-2"
    )


def _unique(findings: Iterable[Ucs2Finding]) -> list[Ucs2Finding]:
    # One character can come from several sources; name it once.
    seen: dict[str, Ucs2Finding] = {}
    for f in findings:
        seen.setdefault(f.character, f)
    return list(seen.values())


def show_character(text: str) -> str:
    """A character as the terminal can show it: quoted, or by code point when invisible."""
    if text == " " or (text and all(unicodedata.category(c)[0] in "LMNPS" for c in text)):
        return f'"{text}"' if "'" in text else f"'{text}'"
    if not text:
        return "''"
    return " ".join(f"U+{ord(c):04X}" for c in text)


__all__ = [
    "ANY_COUNTRY",
    "CURRENCY",
    "CountryEstimate",
    "Estimate",
    "Price",
    "PriceTable",
    "PriceTableError",
    "Totals",
    "Ucs2Finding",
    "char_name",
    "classes_cost",
    "cost_of",
    "estimate",
    "parse_max_price",
    "show_character",
]
