"""campaign.phones.normalize: E.164 normalization, spreadsheet repairs, and agreement with phonenumbers."""

from __future__ import annotations

import math
import pickle
import random
import re
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import phonenumbers
import pytest
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from campaign.phones.normalize import (
    Normalizer,
    PhoneResult,
    _has_letters,
    _several_numbers,
    normalize,
    repair_spreadsheet_number,
)

# (raw cell, region, expected E.164 or None, expected country, expected reason or None)
ACCEPTED_OR_REJECTED = [
    # -- national formats, read with the row's region
    ("(206) 555-0142", "US", "+12065550142", "US", None),  # NANP, parenthesised area code
    ("206.555.0142", "US", "+12065550142", "US", None),  # dotted
    ("1-206-555-0142", "US", "+12065550142", "US", None),  # with NANP trunk prefix 1
    ("14155552671", "US", "+14155552671", "US", None),  # trunk prefix, no formatting
    ("(506) 234-5678", "CA", "+15062345678", "CA", None),  # Canada
    ("(416) 555-0142", "US", "+14165550142", "CA", None),  # a Canadian number in a US file
    ("07400 123456", "GB", "+447400123456", "GB", None),  # UK mobile; the leading 0 is kept as text
    ("07400123456", "gb", "+447400123456", "GB", None),  # region code is case-insensitive
    ("01512 3456789", "DE", "+4915123456789", "DE", None),  # German mobile
    ("06 12 34 56 78", "FR", "+33612345678", "FR", None),  # French mobile
    ("081234 56789", "IN", "+918123456789", "IN", None),  # Indian mobile
    ("0412 345 678", "AU", "+61412345678", "AU", None),  # Australian mobile
    ("(11) 96123-4567", "BR", "+5511961234567", "BR", None),  # Brazilian mobile
    ("222 123 4567", "MX", "+522221234567", "MX", None),  # Mexico
    ("090-1234-5678", "JP", "+819012345678", "JP", None),  # Japanese mobile
    ("0802 123 4567", "NG", "+2348021234567", "NG", None),  # Nigeria
    ("071 123 4567", "ZA", "+27711234567", "ZA", None),  # South Africa
    ("612 34 56 78", "ES", "+34612345678", "ES", None),  # Spain (no trunk prefix)
    ("312 345 6789", "IT", "+393123456789", "IT", None),  # Italian mobile
    ("06 12345678", "NL", "+31612345678", "NL", None),  # Dutch mobile
    ("070-123 45 67", "SE", "+46701234567", "SE", None),  # Swedish mobile
    ("8123 4567", "SG", "+6581234567", "SG", None),  # Singapore
    ("0905 123 4567", "PH", "+639051234567", "PH", None),  # Philippines
    ("011 15-2345-6789", "AR", "+5491123456789", "AR", None),  # Argentina: 15 becomes 9 (transform)
    ("085 012 3456", "IE", "+353850123456", "IE", None),  # Ireland
    # -- international formats
    ("+44 7400 123456", None, "+447400123456", "GB", None),  # "+" needs no region
    ("+44 (0)7400 123456", None, "+447400123456", "GB", None),  # "(0)" trunk prefix dropped
    ("+49 151 23456789", "US", "+4915123456789", "DE", None),  # "+" wins over the row's region
    ("0049 151 23456789", None, "+4915123456789", "DE", None),  # 00 without any region
    ("0049 151 23456789", "US", "+4915123456789", "DE", None),  # 00 in a region whose IDD is 011
    ("0044 7400 123456", "GB", "+447400123456", "GB", None),  # 00 is the UK's own IDD
    (
        "011 44 7400 123456",
        "US",
        "+447400123456",
        "GB",
        None,
    ),  # the US IDD, handled by phonenumbers
    ("0011 44 7400 123456", "AU", "+447400123456", "GB", None),  # the Australian IDD
    ("447400123456", "GB", "+447400123456", "GB", None),  # the region's own code without "+"
    ("tel:+1-415-555-2671", None, "+14155552671", "US", None),  # RFC 3966 URI
    (" \t+1 415 555 2671\n", None, "+14155552671", "US", None),  # surrounding whitespace
    ("+1\u00a0415\u2013555\u20132671", None, "+14155552671", "US", None),  # NBSP, en dashes
    ("+7 912 345-67-89", None, "+79123456789", "RU", None),  # +7 shared by RU and KZ
    ("+7 701 234 5678", None, "+77012345678", "KZ", None),  # ... Kazakhstan by leading digits
    ("+1 876 210 1234", None, "+18762101234", "JM", None),  # NANP Caribbean region
    # -- AWS simulator numbers (docs/aws-facts.md); the samples use them
    ("+14254147755", None, "+14254147755", "US", None),  # US success
    ("+14254147167", None, "+14254147167", "US", None),  # US failure
    ("+447860019066", None, "+447860019066", "GB", None),  # UK
    ("+447860019067", None, "+447860019067", "GB", None),  # UK
    ("+61455944038", None, "+61455944038", "AU", None),  # AU
    ("+61455944039", None, "+61455944039", "AU", None),  # AU
    (
        "+1 206 555 0100",
        None,
        "+12065550100",
        "US",
        None,
    ),  # fictional 555-01xx: valid per phonenumbers
    # -- rejected: not a number that can receive an SMS
    ("", "US", None, None, "empty"),  # empty cell
    ("   ", "US", None, None, "empty"),  # whitespace only
    ("nan", "US", None, None, "empty"),  # what pandas writes for a missing cell
    ("call me", "US", None, None, "unparseable: not a phone number"),  # garbage
    ("n/a", "US", None, None, "unparseable: not a phone number"),  # garbage
    ("7", "US", None, None, "unparseable: not a phone number"),  # one digit is nothing
    ("12", "US", None, "US", "not a possible number for US (too short)"),
    ("+1 415 555 2671 999 1234 56", None, None, None, "unparseable: too long"),  # > 17 digits
    ("+999 1234 5678", None, None, None, "unparseable: unknown country calling code"),
    ("4155552671", None, None, None, "no country code and no default region"),  # nothing to go on
    ("07700 900123", "GB", None, "GB", "invalid number for GB"),  # Ofcom drama range: not valid
    ("+44 7400 12345", None, None, "GB", "invalid number for GB"),  # a digit short, possible length
    ("+44 74", None, None, "GB", "not a possible number for GB (too short)"),  # far too short
    ("555 0142", "US", None, "US", "not a possible number for US (local number only)"),
    ("(123) 555-0142", "US", None, "US", "invalid number for US"),  # no area code starts with 1
    ("+1 123 555 0142", "CA", None, "CA", "invalid number for CA"),  # row region guesses country
    ("+1 800 234 5678", None, None, "US", "not a mobile-capable number (toll-free)"),
    ("+1 900 234 5678", None, None, "US", "not a mobile-capable number (premium rate)"),
    ("0121 234 5678", "GB", None, "GB", "not a mobile-capable number (fixed line)"),
    ("0800 123 4567", "GB", None, "GB", "not a mobile-capable number (toll-free)"),
    ("0901 234 5678", "GB", None, "GB", "not a mobile-capable number (premium rate)"),
    ("056 1234 5678", "GB", None, "GB", "not a mobile-capable number (VoIP)"),
    ("070 1234 5678", "GB", None, "GB", "not a mobile-capable number (personal number)"),
    ("076 4012 3456", "GB", None, "GB", "not a mobile-capable number (pager)"),
    ("055 1234 5678", "GB", None, "GB", "not a mobile-capable number (UAN)"),
    ("0180 1 2345", "DE", None, "DE", "not a mobile-capable number (shared cost)"),
    ("09 12 34 56 78", "FR", None, "FR", "not a mobile-capable number (VoIP)"),  # French box lines
    ("+800 1234 5678", None, None, None, "non-geographic number (+800)"),  # international freephone
    ("+1 415 555 2671 ext. 123", None, None, "US", "has an extension"),  # SMS can't reach an ext
    ("415-555-2671 x12", "US", None, "US", "has an extension"),
    ("tel:+1-415-555-2671;ext=12", None, None, "US", "has an extension"),
]


@pytest.mark.parametrize(("raw", "region", "e164", "country", "reason"), ACCEPTED_OR_REJECTED)
def test_normalize_table(
    raw: str, region: str | None, e164: str | None, country: str | None, reason: str | None
) -> None:
    result = Normalizer().normalize(raw, region)
    assert (result.e164, result.country, result.reason) == (e164, country, reason)
    assert result.ok is (e164 is not None)
    # Without the fast path (phonenumbers alone) the answer is the same, reason included.
    assert _slow().normalize(raw, region) == result


def test_number_types_are_lower_case_names() -> None:
    assert normalize("+14155552671").number_type == "fixed_line_or_mobile"  # NANP
    assert normalize("+447400123456").number_type == "mobile"
    assert normalize("+441212345678").number_type == "fixed_line"
    assert normalize("+18002345678").number_type == "toll_free"
    assert normalize("garbage").number_type is None  # no type for what isn't a valid number
    assert normalize("+447700900123").number_type is None


@pytest.mark.parametrize(
    ("raw", "region", "e164", "type_name"),
    [
        ("0121 234 5678", "GB", "+441212345678", "fixed_line"),  # landline
        ("+1 800 234 5678", None, "+18002345678", "toll_free"),
        ("0901 234 5678", "GB", "+449012345678", "premium_rate"),
        ("056 1234 5678", "GB", "+445612345678", "voip"),
        ("+800 1234 5678", None, "+80012345678", "toll_free"),  # non-geographic: country None
    ],
)
def test_allow_non_mobile_accepts_every_valid_number(
    raw: str, region: str | None, e164: str, type_name: str
) -> None:
    result = Normalizer(allow_non_mobile=True).normalize(raw, region)
    assert (result.e164, result.reason, result.number_type) == (e164, None, type_name)
    assert normalize(raw, region, allow_non_mobile=True) == result
    assert normalize(raw, region).e164 is None  # and the default still rejects it


def test_allow_non_mobile_still_rejects_invalid_numbers_and_extensions() -> None:
    lenient = Normalizer("GB", allow_non_mobile=True)
    assert lenient.normalize("07700 900123").reason == "invalid number for GB"
    assert lenient.normalize("+1 415 555 2671 ext 1").reason == "has an extension"


# -- spreadsheet damage -----------------------------------------------------------------------

# (cell as text, repaired digits, reason)
SPREADSHEET_TEXTS = [
    ("4155552671.0", "4155552671", None),  # a float's text
    ("14155552671.00", "14155552671", None),  # more zeros
    ("1.4155552671E+10", "14155552671", None),  # every digit survived
    ("1,4155552671E+10", "14155552671", None),  # decimal comma
    ("1.4155552671e10", "14155552671", None),  # lower case, no "+"
    ("4.47400123456E+11", "447400123456", None),  # a UK number that lost its "+"
    ("1.41556E+10", None, "scientific notation lost digits: 1.41556E+10"),  # rounded
    ("1E+10", None, "scientific notation lost digits: 1E+10"),
    ("1.23456E+3", None, "unparseable: not a whole number: 1.23456E+3"),
    ("415.555.2671", None, None),  # dotted formatting is not damage
    ("123.0", None, None),  # too short to be a float artefact: left alone
    ("(415) 555-2671", None, None),  # nothing to repair
]


@pytest.mark.parametrize(("text", "digits", "reason"), SPREADSHEET_TEXTS)
def test_repair_spreadsheet_number(text: str, digits: str | None, reason: str | None) -> None:
    assert repair_spreadsheet_number(text) == (digits, reason)


# (cell, region, E.164 or None, reason or None)
SPREADSHEET_CELLS = [
    ("4155552671.0", "US", "+14155552671", None),  # text of a float, never "...2671.0"
    (4155552671.0, "US", "+14155552671", None),  # the float itself
    (4155552671, "US", "+14155552671", None),  # an int
    ("1.4155552671E+10", "US", "+14155552671", None),  # US trunk 1 + 10 digits
    ("1.4155552671E+10", None, "+14155552671", None),  # no region: read as +1...
    ("1.4155552671E+10", "GB", "+14155552671", None),  # not a GB number: read as international
    ("4.47400123456E+11", "US", "+447400123456", None),  # "+" lost; not a US number
    (447400123456.0, "GB", "+447400123456", None),  # the region's own code, as a float
    (7400123456, "GB", "+447400123456", None),  # leading 0 lost: phonenumbers copes
    ("1.41556E+10", "US", None, "scientific notation lost digits: 1.41556E+10"),
    (float("nan"), "US", None, "empty"),  # pandas' missing cell
    (None, "US", None, "empty"),
    (4155.5, "US", None, "unparseable: not a whole number: 4155.5"),
    (-4155552671, "US", None, "unparseable: not a phone number"),
    (True, "US", None, "unparseable: not a phone number"),
    (float("inf"), "US", None, "unparseable: not a phone number"),
    (4155552, None, None, "no country code and no default region"),  # neither reading works
]


@pytest.mark.parametrize(("cell", "region", "e164", "reason"), SPREADSHEET_CELLS)
def test_spreadsheet_cells(
    cell: object, region: str | None, e164: str | None, reason: str | None
) -> None:
    result = Normalizer().normalize(cell, region)
    assert (result.e164, result.reason) == (e164, reason)


def test_numpy_scalars_are_numbers() -> None:
    np = pytest.importorskip("numpy")
    assert normalize(np.int64(4155552671), "US").e164 == "+14155552671"
    assert normalize(np.float64(4155552671.0), "US").e164 == "+14155552671"
    assert normalize(np.float32(math.nan), "US").reason == "empty"


def test_pandas_missing_values_are_empty() -> None:
    pd = pytest.importorskip("pandas")
    assert normalize(pd.NA, "US").reason == "empty"
    assert normalize(pd.NaT, "US").reason == "empty"


# -- regions ----------------------------------------------------------------------------------


def test_row_region_overrides_default() -> None:
    normalizer = Normalizer("US")
    assert normalizer.normalize("07400 123456").e164 is None  # as a US number: invalid
    assert normalizer.normalize("07400 123456", "GB").e164 == "+447400123456"
    assert normalizer.normalize("07400 123456", " gb ").e164 == "+447400123456"
    assert normalizer.normalize("(206) 555-0142", "").e164 == "+12065550142"  # empty: default
    assert normalizer.normalize("(206) 555-0142", None).e164 == "+12065550142"


def test_unknown_row_region_rejects_only_numbers_that_need_it() -> None:
    normalizer = Normalizer("US")
    assert normalizer.normalize("(206) 555-0142", "XX").reason == "unknown country code 'XX'"
    assert normalizer.normalize("0206 555 0142", "Narnia").reason == (
        "unknown country code 'Narnia'"
    )
    # A country name is a country: Germany is DE (the number is a German landline).
    assert normalizer.normalize("0206 555 0142", "Germany").country == "DE"
    # A number with its country code doesn't need the region: phonenumbers ignores it too.
    assert normalizer.normalize("+44 7400 123456", "XX").e164 == "+447400123456"
    assert normalizer.normalize("0044 7400 123456", "XX").e164 == "+447400123456"


def test_uk_is_read_as_gb() -> None:
    assert normalize("07400 123456", "UK").e164 == "+447400123456"
    assert Normalizer("uk").default_region == "GB"


def test_unknown_default_region_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown country code 'XX'"):
        Normalizer("XX")
    # The module-level function takes the region per call, like a country column.
    assert normalize("4155552671", "XX").reason == "unknown country code 'XX'"


def test_normalize_many_with_and_without_regions() -> None:
    normalizer = Normalizer("US")
    raws: list[object] = ["(206) 555-0142", "07400 123456", None, "+447400123456"]
    assert [r.e164 for r in normalizer.normalize_many(raws)] == [
        "+12065550142",
        None,
        None,
        "+447400123456",
    ]
    regions = [None, "GB", "GB", "DE"]
    assert [r.e164 for r in normalizer.normalize_many(raws, regions)] == [
        "+12065550142",
        "+447400123456",
        None,
        "+447400123456",
    ]
    with pytest.raises(ValueError, match="4 numbers but 1 regions"):
        normalizer.normalize_many(raws, ["GB"])


def test_region_cells_are_remembered_per_value() -> None:
    normalizer = Normalizer("US")
    assert normalizer.normalize("07400 123456", "gb").e164 == "+447400123456"
    assert normalizer.normalize("07400 123457", "gb").e164 == "+447400123457"  # cached lookup
    assert normalizer.normalize("(206) 555-0142", "zz").reason == "unknown country code 'zz'"
    assert normalizer.normalize("(206) 555-0143", "zz").reason == "unknown country code 'zz'"
    missing: Any = float("nan")  # pandas' empty country cell: the default region applies
    assert normalizer.normalize("(206) 555-0142", missing).e164 == "+12065550142"


def test_normalizer_pickles_and_works_in_a_worker_process() -> None:
    normalizer = Normalizer("GB", allow_non_mobile=True)
    normalizer.normalize("07400 123456")
    copy = pickle.loads(pickle.dumps(normalizer))
    assert (copy.default_region, copy.allow_non_mobile) == ("GB", True)
    assert copy.normalize("0121 234 5678").e164 == "+441212345678"
    with ProcessPoolExecutor(max_workers=1) as pool:
        results = list(pool.map(normalizer.normalize, ["07400 123456", "0800 123 4567"]))
    assert [r.e164 for r in results] == ["+447400123456", "+448001234567"]


def test_result_is_frozen() -> None:
    result = PhoneResult("+14155552671", "US", None, "fixed_line_or_mobile")
    with pytest.raises(AttributeError):
        result.e164 = None  # type: ignore[misc]


# -- differential: the fast path against phonenumbers alone -----------------------------------

REGIONS = [
    "US", "CA", "GB", "DE", "FR", "IN", "AU", "BR", "MX", "JP", "NG", "ZA", "ES", "IT", "NL",
    "SE", "SG", "PH", "AR", "IE", "RU", "KZ", "GG", "JM", "PR", "CH", "AT", "BE", "CN", "KR",
]  # fmt: skip
TYPES = [
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
]
TYPE_NAMES = {
    getattr(PhoneNumberType, name): name.lower()
    for name in dir(PhoneNumberType)
    if name.isupper() and name != "UNKNOWN"
}
MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def reference(raw: str, region: str | None) -> tuple[str | None, str | None, str | None]:
    """phonenumbers alone, with the module's documented policy: (E.164 if accepted, country, type).

    Policy: a leading 00 is "+" unless the region's own IDD prefix covers it; only mobile-capable
    types of a geographic region are accepted; extensions are rejected; a rejected number's
    country is the row's region when it shares the calling code, else the code's main region.
    """
    text = raw.strip()
    if text.startswith("00"):
        meta = PhoneMetadata.metadata_for_region(region) if region else None
        idd = meta.international_prefix if meta is not None else None
        if not (idd and re.match(idd, re.sub(r"[^0-9]", "", text))):
            text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, None, None
    cc = number.country_code or 0
    if not phonenumbers.is_valid_number(number):
        if region and phonenumbers.country_code_for_region(region) == cc:
            return None, region, None
        main = phonenumbers.region_code_for_country_code(cc)
        return None, (None if main in ("001", "ZZ") else main), None
    number_type = phonenumbers.number_type(number)
    where = phonenumbers.region_code_for_number(number)
    country = None if where == "001" else where
    accepted = number_type in MOBILE and where != "001" and not number.extension
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164) if accepted else None
    return e164, country, TYPE_NAMES[number_type]


def _slow() -> Normalizer:
    normalizer = Normalizer()
    normalizer._fast = False  # phonenumbers alone
    return normalizer


def _scatter(rng: random.Random, digits: str) -> str:
    """The digits with random formatting between them."""
    out = []
    for digit in digits:
        if rng.random() < 0.2:
            out.append(rng.choice([" ", "-", ".", " - ", "(", ")", "/", "\u00a0"]))
        out.append(digit)
    return "".join(out)


def _mutate(rng: random.Random, nsn: str) -> str:
    """Another number near `nsn`: random trailing digits, sometimes a digit more or less."""
    keep = rng.randint(max(1, len(nsn) - 5), len(nsn))
    tail = "".join(rng.choice("0123456789") for _ in range(len(nsn) - keep))
    changed = nsn[:keep] + tail
    roll = rng.random()
    if roll < 0.08:
        return changed[:-1]
    if roll < 0.16:
        return changed + rng.choice("0123456789")
    return changed


def _shaped(
    rng: random.Random, cc: int, nsn: str, row_region: str | None
) -> tuple[str, str | None]:
    """One of nine ways people write a number: +CC, scattered separators, 00, bare CC, national
    format, trunk prefix, other IDD prefixes, random digits."""
    shape = rng.randrange(9)
    if shape == 0:
        raw = f"+{cc}{nsn}"
    elif shape == 1:
        raw = "+" + _scatter(rng, f"{cc}{nsn}")
        row_region = row_region if rng.random() < 0.5 else None
    elif shape == 2:
        raw = "00" + _scatter(rng, f"{cc}{nsn}")
    elif shape == 3:
        raw = f"{cc}{nsn}"  # country code without "+"
    elif shape in (4, 5):
        try:
            parsed = phonenumbers.parse(f"+{cc}{nsn}")
            raw = phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
        except phonenumbers.NumberParseException:
            raw = nsn
    elif shape == 6:
        raw = _scatter(rng, "0" + nsn if rng.random() < 0.5 else nsn)
    elif shape == 7:
        idd = rng.choice(["011", "0011", "010", "00", "000", "+00", "++"])
        raw = f"{idd} {cc} {nsn}"
    else:
        raw = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19)))
    return raw, row_region


def generate_cases(seed: int, regions: list[str], per_region: int) -> list[tuple[str, str | None]]:
    """Numbers near each region's example numbers (mobile half the time), in many shapes."""
    rng = random.Random(seed)
    cases: list[tuple[str, str | None]] = []
    for region in regions:
        cc = phonenumbers.country_code_for_region(region)
        examples = [
            phonenumbers.national_significant_number(example)
            for kind in TYPES
            if (example := phonenumbers.example_number_for_type(region, kind)) is not None
        ]
        if not examples:
            continue
        for _ in range(per_region):
            # TYPES starts with MOBILE, so examples[0] is the mobile one when the region has one.
            nsn = _mutate(rng, examples[0] if rng.random() < 0.5 else rng.choice(examples))
            row_region: str | None = region if rng.random() < 0.85 else rng.choice(regions)
            raw, row_region = _shaped(rng, cc, nsn, row_region)
            cases.append((raw, row_region))
    for _ in range(per_region):  # garbage and near-garbage
        alphabet = "0123456789" * 3 + "+-() ./xX#*ext;:abcE\t"
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 22)))
        cases.append((raw, rng.choice([*regions, None])))
    return cases


def non_geographic_cases() -> list[tuple[str, str | None]]:
    cases: list[tuple[str, str | None]] = []
    for cc in sorted(phonenumbers.supported_calling_codes()):
        example = phonenumbers.example_number_for_non_geo_entity(cc)
        if example is not None:
            nsn = phonenumbers.national_significant_number(example)
            cases += [(f"+{cc}{nsn}", None), (f"+{cc} {nsn[:-1]}", "US"), (f"00{cc}{nsn}", "DE")]
    return cases


@pytest.mark.parametrize(
    ("regions", "per_region"),
    [
        (REGIONS, 350),  # the markets that matter, in depth
        (sorted(phonenumbers.SUPPORTED_REGIONS), 30),  # every region's metadata, a little
    ],
    ids=["main-regions", "all-regions"],
)
def test_fast_path_agrees_with_phonenumbers(regions: list[str], per_region: int) -> None:
    fast = Normalizer()
    slow = _slow()
    cases = generate_cases(20240601, regions, per_region) + non_geographic_cases()
    assert len(cases) > 5_000
    mismatches: list[tuple[str, str | None, PhoneResult, object]] = []
    accepted = 0
    for raw, region in cases:
        if repair_spreadsheet_number(raw) != (None, None):
            continue  # spreadsheet damage is our policy, not phonenumbers': tested above
        if _has_letters(raw.strip()) or _several_numbers(raw.strip()):
            continue  # letters and several numbers in a cell: our policy too (tests/importing)
        ours = fast.normalize(raw, region)
        expected = reference(raw, region)
        if (ours.e164, ours.country, ours.number_type) != expected:
            mismatches.append((raw, region, ours, expected))
        elif ours != slow.normalize(raw, region):  # reasons too, against phonenumbers' own
            mismatches.append((raw, region, ours, slow.normalize(raw, region)))
        accepted += ours.e164 is not None
    assert mismatches[:10] == []
    # The generator exercises both outcomes in earnest.
    assert 0.2 < accepted / len(cases) < 0.8
