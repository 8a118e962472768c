"""The deadline's TimeToLive as a table, --deadline parsing, and do-not-send list normalization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from campaign.audience.deadline import DeadlineError, TimeToLive, parse_deadline, time_to_live
from campaign.audience.suppression import SuppressionError, normalize_list
from campaign.phones.normalize import Normalizer

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

# (seconds left before the deadline or None, campaign --ttl) -> what to do
TTL_CASES = [
    (None, None, TimeToLive(True, None)),  # no deadline: the service default
    (None, 600, TimeToLive(True, 600)),
    (-1.0, None, TimeToLive(False, None)),  # past the deadline
    (4.999, None, TimeToLive(False, None)),  # under the API's 5 s minimum: not sent
    (5.0, None, TimeToLive(True, 5)),
    (5.9, None, TimeToLive(True, 5)),  # whole seconds, rounded down: never past the deadline
    (3600.5, None, TimeToLive(True, 3600)),
    (3600.0, 600, TimeToLive(True, 600)),  # the campaign's TTL ends first
    (3600.0, 7200, TimeToLive(True, 3600)),  # the deadline ends first
    (259_200.0, None, TimeToLive(True, None)),  # 72 h left: the default fits
    (259_199.0, None, TimeToLive(True, 259_199)),
    (4 * 86_400.0, None, TimeToLive(True, None)),
]


@pytest.mark.parametrize(("left", "ttl", "expected"), TTL_CASES)
def test_time_to_live(left: float | None, ttl: int | None, expected: TimeToLive) -> None:
    deadline = None if left is None else NOW + timedelta(seconds=left)
    assert time_to_live(NOW, deadline, ttl) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-01T20:00+02:00",
        "2026-05-01T18:00Z",
        "2026-05-01 18:00:00+00:00",
        " 2026-05-01T13:00-05:00 ",
        "2026-05-01t18:00z",  # RFC 3339 allows both in lower case
    ],
)
def test_parse_deadline(text: str) -> None:
    assert parse_deadline(text) == datetime(2026, 5, 1, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-05-01T20:00", "has no UTC offset"),
        ("2026-05-01", "has no UTC offset"),
        ("tomorrow 8pm", "is not an ISO 8601 date and time"),
        ("", "is not an ISO 8601 date and time"),
        # Past datetime's range in UTC, or near enough that the deadline's margins leave it.
        ("9999-12-31T23:59:59-05:00", "is out of range: give a year from 2000 to 9998"),
        ("9999-06-01T12:00Z", "is out of range"),
        ("0001-01-01T00:00+01:00", "is out of range"),
    ],
)
def test_parse_deadline_errors(text: str, says: str) -> None:
    with pytest.raises(DeadlineError) as error:
        parse_deadline(text)
    assert str(error.value).startswith(f"--deadline {text!r}") and says in str(error.value)


def test_a_do_not_send_list_is_normalized_like_an_import() -> None:
    cells = [
        "+1 415 555 2671",
        "(415) 555-2671",
        "4155552671.0",
        "",
        None,
        "n/a",
        "+44 20 7946 0000",
    ]
    found = normalize_list(cells, "US")
    assert found.numbers == ("+14155552671", "+442079460000")  # a landline may be listed too
    assert found.repeats == 2 and found.empty == 2
    assert found.rejected == ((6, "n/a", "unparseable: not a phone number"),)
    # Byte for byte what an import stores for the same cell.
    assert Normalizer("US").normalize("(415) 555-2671").e164 == found.numbers[0]


def test_a_do_not_send_list_without_a_region_needs_country_codes() -> None:
    found = normalize_list(["+33 6 12 34 56 78", "06 12 34 56 78"])
    assert found.numbers == ("+33612345678",)
    assert found.rejected == ((2, "06 12 34 56 78", "no country code and no default region"),)
    in_file = normalize_list(["06 12 34 56 78"], rows=[41])
    assert in_file.rejected == ((41, "06 12 34 56 78", "no country code and no default region"),)


def test_a_bad_default_region_is_one_line() -> None:
    with pytest.raises(SuppressionError, match=r"^--default-region: unknown country code 'XX'$"):
        normalize_list(["+14155552671"], "XX")
