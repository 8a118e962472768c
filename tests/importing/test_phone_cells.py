"""What the import makes of phone cells beyond phonenumbers' own answers: letters, several numbers
in a cell, and countries written as names (pure: the normalizer alone)."""

from __future__ import annotations

import pytest

from campaign.phones.normalize import Normalizer, country_from_name

CELLS = [
    # cell, E.164 or None, reason (rejected) or note (accepted)
    pytest.param("1-206-555-CALL", None, "letters in the number: 1-206-555-CALL", id="vanity"),
    pytest.param(
        "1-800-FLOWERS", None, "letters in the number: 1-800-FLOWERS", id="toll-free vanity"
    ),
    pytest.param(
        "+1 206 555 0100 (mobile)",
        None,
        "letters in the number: +1 206 555 0100 (mobile)",
        id="a note after the number",
    ),
    pytest.param("call me", None, "unparseable: not a phone number", id="words stay words"),
    pytest.param("+1 206 555 0100 ext. 12", None, "has an extension", id="extension"),
    pytest.param("tel:+1-206-555-0100", "+12065550100", None, id="tel URI"),
    pytest.param(
        "+1 206-555-0100 ::: +1 206-555-0199",
        "+12065550100",
        "number 1 of 2 in the cell",
        id="Google's ::: separator",
    ),
    pytest.param(
        "+44 20 7946 0000; +44 7860 019066",
        "+447860019066",
        "number 2 of 2 in the cell",
        id="the first mobile, not the first number",
    ),
    pytest.param(
        "+44 20 7946 0000 | +44 20 7946 0001",
        None,
        "several numbers in one cell (2), none can receive SMS: "
        "not a mobile-capable number (fixed line)",
        id="no mobile among them",
    ),
    pytest.param("030/1234567", None, "invalid number for US", id="a slash inside one number"),
]


@pytest.mark.parametrize(("cell", "e164", "words"), CELLS)
def test_cells(cell: str, e164: str | None, words: str | None) -> None:
    result = Normalizer("US").normalize(cell)
    assert result.e164 == e164
    if e164 is None:
        assert result.reason == words
    else:
        assert (result.reason, result.note) == (None, words)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("United States", "US"),
        ("USA", "US"),
        ("Deutschland", "DE"),
        ("germany", "DE"),
        ("Allemagne", "DE"),
        ("España", "ES"),
        ("The Netherlands", "NL"),
        ("United Kingdom", "GB"),
        ("England", "GB"),
        ("Österreich", "AT"),
        ("Narnia", None),
        ("", None),
    ],
)
def test_country_names(name: str, code: str | None) -> None:
    assert country_from_name(name) == code


def test_a_country_column_with_names() -> None:
    normalizer = Normalizer()
    assert normalizer.normalize("07860 019066", "United Kingdom").e164 == "+447860019066"
    assert normalizer.normalize("(206) 555-0100", "United States").e164 == "+12065550100"
    assert normalizer.normalize("0176 12345678", "Deutschland").e164 == "+4917612345678"
    assert normalizer.normalize("0176 12345678", "Narnia").reason == "unknown country code 'Narnia'"
