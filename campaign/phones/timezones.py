"""The recipient's time zones: from the number (phonenumbers' prefix data) or from the user's column.

A sending window must be open in the recipient's local time. Where that is comes from, in order:

1. the user's column (`--timezone-column`): one IANA name per row, checked with `zoneinfo`; it wins,
   because the number's rate centre is not where the person is (ported numbers, travel). An empty
   cell falls back to the number; a name `zoneinfo` doesn't know makes the zone unknown (the user
   wrote something: we don't silently replace it by a guess).
2. the number: phonenumbers' `time_zones_for_number` answer, computed here from the E.164 text and
   the number type the normalizer already found (see `TimeZoneResolver` for why that is fast).
   Fixed-line numbers (every NANP number) resolve by prefix: +1 NPA-NXX, with the area-code
   fallback; mobiles of most countries get every zone of their calling code.

A number with several zones may be messaged only when the window is open in all of them, so each
zone costs every such recipient window time. Country-wide lists mix in other regions that share
the calling code and remote islands; `DROPPED_ZONES` leaves those out, by the number's region, with
the reason (the tool says which it dropped). What is never guessed:

* a non-geographic North American number (toll-free 800/833/844/855/866/877/888, personal 5XX,
  600, 700, premium 900, or an NPA phonenumbers has no data for) would get all 42 NANP zones from
  Guam to Newfoundland, an empty intersection: unknown, with the reason.
* `Etc/Unknown` (no data), an invalid number, a zone this machine's time zone database lacks:
  unknown.

Kept deliberately (the window narrows instead; the user can give a column): real, populated parts
of a country on another clock -- the Canary Islands (ES), the Azores (PT), the Galapagos (EC),
Russia's far east, Australia's Eucla (between Perth and Adelaide: it costs nothing), every zone of
BR, ID, MX, MN, KI, FM, PF, CD. Antarctica/* and Atlantic/Stanley never appear in phonenumbers'
lists for AU or GB (the Falklands have their own +500), so nothing is dropped for them.

The answer is a `TimeZones`: `key` is the kept zones, sorted and space-joined ("America/Chicago",
"Australia/Adelaide Australia/Brisbane ..."), ready to store in a column and group by; None when
unknown.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from functools import cache
from typing import Final

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.tzdata import TIMEZONE_DATA

from campaign.phones.normalize import PhoneResult, normalize

__all__ = [
    "CORRECTED_ZONES",
    "DROPPED_ZONES",
    "FROM_COLUMN",
    "FROM_COUNTRY",
    "FROM_NUMBER",
    "NANP_COUNTRY_ZONES",
    "TimeZoneResolver",
    "TimeZones",
    "time_zones",
]

FROM_NUMBER: Final = "number"  # the number's own prefix (area code, exchange)
FROM_COUNTRY: Final = "country"  # every zone of the calling code (mobiles, non-geographic types)
FROM_COLUMN: Final = "column"  # the user's time zone column


@dataclass(frozen=True, slots=True)
class TimeZones:
    """Where a recipient is, as time zones. Shared between rows: never mutate, never add per-row data."""

    key: str | None  # the kept zones, sorted, space-joined; None: unknown (never guessed)
    source: str  # FROM_NUMBER, FROM_COUNTRY or FROM_COLUMN
    dropped: tuple[str, ...] = ()  # zones phonenumbers gave that were left out, sorted
    note: str | None = None  # why it is unknown, or what was dropped and why

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(self.key.split()) if self.key else ()

    @property
    def known(self) -> bool:
        return self.key is not None


# -- the table of dropped zones -------------------------------------------------------------------


def _shares(place: str, region: str, calling_code: int) -> str:
    return f"{place} ({region}), another region on +{calling_code}"


_CROWN_DEPENDENCIES: Final = {
    "Europe/Guernsey": _shares("Guernsey", "GG", 44),
    "Europe/Isle_of_Man": _shares("the Isle of Man", "IM", 44),
    "Europe/Jersey": _shares("Jersey", "JE", 44),
}
_GB_ZONES: Final = {"Europe/London": _shares("the United Kingdom", "GB", 44), **_CROWN_DEPENDENCIES}
_KAZAKHSTAN: Final = {
    "Asia/Almaty": _shares("Kazakhstan", "KZ", 7),
    "Asia/Aqtobe": _shares("Kazakhstan", "KZ", 7),
}
_ABKHAZIA: Final = "phonenumbers' zone for +7 840/940 (Abkhazia, which keeps Moscow time)"
_RUSSIA: Final = (
    "Asia/Anadyr",
    "Asia/Irkutsk",
    "Asia/Kamchatka",
    "Asia/Krasnoyarsk",
    "Asia/Magadan",
    "Asia/Novosibirsk",
    "Asia/Omsk",
    "Asia/Sakhalin",
    "Asia/Vladivostok",
    "Asia/Yakutsk",
    "Asia/Yekaterinburg",
    "Europe/Moscow",
    "Europe/Samara",
)

# Zones left out of a number's list, by the number's region (PhoneResult.country), with the
# reason. Two kinds only: zones of another region sharing the calling code (the number's region
# says where it is), and remote islands of under ~1,000 residents whose clock would cut the
# window of every mobile in the country. A list is never emptied: when every zone in it is in
# the table (a Guernsey landline has only Europe/Guernsey), it is kept whole.
DROPPED_ZONES: Final[dict[str, dict[str, str]]] = {
    "AU": {
        "Indian/Christmas": _shares("Christmas Island", "CX", 61),
        "Indian/Cocos": _shares("the Cocos Islands", "CC", 61),
        "Australia/Lord_Howe": "Lord Howe Island, ~400 residents, 30 min ahead of Sydney in "
        "winter: it would cut every AU mobile's window",
    },
    "GB": dict(_CROWN_DEPENDENCIES),
    "GG": {z: r for z, r in _GB_ZONES.items() if z != "Europe/Guernsey"},
    "IM": {z: r for z, r in _GB_ZONES.items() if z != "Europe/Isle_of_Man"},
    "JE": {z: r for z, r in _GB_ZONES.items() if z != "Europe/Jersey"},
    "RU": {**_KAZAKHSTAN, "Europe/Bucharest": _ABKHAZIA},
    "KZ": {
        **{zone: _shares("Russia", "RU", 7) for zone in _RUSSIA},
        "Europe/Bucharest": _ABKHAZIA,
    },
    "NO": {"Arctic/Longyearbyen": _shares("Svalbard", "SJ", 47)},
    "FI": {"Europe/Mariehamn": _shares("Åland", "AX", 358)},
    "IT": {"Europe/Vatican": _shares("Vatican City", "VA", 39)},
    "RE": {"Indian/Mayotte": _shares("Mayotte", "YT", 262)},
    "YT": {"Indian/Reunion": _shares("Réunion", "RE", 262)},
    "CW": {"America/Kralendijk": _shares("Bonaire", "BQ", 599)},
    "BQ": {"America/Curacao": _shares("Curaçao", "CW", 599)},
    "NZ": {
        "Pacific/Chatham": "the Chatham Islands, ~600 residents, 45 min ahead of Auckland: "
        "it would cut every NZ mobile's window",
    },
    "GL": {
        "America/Thule": "Pituffik Space Base, a few hundred residents, 2 h behind Nuuk: "
        "it would cut every GL mobile's window",
    },
    "MX": {"America/New_York": "not a Mexican zone (phonenumbers lists it for +52 201)"},
}

# Lists phonenumbers gets wrong for a whole region, replaced by the region's one zone.
CORRECTED_ZONES: Final[dict[str, tuple[str, str]]] = {
    "IE": (
        "Europe/Dublin",
        "phonenumbers lists the UK's zones for +353; Ireland is one zone, Europe/Dublin",
    ),
}

# The countries of +1 besides the US and Canada that phonenumbers has no time zone data for (it
# knows DO, GU, MP, PR and VI): each is on one clock, the zone tzdata gives the country. Without
# this table every mobile of Jamaica or the Bahamas was held as "nowhere in particular".
NANP_COUNTRY_ZONES: Final[dict[str, str]] = {
    "AG": "America/Antigua",
    "AI": "America/Anguilla",
    "AS": "Pacific/Pago_Pago",
    "BB": "America/Barbados",
    "BM": "Atlantic/Bermuda",
    "BS": "America/Nassau",
    "DM": "America/Dominica",
    "GD": "America/Grenada",
    "JM": "America/Jamaica",
    "KN": "America/St_Kitts",
    "KY": "America/Cayman",
    "LC": "America/St_Lucia",
    "MS": "America/Montserrat",
    "SX": "America/Lower_Princes",
    "TC": "America/Grand_Turk",
    "TT": "America/Port_of_Spain",
    "VC": "America/St_Vincent",
    "VG": "America/Tortola",
}

# -- phonenumbers' lookup, without its cost -----------------------------------------------------

# Types phonenumbers resolves by prefix (is_number_type_geographical); MOBILE only in these
# calling codes (its _GEO_MOBILE_COUNTRIES: MX, BR, AR, CN, ID). Names as in PhoneResult.
_GEOGRAPHIC_TYPES: Final = frozenset({"fixed_line", "fixed_line_or_mobile"})
_GEO_MOBILE_CODES: Final = frozenset(
    str(cc) for cc in phonenumbers.phonenumberutil._GEO_MOBILE_COUNTRIES
)
_CALLING_CODES: Final = frozenset(str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE)
_HEAD: Final = 4  # digits that pick the few prefix lengths worth trying


@cache
def _short_lengths(head: str) -> tuple[int, ...]:
    """Lengths of the data prefixes shorter than _HEAD that `head` starts with, longest first."""
    return tuple(n for n in range(_HEAD - 1, 0, -1) if head[:n] in TIMEZONE_DATA)


def _lengths_by_head() -> dict[str, tuple[int, ...]]:
    """For each _HEAD-digit head of a data prefix: the prefix lengths that can match a number
    starting with it, longest first. phonenumbers tries all nine lengths; a NANP number needs
    one or two (+1 212: only 4; +1 850: 7 then 4)."""
    long: dict[str, set[int]] = {}
    for prefix in TIMEZONE_DATA:
        if len(prefix) >= _HEAD:
            long.setdefault(prefix[:_HEAD], set()).add(len(prefix))
    return {
        head: (*sorted(lengths, reverse=True), *_short_lengths(head))
        for head, lengths in long.items()
    }


_LENGTHS_BY_HEAD: Final = _lengths_by_head()
_UNKNOWN_ZONE: Final = "Etc/Unknown"  # phonenumbers' (ICU's) "no idea"
# Files of the zone database that are no place's zone: this machine's own clock (a guess, and
# another on each sender), the POSIX rules template, tzdata's "zone not set"; and the copies
# under posix/ and right/ (leap seconds: a clock 27 s off), which not every machine has.
_NOT_PLACES: Final = frozenset({"localtime", "posixrules", "Factory"})
_NOT_PLACE_FOLDERS: Final = ("posix/", "right/")
_NANP_TOLL_FREE: Final = frozenset({"800", "833", "844", "855", "866", "877", "888"})


def _calling_code(digits: str) -> str | None:
    # Calling codes are prefix-free: at most one of the 1-3 digit prefixes is one.
    for length in (1, 2, 3):
        if digits[:length] in _CALLING_CODES:
            return digits[:length]
    return None


def _nanp_kind(npa: str) -> str:
    if npa in _NANP_TOLL_FREE:
        return "toll-free"
    if npa == "900":
        return "premium rate"
    if npa.startswith("5") and npa[1] == npa[2]:
        return "personal/non-geographic"
    if npa in ("600", "700"):
        return "non-geographic"
    return "without time zone data"


@cache
def _zone_in_database(zone: str) -> bool:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _from_phonenumbers(prefix: str, region: str | None) -> TimeZones:
    """The answer for every number whose longest prefix in phonenumbers' data is `prefix`."""
    raw: tuple[str, ...] = TIMEZONE_DATA.get(prefix, (_UNKNOWN_ZONE,))
    source = FROM_COUNTRY if prefix in _CALLING_CODES else FROM_NUMBER
    if raw == (_UNKNOWN_ZONE,):
        return TimeZones(None, source, note=f"phonenumbers has no time zone for +{prefix}")
    if region in CORRECTED_ZONES:
        zone, why = CORRECTED_ZONES[region]
        replaced = tuple(sorted(set(raw) - {zone}))
        return TimeZones(zone, source, replaced, _dropped_note(replaced, dict.fromkeys(raw, why)))
    table = DROPPED_ZONES.get(region or "", {})
    kept = sorted(zone for zone in raw if zone not in table)
    if not kept:
        kept = sorted(raw)  # only the region's own zones were in the table
    dropped = tuple(sorted(set(raw) - set(kept)))
    missing = [zone for zone in kept if not _zone_in_database(zone)]
    if missing:
        return TimeZones(
            None,
            source,
            note=f"{', '.join(missing)} not in this machine's time zone database (update tzdata)",
        )
    return TimeZones(" ".join(kept), source, dropped, _dropped_note(dropped, table))


def _dropped_note(dropped: tuple[str, ...], reasons: dict[str, str]) -> str | None:
    """ "dropped Asia/Almaty, Asia/Aqtobe: Kazakhstan (KZ), another region on +7; ..." """
    zones_by_reason: dict[str, list[str]] = {}
    for zone in dropped:
        zones_by_reason.setdefault(reasons[zone], []).append(zone)
    parts = [f"dropped {', '.join(zones)}: {why}" for why, zones in zones_by_reason.items()]
    return "; ".join(parts) or None


def _nanp_unknown(npa: str, region: str | None = None) -> TimeZones:
    zone = NANP_COUNTRY_ZONES.get(region or "")
    if zone is not None and _zone_in_database(zone):
        return TimeZones(zone, FROM_COUNTRY)
    return TimeZones(
        None,
        FROM_COUNTRY,
        note=f"{_nanp_kind(npa)} North American number (+1 {npa}): it is nowhere in particular, "
        "and all 42 zones of +1 never share a window",
    )


_INVALID: Final = TimeZones(None, FROM_NUMBER, note="not a valid number")


class TimeZoneResolver:
    """Time zones for normalized numbers, cached per prefix: build one per import (or worker).

    phonenumbers' `time_zones_for_number` works out the number type again (the costly part: every
    type's pattern), formats the E.164 text, then looks up its longest prefix in a dict. The
    normalizer has already done the first two, so here only the lookup runs: a few dict probes
    on slices of the E.164 text, then a cache keyed by (the prefix found, the region) that holds
    the finished answer (dropped zones applied, names checked with zoneinfo). There are a few
    thousand prefixes, so the cache stays small whatever the file.
    """

    __slots__ = ("_by_column", "_by_prefix")

    def __init__(self) -> None:
        self._by_prefix: dict[tuple[str, str | None], TimeZones] = {}
        self._by_column: dict[str, TimeZones] = {}

    def for_phone(self, phone: PhoneResult, column: object = None) -> TimeZones | None:
        """The recipient's zones: the column's when it has a value, else the number's. None for
        a number that was rejected (it has no E.164) and no column value."""
        if isinstance(column, str) and column.strip():
            return self.for_column(column)
        if phone.e164 is None:
            return None
        return self.for_number(phone.e164, phone.country, phone.number_type)

    def for_number(self, e164: str, region: str | None, number_type: str | None) -> TimeZones:
        """Zones of a valid E.164 number, given its region and type as PhoneResult names them."""
        if number_type is None or number_type == "unknown":
            return _INVALID  # phonenumbers says Etc/Unknown
        digits = e164[1:]
        if number_type in _GEOGRAPHIC_TYPES or (
            number_type == "mobile" and _calling_code(digits) in _GEO_MOBILE_CODES
        ):
            prefix = ""
            head = digits[:_HEAD]
            for length in _LENGTHS_BY_HEAD.get(head) or _short_lengths(head):
                if digits[:length] in TIMEZONE_DATA:
                    prefix = digits[:length]
                    break
        else:
            prefix = _calling_code(digits) or ""  # every zone of the calling code
        if prefix == "1":
            # NANP numbers resolve by NPA; only a non-geographic one gets the whole plan's list.
            prefix = "nanp " + digits[1:4]  # a cache key that no data prefix can be
        key = (prefix, region)
        found = self._by_prefix.get(key)
        if found is None:
            if prefix.startswith("nanp "):
                found = _nanp_unknown(prefix[5:], region)
            else:
                found = _from_phonenumbers(prefix, region)
            self._by_prefix[key] = found
        return found

    def for_column(self, value: str) -> TimeZones:
        """The zone a user wrote: an IANA name (case-insensitive), else unknown with the reason."""
        found = self._by_column.get(value)
        if found is None:
            found = _column_zone(value)
            if len(self._by_column) < 10_000:  # bounded: a zone column has few distinct values
                self._by_column[value] = found
        return found


@cache
def _zone_names_by_lower_case() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def _column_zone(value: str) -> TimeZones:
    text = value.strip()
    name = text if _zone_in_database(text) else _zone_names_by_lower_case().get(text.lower())
    if (
        name is None
        or name == _UNKNOWN_ZONE
        or name in _NOT_PLACES
        or name.startswith(_NOT_PLACE_FOLDERS)
    ):
        return TimeZones(
            None,
            FROM_COLUMN,
            note=f"time zone column: {text!r} is not an IANA time zone name (e.g. America/Chicago)",
        )
    return TimeZones(name, FROM_COLUMN)


_shared_resolver = TimeZoneResolver()


def time_zones(number: str, column: str | None = None, region: str | None = None) -> TimeZones:
    """One number's zones (a one-off: normalizes it first; an import uses TimeZoneResolver).
    `region` reads a number written without its country code."""
    if column is not None and column.strip():
        return _shared_resolver.for_column(column)
    phone = normalize(number, region, allow_non_mobile=True)
    if phone.e164 is None:
        return TimeZones(None, FROM_NUMBER, note=f"not a valid number: {phone.reason}")
    return _shared_resolver.for_number(phone.e164, phone.country, phone.number_type)
