"""Time zones per number, as a table; then the user's column, the dropped-zone table checked
against phonenumbers' own data, and the fast lookup checked against phonenumbers' own call."""

from __future__ import annotations

import random
import zoneinfo

import phonenumbers
import pytest
from phonenumbers.timezone import time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA

from campaign.phones.normalize import Normalizer, PhoneResult
from campaign.phones.timezones import (
    CORRECTED_ZONES,
    DROPPED_ZONES,
    FROM_COLUMN,
    FROM_COUNTRY,
    FROM_NUMBER,
    NANP_COUNTRY_ZONES,
    TimeZoneResolver,
    time_zones,
)

AU_MAINLAND = (
    "Australia/Adelaide Australia/Brisbane Australia/Eucla Australia/Perth Australia/Sydney"
)
RUSSIA = (
    "Asia/Anadyr Asia/Irkutsk Asia/Kamchatka Asia/Krasnoyarsk Asia/Magadan Asia/Novosibirsk "
    "Asia/Omsk Asia/Sakhalin Asia/Vladivostok Asia/Yakutsk Asia/Yekaterinburg Europe/Moscow "
    "Europe/Samara"
)

# number -> (key, source, dropped)
NUMBERS = [
    # NANP by NPA-NXX: 850 is split between Central and Eastern by exchange.
    ("+18504321234", "America/Chicago", FROM_NUMBER, ()),
    ("+18502221234", "America/New_York", FROM_NUMBER, ()),
    # 605 (South Dakota): Central east of the Missouri, Mountain west of it; an exchange
    # phonenumbers doesn't list falls back to the area code's two zones.
    ("+16052011234", "America/Chicago", FROM_NUMBER, ()),
    ("+16052091234", "America/Denver", FROM_NUMBER, ()),
    ("+16059991234", "America/Denver America/North_Dakota/Center", FROM_NUMBER, ()),
    # 208 (Idaho): the north is Pacific.
    ("+12082151234", "America/Los_Angeles", FROM_NUMBER, ()),
    ("+12082101234", "America/Boise America/Los_Angeles", FROM_NUMBER, ()),
    ("+14155552671", "America/Los_Angeles", FROM_NUMBER, ()),
    ("+14165551234", "America/Toronto", FROM_NUMBER, ()),
    ("+13065551234", "America/Regina", FROM_NUMBER, ()),
    # Mobiles get every zone of their calling code, minus the dropped ones.
    (
        "+61412345678",
        AU_MAINLAND,
        FROM_COUNTRY,
        ("Australia/Lord_Howe", "Indian/Christmas", "Indian/Cocos"),
    ),
    ("+79161234567", RUSSIA, FROM_COUNTRY, ("Asia/Almaty", "Asia/Aqtobe", "Europe/Bucharest")),
    ("+77012345678", "Asia/Almaty Asia/Aqtobe", FROM_COUNTRY, None),  # KZ: the RU ones dropped
    (
        "+447400123456",
        "Europe/London",
        FROM_COUNTRY,
        ("Europe/Guernsey", "Europe/Isle_of_Man", "Europe/Jersey"),
    ),
    ("+447781123456", "Europe/Guernsey", FROM_COUNTRY, None),
    ("+447624123456", "Europe/Isle_of_Man", FROM_COUNTRY, None),
    ("+447797123456", "Europe/Jersey", FROM_COUNTRY, None),
    ("+353851234567", "Europe/Dublin", FROM_COUNTRY, None),  # corrected: phonenumbers says UK
    ("+64211234567", "Pacific/Auckland", FROM_COUNTRY, ("Pacific/Chatham",)),
    ("+33612345678", "Europe/Paris", FROM_COUNTRY, ()),
    ("+4915112345678", "Europe/Berlin", FROM_COUNTRY, ()),
    # Kept: populated parts of the country on another clock.
    ("+34612345678", "Atlantic/Canary Europe/Madrid", FROM_COUNTRY, ()),
    ("+351912345678", "Atlantic/Azores Europe/Lisbon", FROM_COUNTRY, ()),
    # Mobiles resolved by prefix (phonenumbers' geographic mobile countries).
    ("+525512345678", "America/Mexico_City", FROM_NUMBER, ()),
    ("+5511912345678", "America/Sao_Paulo", FROM_NUMBER, ()),
    # A territory's own landline keeps its own zone, even though AU drops it from mobiles.
    ("+61891621234", "Indian/Cocos", FROM_NUMBER, ()),
]


@pytest.mark.parametrize(("number", "key", "source", "dropped"), NUMBERS)
def test_zones_of_a_number(
    number: str, key: str, source: str, dropped: tuple[str, ...] | None
) -> None:
    found = time_zones(number)
    assert (found.key, found.source) == (key, source)
    assert found.zones == tuple(key.split())
    assert found.key == " ".join(sorted(found.zones))  # canonical: store it, group by it
    if dropped is not None:
        assert found.dropped == dropped
    if found.dropped:
        for zone in found.dropped:
            assert zone in (found.note or "")


def test_the_dropped_note_says_why() -> None:
    note = time_zones("+61412345678").note or ""
    assert "Indian/Christmas: Christmas Island (CX), another region on +61" in note
    assert "Australia/Lord_Howe: Lord Howe Island" in note


# Numbers with no place to take a time zone from: unknown, never guessed, with the reason.
UNKNOWN = [
    ("+18004567890", "toll-free North American number (+1 800)"),
    ("+18332345678", "toll-free North American number (+1 833)"),
    ("+18882345678", "toll-free North American number (+1 888)"),
    ("+19005551234", "premium rate North American number (+1 900)"),
    ("+15005551234", "personal/non-geographic North American number (+1 500)"),
    ("+80012345678", "phonenumbers has no time zone for +800"),  # international freephone
    ("+1 684 555 1234", "not a valid number"),
    ("call me", "not a valid number"),
]


@pytest.mark.parametrize(("number", "why"), UNKNOWN)
def test_unknown_zones_are_never_guessed(number: str, why: str) -> None:
    found = time_zones(number)
    assert found.key is None and not found.known and found.zones == ()
    assert why in (found.note or "")


def test_toll_free_from_an_import_allowing_non_mobile_numbers() -> None:
    phone = Normalizer("US", allow_non_mobile=True).normalize("(800) 456-7890")
    assert phone.number_type == "toll_free"
    found = TimeZoneResolver().for_phone(phone)
    assert found is not None and found.key is None and "toll-free" in (found.note or "")
    # phonenumbers itself would have answered every zone of +1.
    assert len(time_zones_for_number(phonenumbers.parse("+18004567890"))) == 42


# -- the user's column ------------------------------------------------------------------------


def test_the_column_wins_over_the_number() -> None:
    found = time_zones("+18504321234", column="Europe/Paris")
    assert (found.key, found.source) == ("Europe/Paris", FROM_COLUMN)


def test_the_column_is_read_case_insensitively() -> None:
    assert time_zones("+18504321234", column=" america/new_york ").key == "America/New_York"


@pytest.mark.parametrize(
    "value",
    [
        "Mars/Olympus_Mons",
        "EST+5",
        "../../etc/passwd",
        "Etc/Unknown",
        # Files of the zone database that are no place's zone: `localtime` is the clock of the
        # machine that sends (a guess, different on each sender), `Factory` is "zone not set".
        "localtime",
        "LocalTime",
        "posixrules",
        "Factory",
        "right/UTC",  # leap seconds: 27 s off, and not on every machine
        "posix/Europe/Paris",
    ],
)
def test_an_invalid_column_zone_is_unknown_not_the_number(value: str) -> None:
    found = time_zones("+18504321234", column=value)
    assert found.key is None and found.source == FROM_COLUMN
    assert repr(value.strip()) in (found.note or "") and "IANA" in (found.note or "")


@pytest.mark.parametrize("cell", [None, "", "   ", float("nan")])
def test_an_empty_column_cell_falls_back_to_the_number(cell: object) -> None:
    phone = Normalizer("US").normalize("850-432-1234")
    found = TimeZoneResolver().for_phone(phone, cell)
    assert found is not None and found.key == "America/Chicago"


def test_a_rejected_number_without_a_column_has_no_zones() -> None:
    resolver = TimeZoneResolver()
    rejected = Normalizer("US").normalize("n/a")
    assert resolver.for_phone(rejected) is None
    found = resolver.for_phone(rejected, "Asia/Tokyo")
    assert found is not None and found.key == "Asia/Tokyo"


# -- the tables against phonenumbers' data ----------------------------------------------------


def _country_list(region: str) -> tuple[str, ...]:
    return TIMEZONE_DATA[str(phonenumbers.country_code_for_region(region))]


@pytest.mark.parametrize("region", sorted(DROPPED_ZONES))
def test_every_dropped_zone_is_in_phonenumbers_list_for_its_region(region: str) -> None:
    """A stale entry would hide a data change: each zone must still be one phonenumbers gives."""
    country_wide = set(_country_list(region))
    assert set(DROPPED_ZONES[region]) <= country_wide
    assert country_wide - set(DROPPED_ZONES[region]), "the table must leave a zone"


@pytest.mark.parametrize("region", sorted(CORRECTED_ZONES))
def test_corrected_regions_still_need_it(region: str) -> None:
    zone, _ = CORRECTED_ZONES[region]
    assert zone not in _country_list(region)  # when phonenumbers fixes it, drop the correction


def test_every_zone_phonenumbers_gives_is_in_the_time_zone_database() -> None:
    zones = {zone for zones in TIMEZONE_DATA.values() for zone in zones}
    missing = []
    for zone in sorted(zones):
        try:
            zoneinfo.ZoneInfo(zone)
        except zoneinfo.ZoneInfoNotFoundError:
            missing.append(zone)
    assert not missing


# -- the fast lookup is phonenumbers' lookup --------------------------------------------------


def _sample_numbers(count: int, seed: int) -> list[str]:
    """Valid numbers of every region and type phonenumbers has examples for, with random tails."""
    rng = random.Random(seed)
    types = (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.VOIP,
    )
    examples: list[str] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in types:
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is not None:
                examples.append(phonenumbers.format_number(example, 0))
    # And numbers behind phonenumbers' longest prefixes (8 and 9 digits: AU, US exchanges...).
    out: list[str] = []
    long_prefixes = sorted(prefix for prefix in TIMEZONE_DATA if len(prefix) >= 7)
    for prefix in rng.sample(long_prefixes, 600):
        for length in range(len(prefix) + 1, 14):
            tail = "".join(rng.choice("0123456789") for _ in range(length - len(prefix)))
            candidate = "+" + prefix + tail
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                out.append(candidate)
                break
    assert sum(len(number) >= 11 and number[1:3] == "61" for number in out) > 20
    while len(out) < count:
        sample = rng.choice(examples)
        keep = rng.randint(len(sample) - 4, len(sample))
        tail = "".join(rng.choice("0123456789") for _ in range(len(sample) - keep))
        candidate = sample[:keep] + tail
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            out.append(candidate)
    return out


def test_the_resolver_gives_phonenumbers_answer_minus_the_dropped_zones() -> None:
    normalizer = Normalizer(allow_non_mobile=True)
    resolver = TimeZoneResolver()
    numbers = _sample_numbers(4000, seed=11)
    numbers += [
        f"+1{npa}{rng:07d}"
        for npa in ("850", "605", "208", "212")
        for rng in range(0, 10**7, 10**5)
    ]
    checked = 0
    for number in numbers:
        phone = normalizer.normalize(number)
        if phone.e164 is None:
            continue
        raw = time_zones_for_number(phonenumbers.parse(phone.e164))
        found = resolver.for_phone(phone)
        assert found is not None
        if phone.e164.startswith("+1") and phone.country in NANP_COUNTRY_ZONES:
            assert found.key == NANP_COUNTRY_ZONES[phone.country]  # phonenumbers has none
        elif phone.e164.startswith("+1") and len(raw) == 42:
            assert found.key is None  # a non-geographic NANP number: unknown
        elif raw == ("Etc/Unknown",):
            assert found.key is None
        elif phone.country in CORRECTED_ZONES:
            assert found.zones == (CORRECTED_ZONES[phone.country][0],)
        else:
            assert set(found.zones) | set(found.dropped) == set(raw), phone.e164
            assert set(found.dropped) <= set(DROPPED_ZONES.get(phone.country or "", ()))
        checked += 1
    assert checked > 4000


def test_the_cache_holds_one_answer_per_prefix_not_per_number() -> None:
    resolver = TimeZoneResolver()
    normalizer = Normalizer("US")
    rng = random.Random(3)
    phones: list[PhoneResult] = []
    for _ in range(20_000):
        npa = rng.choice(["212", "415", "850", "605", "208", "312"])
        phones.append(
            normalizer.normalize(f"{npa}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}")
        )
    answers = [resolver.for_phone(phone) for phone in phones]
    assert all(answer is not None and answer.known for answer in answers)
    assert len(resolver._by_prefix) < 1000  # per NPA-NXX at most, whatever the row count
    first = resolver.for_phone(normalizer.normalize("850-432-1234"))
    assert first is resolver.for_phone(normalizer.normalize("850-432-9999"))  # shared, frozen


@pytest.mark.parametrize("region", sorted(NANP_COUNTRY_ZONES))
def test_a_mobile_of_a_one_zone_nanp_country_has_its_zone(region: str) -> None:
    """+1 876 (Jamaica), +1 242 (Bahamas)...: phonenumbers has no zone for them, and they were
    held as 'nowhere in particular'; each country is on one clock."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    number = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    found = time_zones(number)
    assert found.key == NANP_COUNTRY_ZONES[region] and found.source == FROM_COUNTRY
    assert found.key in zoneinfo.available_timezones()


def test_every_nanp_country_has_zones() -> None:
    """No region of +1 is left without zones as phonenumbers grows (a new one would be held)."""
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is None:
            continue
        number = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        assert time_zones(number).key, region
