"""E.164 normalization of the phone numbers in a recipients CSV.

`Normalizer.normalize` turns one cell into a `PhoneResult`: the E.164 number when it can receive
an SMS, otherwise a short human reason. Its answers are phonenumbers' answers (parse +
is_valid_number + number_type + E.164 format); two paths compute them:

* a fast path for the shapes real CSVs are made of -- ASCII digits with ordinary punctuation,
  optionally behind "+" or an international prefix. It replays phonenumbers' own parse and
  validation algorithm (country code extraction, national prefix stripping, possible lengths,
  the ordered number-type checks, the region choice for shared calling codes such as +1) on
  metadata patterns compiled once per region. That skips the generic text handling (extension
  and vanity-number regexes, per-call pattern cache lookups) which is most of phonenumbers' cost.
* phonenumbers itself for everything else: letters, extensions, tel: URIs, full-width digits,
  and any case where the fast path would raise. tests/test_phones.py checks that the two paths
  agree on many thousands of generated numbers.

Policy on top of phonenumbers (the only places where the answer is ours, not the library's):

* Accepted types are MOBILE and FIXED_LINE_OR_MOBILE (every NANP number is the latter). Fixed
  line, toll-free, premium rate, shared cost, VoIP, personal (follow-me), pager, UAN and voicemail
  numbers are rejected: none of them reliably receives an SMS. Non-geographic numbers (+800,
  +881, +882, ...) are rejected too: they have no destination country to price or send to.
  `allow_non_mobile=True` accepts every valid number.
* A number with an extension is rejected: an SMS cannot be delivered to an extension.
* A leading "00" is an international prefix in every region, also where the local prefix differs
  (US "011", AU "0011", JP "010") or no region is known: marketers write "0049 ..." whatever the
  sender's country. Where "00" is the region's own prefix phonenumbers handles it already.
* Spreadsheet damage is repaired: a float cell (4155552671.0), the text of one ("4155552671.0"),
  and scientific notation whose mantissa still holds every digit ("1.4155552671E+10",
  "1,4155552671E+10"). Scientific notation that lost digits ("1.41556E+10") is rejected. A number
  that went through a spreadsheet as a number has lost its "+" (and any leading zero), so a
  repaired number is read with the row's region first and, when that gives no valid number,
  as an international number ("447400123456" -> +447400123456).
* Texts pandas writes for a missing cell ("nan", "<NA>", "None", "null") count as empty.
* The region is needed only for numbers written without a country code: a per-row region that is
  not an ISO code rejects those rows ("unknown country code 'XX'"), not "+44 ..." rows. "UK" is
  read as "GB", its ISO 3166 exceptional reservation.
* `country` of a rejected number that parsed is a best guess: the row's region when it shares the
  number's calling code, else the calling code's main region (GB for +44, US for +1).
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Final

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    SUPPORTED_REGIONS,
    NumberParseException,
    PhoneMetadata,
    PhoneNumberDesc,
    PhoneNumberType,
    ValidationResult,
)

__all__ = [
    "Normalizer",
    "PhoneResult",
    "country_from_name",
    "normalize",
    "repair_spreadsheet_number",
]


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """The outcome of normalizing one cell."""

    e164: str | None  # "+14155552671" when accepted, else None
    country: str | None  # ISO alpha-2 region of the number when known (also when rejected)
    reason: str | None  # None when accepted, else a short human reason
    number_type: str | None  # "mobile", "fixed_line_or_mobile", ...; None when not a valid number
    note: str | None = None  # how an accepted number was found, when not simply (one of several)

    @property
    def ok(self) -> bool:
        return self.e164 is not None


_MOBILE_TYPES: Final = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_TYPE_NAMES: Final[dict[int, str]] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
_TYPE_LABELS: Final[dict[int, str]] = {
    PhoneNumberType.FIXED_LINE: "fixed line",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium rate",
    PhoneNumberType.SHARED_COST: "shared cost",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.PERSONAL_NUMBER: "personal number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "UAN",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
_LENGTH_PROBLEMS: Final[dict[int, str]] = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong length",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    # phonenumbers calls a number without its area code "possible" (dialable locally), but it
    # can't be texted: say what is missing.
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "local number only",
}
_PARSE_PROBLEMS: Final[dict[int, str]] = {
    NumberParseException.NOT_A_NUMBER: "unparseable: not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "unparseable: too short",
    NumberParseException.TOO_SHORT_NSN: "unparseable: too short",
    NumberParseException.TOO_LONG: "unparseable: too long",
    NumberParseException.INVALID_COUNTRY_CODE: "unparseable: unknown country calling code",
}

_EMPTY: Final = PhoneResult(None, None, "empty", None)
_NO_REGION: Final = PhoneResult(None, None, "no country code and no default region", None)
_EMPTY_TEXTS: Final = frozenset({"nan", "<na>", "none", "null", "nat"})
_REGION_ALIASES: Final = {"UK": "GB"}
_NON_GEO: Final = "001"

# Characters phonenumbers treats as pure formatting between digits (its VALID_PUNCTUATION minus
# "x"); deleting them gives the same digits phonenumbers would see.
_FORMATTING: Final = (
    " -.()/[]~\u00a0\u00ad\u200b\u2060\u3000\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
    "\u30fc\uff0d\uff0e\uff0f\uff08\uff09\uff3b\uff3d\u2053\u223c\uff5e"
)
_DELETE_FORMATTING: Final = str.maketrans("", "", _FORMATTING)
_MAX_INPUT: Final = 250  # phonenumbers' _MAX_INPUT_STRING_LENGTH
_MIN_NSN: Final = 2  # phonenumbers' _MIN_LENGTH_FOR_NSN
_MAX_NSN: Final = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN

# "4155552671.0": a float's text. Six digits at least so that a short dotted group stays a group.
_FLOAT_TEXT: Final = re.compile(r"([0-9]{6,})\.0+")
# "1.4155552671E+10", "1,4155552671E+10" (decimal comma), "1.41556E+10", "1E+10".
_SCIENTIFIC: Final = re.compile(r"([1-9][0-9]*)(?:[.,]([0-9]*))?[eE]\+?([0-9]{1,3})")


def repair_spreadsheet_number(raw: str) -> tuple[str | None, str | None]:
    """Undo what a spreadsheet does to a phone number stored as a number.

    Returns (digits, None) when `raw` is such a number and every digit survived, (None, reason)
    when it is one that can't be repaired (digits lost to scientific notation, a fraction), and
    (None, None) when it is not one (leave it alone). The repaired digits have no "+" and no
    leading zero: a number cell has neither.
    """
    text = raw.strip()
    if not text or not ("." in text or "," in text or "e" in text or "E" in text):
        return None, None
    m = _FLOAT_TEXT.fullmatch(text)
    if m is not None:
        return m.group(1), None
    m = _SCIENTIFIC.fullmatch(text)
    if m is None:
        return None, None
    whole, fraction, exponent = m.group(1), m.group(2) or "", int(m.group(3))
    if len(fraction) > exponent:
        return None, f"unparseable: not a whole number: {text}"
    if len(fraction) < exponent:
        # The spreadsheet rounded the mantissa; the missing digits are gone for good.
        return None, f"scientific notation lost digits: {text}"
    return whole + fraction, None


# --------------------------------------------------------------------------------------------
# Metadata compiled once per region (per calling code for non-geographic entities)

_Match = Callable[[str], "re.Match[str] | None"]  # a compiled pattern's fullmatch
_Desc = tuple[frozenset[int], _Match]  # (possible lengths, fullmatch) of one number type

# phonenumbers' _number_type_helper tests these before fixed line / mobile, in this order.
_SPECIAL_TYPES: Final = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)
# A description without possible lengths accepts any length; the fast path's national numbers
# are at most _MAX_NSN digits, so this set stands in for "no length filter".
_ANY_LENGTH: Final = frozenset(range(_MAX_NSN + 1))
_NEVER: Final[_Match] = re.compile(r"(?!)").fullmatch
_ABSENT: Final[_Desc] = (frozenset(), _NEVER)


def _desc(desc: PhoneNumberDesc | None) -> _Desc:
    # A description without a pattern never matches (phonenumbers' _match_national_number).
    if desc is None or not desc.national_number_pattern:
        return _ABSENT
    lengths = frozenset(desc.possible_length) if desc.possible_length else _ANY_LENGTH
    return lengths, re.compile(desc.national_number_pattern).fullmatch


@dataclass(frozen=True, slots=True)
class _Meta:
    cc: int
    cc_text: str
    idd: re.Pattern[str] | None  # the region's international (IDD) prefix
    national_prefix: re.Pattern[str] | None  # national_prefix_for_parsing
    transform: str | None  # national_prefix_transform_rule
    general_lengths: frozenset[int]
    general: _Match
    lengths: tuple[int, ...]  # general possible lengths, sorted
    local_lengths: frozenset[int]
    special: tuple[tuple[int, frozenset[int], _Match], ...]
    fixed_lengths: frozenset[int]
    fixed_line: _Match
    mobile_lengths: frozenset[int]
    mobile: _Match
    same_mobile_and_fixed_line: bool
    leading_digits: re.Pattern[str] | None


def _compile_meta(meta: PhoneMetadata) -> _Meta | None:
    """Compile one region's metadata, or None when it has something the fast path doesn't copy."""
    general = meta.general_desc
    if meta.country_code is None or general is None or not general.possible_length:
        return None
    national_prefix = (
        re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None
    )
    transform = meta.national_prefix_transform_rule or None
    if transform is not None and (national_prefix is None or national_prefix.groups == 0):
        return None  # phonenumbers would index a missing group here; let it do so itself
    special = []
    for attribute, number_type in _SPECIAL_TYPES:
        lengths, match = _desc(getattr(meta, attribute))
        if lengths:
            special.append((number_type, lengths, match))
    general_lengths, general_match = _desc(general)
    fixed_lengths, fixed_match = _desc(meta.fixed_line)
    mobile_lengths, mobile_match = _desc(meta.mobile)
    return _Meta(
        cc=meta.country_code,
        cc_text=str(meta.country_code),
        idd=re.compile(meta.international_prefix) if meta.international_prefix else None,
        national_prefix=national_prefix,
        transform=transform,
        general_lengths=general_lengths,
        general=general_match,
        lengths=tuple(sorted(general.possible_length)),
        local_lengths=frozenset(general.possible_length_local_only),
        special=tuple(special),
        fixed_lengths=fixed_lengths,
        fixed_line=fixed_match,
        mobile_lengths=mobile_lengths,
        mobile=mobile_match,
        same_mobile_and_fixed_line=bool(meta.same_mobile_and_fixed_line_pattern),
        leading_digits=re.compile(meta.leading_digits) if meta.leading_digits else None,
    )


class _Unsupported:
    """Marker: phonenumbers has metadata here but the fast path must not use it."""


_UNSUPPORTED: Final = _Unsupported()
_CompiledMeta = _Meta | _Unsupported | None  # None: phonenumbers has no metadata either


@cache
def _meta(cc: int, region: str) -> _CompiledMeta:
    """Compiled PhoneMetadata.metadata_for_region_or_calling_code(cc, region)."""
    raw = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
    if raw is None:
        return None
    return _compile_meta(raw) or _UNSUPPORTED


@cache
def _main_meta(cc: int) -> _CompiledMeta:
    """Metadata of the calling code's main region (what parse and is_possible_number use)."""
    return _meta(cc, COUNTRY_CODE_TO_REGION_CODE[cc][0])


@cache
def _cc_regions(cc: int) -> tuple[tuple[str, _CompiledMeta], ...]:
    """The calling code's regions in phonenumbers' order, with their metadata."""
    return tuple((region, _meta(cc, region)) for region in COUNTRY_CODE_TO_REGION_CODE.get(cc, ()))


@cache
def _region_meta(region: str) -> _Meta | None:
    """Compiled metadata of a supported region, None when the fast path can't use it."""
    found = _meta(phonenumbers.country_code_for_region(region), region)
    return found if isinstance(found, _Meta) else None


# Calling codes as text, for phonenumbers' 1-to-3 digit prefix search.
_CC_TEXTS: Final = frozenset(str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE)


def _number_type(nsn: str, meta: _Meta) -> int:
    """phonenumbers' _number_type_helper: each check is a length filter, then the pattern."""
    length = len(nsn)
    if length not in meta.general_lengths or meta.general(nsn) is None:
        return PhoneNumberType.UNKNOWN
    for number_type, lengths, match in meta.special:
        if length in lengths and match(nsn) is not None:
            return number_type
    same = meta.same_mobile_and_fixed_line
    if length in meta.fixed_lengths and meta.fixed_line(nsn) is not None:
        if same or (length in meta.mobile_lengths and meta.mobile(nsn) is not None):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    # phonenumbers only looks at mobile on its own when its pattern differs from fixed line.
    if not same and length in meta.mobile_lengths and meta.mobile(nsn) is not None:
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def _test_length(number: str, meta: _Meta) -> int:
    """phonenumbers' _test_number_length for the UNKNOWN type (the general description)."""
    length = len(number)
    if length in meta.local_lengths:
        return ValidationResult.IS_POSSIBLE_LOCAL_ONLY
    lengths = meta.lengths
    if lengths[0] == length:
        return ValidationResult.IS_POSSIBLE
    if lengths[0] > length:
        return ValidationResult.TOO_SHORT
    if lengths[-1] < length:
        return ValidationResult.TOO_LONG
    return ValidationResult.IS_POSSIBLE if length in lengths else ValidationResult.INVALID_LENGTH


_LENGTH_KEEPS_PREFIX: Final = frozenset(
    {
        ValidationResult.TOO_SHORT,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        ValidationResult.INVALID_LENGTH,
    }
)


def _strip_national_prefix(number: str, meta: _Meta) -> str:
    """phonenumbers' _maybe_strip_national_prefix_carrier_code, without the carrier code."""
    pattern = meta.national_prefix
    if not number or pattern is None:
        return number
    found = pattern.match(number)
    if found is None:
        return number
    viable_before = meta.general(number) is not None
    if meta.transform is None or found.groups()[-1] is None:
        stripped = number[found.end() :]
    else:
        stripped = pattern.sub(meta.transform, number, count=1)
    if viable_before and meta.general(stripped) is None:
        return number
    return stripped


# C901: one pass over the digits, phonenumbers.parse's own branches in its order; the import's hot
# path (bench: import), kept whole on purpose.
def _fast_parse(  # noqa: C901
    digits: str, international: bool, region_meta: _Meta | None
) -> tuple[int, str] | None:
    """phonenumbers.parse for ASCII digits, as (calling code, national significant number).

    `international`: the digits followed a "+". None whenever phonenumbers would raise or do
    something this copy doesn't, so that the caller asks phonenumbers itself.
    """
    if not international:
        if region_meta is None:
            return None
        idd = region_meta.idd
        if idd is not None:
            found = idd.match(digits)
            # Country codes never start with 0, so an IDD followed by 0 is no IDD.
            if found is not None and not digits.startswith("0", found.end()):
                digits = digits[found.end() :]
                international = True
    cc = 0
    national = digits
    meta = region_meta
    if international:
        if len(digits) <= _MIN_NSN:
            return None
        for size in (1, 2, 3):
            if digits[:size] in _CC_TEXTS:
                cc = int(digits[:size])
                national = digits[size:]
                break
        else:
            return None
    elif region_meta is not None and digits.startswith(region_meta.cc_text):
        # The region's own calling code written without "+": phonenumbers strips it when the
        # rest looks like a national number and the whole doesn't, or the whole is too long.
        rest = _strip_national_prefix(digits[len(region_meta.cc_text) :], region_meta)
        general = region_meta.general
        if (general(digits) is None and general(rest) is not None) or (
            _test_length(digits, region_meta) == ValidationResult.TOO_LONG
        ):
            cc = region_meta.cc
            national = rest
    if cc:
        found_meta = _main_meta(cc)
        if not isinstance(found_meta, _Meta):
            return None
        meta = found_meta
    elif region_meta is not None:
        cc = region_meta.cc
    if meta is None or len(national) < _MIN_NSN:
        return None
    stripped = _strip_national_prefix(national, meta)
    if stripped is not national and _test_length(stripped, meta) not in _LENGTH_KEEPS_PREFIX:
        national = stripped
    if not _MIN_NSN <= len(national) <= _MAX_NSN:
        return None
    return cc, national


def _classify(cc: int, nsn: str) -> tuple[int, str | None] | None:
    """(number type, region) like number_type + region_code_for_number; None: ask phonenumbers."""
    regions = _cc_regions(cc)
    if not regions:
        return PhoneNumberType.UNKNOWN, None
    if len(regions) == 1:
        region, meta = regions[0]
        if meta is None:
            return PhoneNumberType.UNKNOWN, region
        if not isinstance(meta, _Meta):
            return None
        return _number_type(nsn, meta), region
    # Shared calling code (+1, +44, +7, ...): the first region whose leading digits match, or
    # (without leading digits) whose patterns know the number -- phonenumbers' own order.
    for region, meta in regions:
        if meta is None:
            continue
        if not isinstance(meta, _Meta):
            return None
        if meta.leading_digits is not None:
            if meta.leading_digits.match(nsn):
                return _number_type(nsn, meta), region
        else:
            number_type = _number_type(nsn, meta)
            if number_type != PhoneNumberType.UNKNOWN:
                return number_type, region
    return PhoneNumberType.UNKNOWN, None


def _possible_length(cc: int, nsn: str) -> int | None:
    """is_possible_number_with_reason (the calling code's main region); None: ask phonenumbers."""
    if cc not in COUNTRY_CODE_TO_REGION_CODE:
        return ValidationResult.INVALID_COUNTRY_CODE
    meta = _main_meta(cc)
    return _test_length(nsn, meta) if isinstance(meta, _Meta) else None


# --------------------------------------------------------------------------------------------


class Normalizer:
    """Reusable normalizer: settings plus a cache of resolved region cells.

    The compiled metadata is shared by the whole process and built lazily per region. Cheap to
    build and picklable (only its settings travel), so a worker process can have one. There is
    no result cache: most cells are distinct numbers, and measured on such data a cache costs
    about as much as it saves.
    """

    __slots__ = ("_fast", "_regions", "allow_non_mobile", "default_region")

    def __init__(
        self, default_region: str | None = None, *, allow_non_mobile: bool = False
    ) -> None:
        region = _region_code(default_region) if default_region else None
        if default_region and region is None:
            raise ValueError(f"unknown country code {default_region.strip()!r}")
        self.default_region = region
        self.allow_non_mobile = allow_non_mobile
        self._fast = True  # tests switch it off to compare with phonenumbers alone
        self._regions: dict[str, tuple[str | None, str | None]] = {}

    def __reduce__(self) -> tuple[object, tuple[str | None, bool]]:
        return _rebuild_normalizer, (self.default_region, self.allow_non_mobile)

    def __repr__(self) -> str:
        return (
            f"Normalizer(default_region={self.default_region!r}, "
            f"allow_non_mobile={self.allow_non_mobile!r})"
        )

    def normalize(self, raw: object, region: str | None = None) -> PhoneResult:
        """Normalize one cell; `region` (e.g. a per-row country column) overrides the default."""
        code: str | None
        bad: str | None
        if region is None:
            code, bad = self.default_region, None
        else:
            try:
                code, bad = self._regions[region]
            except (KeyError, TypeError):
                code, bad = self._resolve_region(region)
        if type(raw) is str:
            return self._normalize_text(raw, code, bad)
        return self._normalize_object(raw, code, bad)

    def normalize_many(
        self, raws: Sequence[object], regions: Sequence[str | None] | None = None
    ) -> list[PhoneResult]:
        """Normalize a column; `regions`, when given, is the per-row region column."""
        one = self.normalize
        if regions is None:
            return [one(raw) for raw in raws]
        if len(regions) != len(raws):
            raise ValueError(f"{len(raws)} numbers but {len(regions)} regions")
        return [one(raw, region) for raw, region in zip(raws, regions, strict=True)]

    # -- regions ------------------------------------------------------------------------------

    def _resolve_region(self, region: object) -> tuple[str | None, str | None]:
        """(region code to use, or None; the unknown code given, or None)."""
        if not isinstance(region, str):
            return self.default_region, None  # NaN from an empty cell: the default applies
        if not region.strip():
            resolved: tuple[str | None, str | None] = (self.default_region, None)
        elif (code := _region_code(region) or country_from_name(region)) is not None:
            resolved = (code, None)
        else:
            resolved = (None, region.strip())
        if len(self._regions) < 10_000:  # bounded: a country column has few distinct values
            self._regions[region] = resolved
        return resolved

    # -- inputs that are not text ---------------------------------------------------------------

    def _normalize_object(self, raw: object, code: str | None, bad: str | None) -> PhoneResult:
        if raw is None or type(raw).__name__ in ("NAType", "NaTType"):
            return _EMPTY
        if isinstance(raw, bool):
            return PhoneResult(None, None, "unparseable: not a phone number", None)
        if isinstance(raw, numbers.Integral):
            value = int(raw)
            if value <= 0:
                return PhoneResult(None, None, "unparseable: not a phone number", None)
            return self._normalize_repaired(str(value), code, bad)
        if isinstance(raw, numbers.Real):
            number = float(raw)
            if math.isnan(number):
                return _EMPTY
            if math.isinf(number) or number <= 0:
                return PhoneResult(None, None, "unparseable: not a phone number", None)
            if not number.is_integer():
                return PhoneResult(None, None, f"unparseable: not a whole number: {raw}", None)
            # A float cell is the integer the spreadsheet saw: never "4155552671.0".
            return self._normalize_repaired(str(int(number)), code, bad)
        return self._normalize_text(str(raw), code, bad)

    # -- text ---------------------------------------------------------------------------------

    def _normalize_text(self, raw: str, code: str | None, bad: str | None) -> PhoneResult:
        text = raw.strip()
        if not text:
            return _EMPTY
        if text[-1] in "0123456789" and ("." in text or "," in text or "E" in text or "e" in text):
            repaired, why = repair_spreadsheet_number(text)
            if why is not None:
                return PhoneResult(None, None, why, None)
            if repaired is not None:
                return self._normalize_repaired(repaired, code, bad)
        elif text.lower() in _EMPTY_TEXTS:
            return _EMPTY
        if text.startswith("00"):
            text = _international_00(text, code)
        return self._normalize_clean(text, code, bad)

    def _normalize_repaired(self, digits: str, code: str | None, bad: str | None) -> PhoneResult:
        # A spreadsheet number lost its "+": the region's reading first, then the international
        # one. When neither is a valid number, the region's reading explains why.
        national = self._normalize_clean(digits, code, bad)
        if national.number_type is not None:
            return national
        international = self._normalize_clean("+" + digits, code, bad)
        return international if international.number_type is not None else national

    def _normalize_clean(self, text: str, code: str | None, bad: str | None) -> PhoneResult:
        if self._fast and len(text) <= _MAX_INPUT:
            compact = text.translate(_DELETE_FORMATTING)
            international = compact.startswith("+")
            digits = compact[1:] if international else compact
            if digits.isdigit() and digits.isascii() and len(digits) > _MIN_NSN:
                region_meta = _region_meta(code) if code is not None else None
                parsed = _fast_parse(digits, international, region_meta)
                if parsed is not None:
                    cc, nsn = parsed
                    classified = _classify(cc, nsn)
                    if classified is not None:
                        number_type, number_region = classified
                        if number_type != PhoneNumberType.UNKNOWN:
                            return self._result(cc, nsn, number_type, number_region, code, False)
                        possible = _possible_length(cc, nsn)
                        if possible is not None:
                            return _invalid(cc, possible, code)
        return self._normalize_slow(text, code, bad)

    def _normalize_slow(self, text: str, code: str | None, bad: str | None) -> PhoneResult:
        """phonenumbers alone: the reference the fast path copies, and the path for odd shapes."""
        several = _several_numbers(text)
        if several is not None:
            return self._first_of_several(several, code, bad)
        if _has_letters(text):
            # phonenumbers reads 1-800-FLOWERS as digits; in a CSV of numbers letters are a
            # typing error or a note ("(mobile)"), never something to dial.
            return PhoneResult(None, None, f"letters in the number: {text}", None)
        try:
            number = phonenumbers.parse(text, code)
        except NumberParseException as error:
            # Written without a country code and no usable region to read it with.
            if (
                error.error_type == NumberParseException.INVALID_COUNTRY_CODE
                and code is None
                and "+" not in text
                and "\uff0b" not in text
            ):
                if bad is not None:
                    return PhoneResult(None, None, f"unknown country code {bad!r}", None)
                return _NO_REGION
            why = _PARSE_PROBLEMS.get(error.error_type, "unparseable")
            return PhoneResult(None, None, why, None)
        cc = number.country_code or 0
        nsn = phonenumbers.national_significant_number(number)
        if not phonenumbers.is_valid_number(number):
            return _invalid(cc, phonenumbers.is_possible_number_with_reason(number), code)
        return self._result(
            cc,
            nsn,
            phonenumbers.number_type(number),
            phonenumbers.region_code_for_number(number),
            code,
            bool(number.extension),
        )

    def _first_of_several(
        self, pieces: list[str], code: str | None, bad: str | None
    ) -> PhoneResult:
        """A cell with several numbers (Google Contacts joins them with ` ::: `): the first one
        that can receive an SMS, with a note saying so; else the first one's reason."""
        results = [self._normalize_text(piece, code, bad) for piece in pieces]
        for position, result in enumerate(results, start=1):
            if result.e164 is not None:
                note = f"number {position} of {len(pieces)} in the cell"
                return PhoneResult(result.e164, result.country, None, result.number_type, note)
        first = results[0]
        return PhoneResult(
            None,
            first.country,
            f"several numbers in one cell ({len(pieces)}), none can receive SMS: {first.reason}",
            None,
        )

    def _result(
        self,
        cc: int,
        nsn: str,
        number_type: int,
        number_region: str | None,
        code: str | None,
        has_extension: bool,
    ) -> PhoneResult:
        """The verdict on a valid number."""
        type_name = _TYPE_NAMES.get(number_type, "unknown")
        country = None if number_region == _NON_GEO else number_region
        if not self.allow_non_mobile:
            if number_region == _NON_GEO:
                return PhoneResult(None, None, f"non-geographic number (+{cc})", type_name)
            if number_type not in _MOBILE_TYPES:
                label = _TYPE_LABELS.get(number_type, type_name)
                return PhoneResult(
                    None, country, f"not a mobile-capable number ({label})", type_name
                )
        if has_extension:
            return PhoneResult(None, country, "has an extension", type_name)
        return PhoneResult(f"+{cc}{nsn}", country, None, type_name)


# Between two numbers in one cell: Google Contacts' " ::: ", a semicolon, a pipe, a line break,
# " / ", or a comma. A piece counts as a number only with 6 digits or more, so "030/1234567"
# and a decimal comma stay one number.
_SEPARATORS: Final = re.compile(r"\s*(?::::|;|\||\r?\n|\s/\s|,)\s*")
_DIGIT: Final = re.compile(r"[0-9]")


def _several_numbers(text: str) -> list[str] | None:
    if text[:4].lower() == "tel:":
        return None  # an RFC 3966 URI: its ";" starts parameters
    pieces = [p for p in _SEPARATORS.split(text) if p]
    if len(pieces) < 2 or any(len(_DIGIT.findall(p)) < 6 for p in pieces):
        return None
    return pieces


# An extension at the end ("x12", "ext. 12", "#12"): rejected as such, with its own reason.
_EXTENSION: Final = re.compile(r"\s*(?:;ext=|ext(?:ension)?\.?|x|#)\s*[0-9]+\s*$", re.IGNORECASE)


def _has_letters(text: str) -> bool:
    """Letters in a cell that otherwise holds a number (3 digits or more): not words such as
    "call me", which phonenumbers calls not a number, and not a tel: prefix or an extension."""
    body = _EXTENSION.sub("", text[4:] if text[:4].lower() == "tel:" else text)
    return any(c.isalpha() for c in body) and len(_DIGIT.findall(body)) >= 3


def _rebuild_normalizer(default_region: str | None, allow_non_mobile: bool) -> Normalizer:
    return Normalizer(default_region, allow_non_mobile=allow_non_mobile)


def _name_key(name: str) -> str:
    """A country name compared without case, accents, punctuation or a leading "the"."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    key = " ".join(re.findall(r"\w+", plain))
    return key.removeprefix("the ")


# Names phonenumbers' locale data does not have, or has for another place.
_COUNTRY_ALIASES: Final = {
    "usa": "US",
    "u s a": "US",
    "u s": "US",
    "united states of america": "US",
    "america": "US",
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "holland": "NL",
    "gbr": "GB",
    "deu": "DE",
    "fra": "FR",
    "can": "CA",
    "aus": "AU",
    "mex": "MX",
    "esp": "ES",
    "ita": "IT",
    "nld": "NL",
    "bra": "BR",
    "ind": "IN",
    "che": "CH",
    "aut": "AT",
    "bel": "BE",
    "irl": "IE",
    "nzl": "NZ",
}


@cache
def _country_names() -> dict[str, str]:
    """Every country name phonenumbers knows, in every language it has (Deutschland, Allemagne,
    Germany -> DE), keyed by _name_key; a name two countries share is left out. Loaded the first
    time a country cell is not an ISO code (about half a second)."""
    from phonenumbers.geodata.locale import LOCALE_DATA

    found: dict[str, set[str]] = {}
    for code, names in LOCALE_DATA.items():
        for name in names.values():
            if name.startswith("*"):  # "same as in that language"
                name = names.get(name[1:], "")
            if name:
                found.setdefault(_name_key(name), set()).add(code)
    table = {key: next(iter(codes)) for key, codes in found.items() if len(codes) == 1}
    table.update(_COUNTRY_ALIASES)
    return {key: code for key, code in table.items() if code in SUPPORTED_REGIONS}


def country_from_name(name: str) -> str | None:
    """The ISO alpha-2 code of a country written as a name (`United States`, `Deutschland`,
    `España`), or None."""
    key = _name_key(name)
    return _country_names().get(key) if key else None


def _region_code(region: str) -> str | None:
    """ISO alpha-2 code phonenumbers knows, case-insensitive; None when it doesn't."""
    code = region.strip().upper()
    code = _REGION_ALIASES.get(code, code)
    return code if code in SUPPORTED_REGIONS else None


def _international_00(text: str, code: str | None) -> str:
    """Read a leading "00" as "+" unless it is (part of) the region's own IDD prefix."""
    idd = _idd_prefix(code) if code is not None else None
    if idd is not None and idd.match(_NOT_DIGITS.sub("", text)):
        return text  # phonenumbers strips the region's own prefix itself
    return "+" + text[2:]


_NOT_DIGITS: Final = re.compile(r"[^0-9]")


@cache
def _idd_prefix(code: str) -> re.Pattern[str] | None:
    meta = PhoneMetadata.metadata_for_region(code)
    idd = meta.international_prefix if meta is not None else None
    return re.compile(idd) if idd else None


def _guess_country(cc: int, code: str | None) -> str | None:
    # The row's region when it shares the calling code (+1 with CA), else the code's main one.
    if code is not None and phonenumbers.country_code_for_region(code) == cc:
        return code
    regions = COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not regions or regions[0] == _NON_GEO:
        return None
    return regions[0]


def _invalid(cc: int, possible: int, code: str | None) -> PhoneResult:
    country = _guess_country(cc, code)
    where = country or f"+{cc}"
    problem = _LENGTH_PROBLEMS.get(possible)
    if problem is not None:
        return PhoneResult(None, country, f"not a possible number for {where} ({problem})", None)
    return PhoneResult(None, country, f"invalid number for {where}", None)


@lru_cache(maxsize=4)
def _shared(allow_non_mobile: bool) -> Normalizer:
    return Normalizer(allow_non_mobile=allow_non_mobile)


def normalize(
    raw: object, default_region: str | None = None, *, allow_non_mobile: bool = False
) -> PhoneResult:
    """Normalize one cell. `default_region` is the region for numbers without a country code;
    an unknown one rejects such numbers with a reason (Normalizer(...) raises instead)."""
    return _shared(allow_non_mobile).normalize(raw, default_region)
