"""Which column is the phone column, as a table of real export headers (pure: no file, no ledger)."""

from __future__ import annotations

import pytest

from campaign.importing.columns import (
    ColumnError,
    Header,
    choose_phone_column,
    merge_columns,
    parse_mappings,
    phone_tier,
)
from campaign.message import Template


def chosen(names: list[str], *wanted: str, fallback: bool = False) -> tuple[str, list[str]]:
    header = Header(tuple(names), "f.csv")
    choice = choose_phone_column(header, wanted, fallback)
    return names[choice.position], [names[p] for p in choice.fallbacks]


EXPORTS = [
    # header of the export, the phone column it must give
    pytest.param(["Name", "Phone", "Mobile"], "Mobile", id="Salesforce: Mobile beats Phone"),
    pytest.param(
        ["Record ID", "First Name", "Phone Number", "Mobile Phone Number", "Email"],
        "Mobile Phone Number",
        id="HubSpot",
    ),
    pytest.param(
        ["Email Address", "First Name", "Phone Number", "SMS Phone Number", "LEID"],
        "SMS Phone Number",
        id="Mailchimp: the SMS column",
    ),
    pytest.param(
        ["Name", "Phone 1 - Type", "Phone 1 - Value", "Phone 2 - Type", "Phone 2 - Value"],
        "Phone 1 - Value",
        id="Google Contacts: Phone 1, not its Type",
    ),
    pytest.param(
        ["First Name", "Business Phone", "Home Phone", "Mobile Phone", "Business Fax"],
        "Mobile Phone",
        id="Outlook",
    ),
    pytest.param(["Nom", "Téléphone", "Téléphone portable"], "Téléphone portable", id="French"),
    pytest.param(["Vorname", "Telefon", "Handynummer"], "Handynummer", id="German"),
    pytest.param(["Nombre", "Teléfono", "Móvil"], "Móvil", id="Spanish"),
    pytest.param(["Name", "MobilePhone", "HomePhone"], "MobilePhone", id="camelCase API names"),
    pytest.param(["name", "Home Phone", "Work Phone", "Phone"], "Phone", id="plain beats landline"),
    pytest.param(
        ["name", "Home Phone"], "Home Phone", id="a landline column if it is the only one"
    ),
    pytest.param(["name", "msisdn"], "msisdn", id="msisdn"),
    pytest.param(["name", "number"], "number", id="a bare 'number'"),
    pytest.param(
        ["Phone", "Phone Type", "SMS Opt In", "Mobile Country Code", "Fax", "Mobile"],
        "Mobile",
        id="type, consent, country code and fax columns are not numbers",
    ),
]


@pytest.mark.parametrize(("names", "expected"), EXPORTS)
def test_phone_column_of_each_export(names: list[str], expected: str) -> None:
    assert chosen(names)[0] == expected


@pytest.mark.parametrize(
    ("names", "candidates"),
    [
        pytest.param(["Name", "Phone", "phone"], "'Phone', 'phone'", id="Phone and phone"),
        pytest.param(["Mobile", "Cell"], "'Mobile', 'Cell'", id="two mobile columns"),
        pytest.param(["Phone", "Telephone"], "'Phone', 'Telephone'", id="two plain ones"),
    ],
)
def test_a_tie_is_refused_with_the_candidates(names: list[str], candidates: str) -> None:
    with pytest.raises(ColumnError) as caught:
        chosen(names)
    message = str(caught.value)
    assert f"could be the phone column: {candidates}" in message
    assert "--phone-column" in message


def test_the_user_settles_a_tie_by_exact_spelling() -> None:
    assert chosen(["Name", "Phone", "phone"], "phone") == ("phone", [])
    assert chosen(["Name", "Phone", "phone"], "Phone") == ("Phone", [])
    with pytest.raises(ColumnError, match="matches 2 columns"):
        chosen(["Name", "Phone", "phone"], "PHONE")


def test_fallbacks_best_first() -> None:
    names = ["Name", "Home Phone", "Phone", "Mobile", "Email"]
    assert chosen(names, fallback=True) == ("Mobile", ["Phone", "Home Phone"])
    # Repeating --phone-column gives the order itself.
    assert chosen(names, "Phone", "Mobile") == ("Phone", ["Mobile"])
    assert chosen(names, "Phone", fallback=True) == ("Phone", ["Mobile", "Home Phone"])


def test_no_phone_column_lists_the_columns() -> None:
    with pytest.raises(ColumnError, match=r"no phone column in f\.csv.*'name', 'email'"):
        chosen(["name", "email"])


@pytest.mark.parametrize(
    "header",
    ["House Number", "Order Number", "Phone Type", "SMS Opt-In", "Fax", "Telefax", "SMS"],
)
def test_not_phone_columns(header: str) -> None:
    assert phone_tier(header) is None


def test_map_and_fallback_fields() -> None:
    header = Header(("Prénom", "Téléphone portable", "Ville"), "f.csv")
    template = Template("Bonjour {first_name}, {city|chez vous} {title|}")
    merge = merge_columns(header, template, parse_mappings(["first_name=Prénom", "city=ville"]))
    assert merge.positions == {"first_name": 0, "city": 2}
    assert merge.missing_with_fallback == ("title",)
    # Without a fallback, a missing column is an error naming it (docs/contract.md).
    with pytest.raises(ColumnError, match=r"uses \{first_name\} but f.csv has no column"):
        merge_columns(header, template, {})
    with pytest.raises(ColumnError, match=r"the message has no field \{nom\}"):
        merge_columns(header, template, parse_mappings(["nom=Prénom"]))
    with pytest.raises(ColumnError, match="write FIELD=COLUMN"):
        parse_mappings(["first_name"])


def test_a_field_used_once_without_fallback_needs_its_column() -> None:
    template = Template("{name|there} ... {name}")
    assert template.required_columns == ("name",)
    with pytest.raises(ColumnError, match="has no column 'name'"):
        merge_columns(Header(("phone",), "f.csv"), template, {})
