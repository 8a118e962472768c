"""Price tables and the offline estimate, checked against totals computed by hand (in comments)."""

from __future__ import annotations

import csv
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from campaign.cli.render import render_estimate
from campaign.domain import PartsClass, Ucs2Character
from campaign.pricing import (
    Estimate,
    Price,
    PriceTable,
    PriceTableError,
    cost_of,
    estimate,
)
from campaign.reports.data import format_duration

ROOT = Path(__file__).resolve().parents[2]
D = Decimal

# US: 0.00581 + 0.00302 = 0.00883 a part; GB: 0.0365 (no carrier fee); everyone else: 0.05 + 0.001
TABLE_CSV = """country,price_per_part,carrier_fee_per_part
US,0.00581,0.00302
GB,0.0365,
*,0.05,0.001
"""


def table_of(text: str, source: str = "prices.csv") -> PriceTable:
    return PriceTable.parse(text, source=source)


TABLE = table_of(TABLE_CSV)
LOOKALIKES = {"’": "'", "\u00a0": " ", "–": "-"}


def run(
    classes: list[PartsClass],
    table: PriceTable | None = TABLE,
    *,
    max_price: str | None = None,
    mps: float | None = None,
    mps_source: str | None = None,
    ucs2: list[Ucs2Character] | None = None,
) -> Estimate:
    return estimate(
        campaign="spring",
        classes=classes,
        table=table,
        max_price=max_price,
        mps=mps,
        mps_source=mps_source,
        ucs2=ucs2 or [],
        lookalikes=LOOKALIKES,
    )


def by_country(est: Estimate) -> dict[str | None, dict[str, object]]:
    return {c["country"]: c for c in est.to_json()["countries"]}


# -- price tables ----------------------------------------------------------------------------------


def test_price_table_lookup_exact_then_star() -> None:
    assert TABLE.price_for("US") == Price(D("0.00581"), D("0.00302"))
    assert TABLE.price_for("US").per_part == D("0.00883")  # type: ignore[union-attr]
    assert TABLE.price_for("gb") == Price(D("0.0365"), D(0))  # empty fee cell: no fee
    assert TABLE.price_for("JP") == Price(D("0.05"), D("0.001"))  # `*`
    assert TABLE.price_for(None) == Price(D("0.05"), D("0.001"))  # unknown country: `*` too
    no_star = table_of("country,price_per_part\nUS,0.01\n")
    assert no_star.price_for("JP") is None
    assert no_star.price_for(None) is None
    assert PriceTable.default().price_for("US") is None


def test_cost_of() -> None:
    assert cost_of(3, "US", TABLE) == D("0.02649")  # 3 x 0.00883
    assert cost_of(2, "FR", TABLE) == D("0.102")  # 2 x (0.05 + 0.001) through `*`
    assert cost_of(1, "FR", table_of("country,price_per_part\nUS,0.01\n")) is None
    assert cost_of(1, "US", None) is None
    assert cost_of(1, "US", PriceTable.default()) is None


def test_load_is_lenient_about_header_spelling_bom_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "my prices.csv"
    text = (
        " Country ,Price Per Part,CARRIER-FEE-PER-PART,note\n"
        "us,$0.00581,0.00302,anything\n"
        "\n"
        "*, 0.05 ,,\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # Excel's BOM
    table = PriceTable.load(path)
    assert table.source == "my prices.csv"
    assert table.price_for("US") == Price(D("0.00581"), D("0.00302"))
    assert table.price_for("ZW") == Price(D("0.05"), D(0))
    assert set(table.prices) == {"US", "*"}


def test_sample_table_loads_and_is_marked_as_example() -> None:
    path = ROOT / "samples" / "prices.csv"
    table = PriceTable.load(path)
    assert {"US", "CA", "GB", "DE", "FR", "IN", "AU", "BR", "MX", "*"} <= set(table.prices)
    assert table.price_for("US").per_part == D("0.00883")  # type: ignore[union-attr]
    with path.open(encoding="utf-8-sig", newline="") as fh:
        notes = [row["note"] for row in csv.DictReader(fh)]
    assert notes and all("EXAMPLE" in n and "AWS pricing page" in n for n in notes)


HEADER = "country,price_per_part\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty price table"),
        ("\n\n", "empty price table"),
        (HEADER, "empty price table (a header but no price rows)"),
        (
            "country,price\nUS,0.1\n",
            "header: missing column price_per_part (found: country, price)",
        ),
        ("price_per_part\n0.1\n", "header: missing column country"),
        (
            "country,price_per_part,Price Per Part\nUS,1,1\n",
            "column 'Price Per Part' appears twice",
        ),
        (HEADER + "US,abc\n", "row 1: price_per_part 'abc' is not a number"),
        (HEADER + "US,NaN\n", "row 1: price_per_part 'NaN' is not a number"),
        (HEADER + "US,inf\n", "row 1: price_per_part 'inf' is not a number"),
        (HEADER + "US,0.1\nGB,-0.01\n", "row 2: price_per_part '-0.01' is negative"),
        # Past Decimal's precision in the totals: estimate/status/send ended in InvalidOperation.
        (HEADER + "US,1e400\n", "row 1: price_per_part '1e400' is more than $100 a part"),
        (
            "country,price_per_part,carrier_fee_per_part\nUS,0.1,500\n",
            "row 1: carrier_fee_per_part '500' is more than $100 a part",
        ),
        (HEADER + "US,\n", "row 1: empty price_per_part"),
        (
            "country,price_per_part,carrier_fee_per_part\nUS,0.1,x\n",
            "row 1: carrier_fee_per_part 'x' is not a number",
        ),
        (
            "country,price_per_part,carrier_fee_per_part\nUS,0.1,-1\n",
            "row 1: carrier_fee_per_part '-1' is negative",
        ),
        (HEADER + "USA,0.1\n", "row 1: ill-formed country code 'USA'"),
        (HEADER + "U1,0.1\n", "row 1: ill-formed country code 'U1'"),
        (HEADER + "**,0.1\n", "row 1: ill-formed country code '**'"),
        (HEADER + ",0.1\n", "row 1: empty country"),
        (
            HEADER + "US,0.1\nUK,0.1\n",
            "row 2: unknown country code 'UK' (no phone numbers belong to it); did you mean GB?",
        ),
        (HEADER + "QQ,0.1\n", "row 1: unknown country code 'QQ'"),
        (HEADER + "US,0.1\nGB,0.2\nus,0.3\n", "row 3: country US listed twice (first at row 1)"),
        (HEADER + "*,0.1\n*,0.2\n", "row 2: country * listed twice"),
        # A decimal comma splits the price into two cells: never read "0,00581" as $0.
        (HEADER + "US,0,00581\n", "row 1: 3 cells but the header has 2 columns (a decimal comma?"),
        # Blank lines count: row 3 is the third line after the header, the one the user sees.
        (HEADER + "US,0.1\n\nGB,x\n", "row 3: price_per_part 'x' is not a number"),
    ],
)
def test_price_table_errors(text: str, fragment: str) -> None:
    with pytest.raises(PriceTableError) as info:
        table_of(text)
    message = str(info.value)
    assert message.startswith("prices.csv: ")
    assert fragment in message
    assert "\n" not in message


def test_price_table_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(HEADER.encode() + "DE,0.09,Müller\n".encode("latin-1"))
    # 23 header bytes + "DE,0.09,M" (9): the ü is byte 32
    with pytest.raises(PriceTableError, match=r"^latin\.csv: not UTF-8 text \(byte 32\)"):
        PriceTable.load(path)
    with pytest.raises(PriceTableError, match=r"^missing\.csv: cannot read"):
        PriceTable.load(tmp_path / "missing.csv")
    assert issubclass(PriceTableError, ValueError)


# -- estimates -------------------------------------------------------------------------------------


def test_mixed_encodings_multipart_several_countries_and_star_fallback() -> None:
    est = run(
        [
            PartsClass("US", "GSM-7", 1, 1000),  # 1000 parts
            PartsClass("US", "UCS-2", 2, 10),  # 20 parts
            PartsClass("US", "GSM-7", 3, 7),  # 21 parts
            PartsClass("GB", "GSM-7", 2, 300),  # 600 parts
            PartsClass("JP", "UCS-2", 4, 5),  # 20 parts, priced by `*`
        ]
    )
    us, gb, jp = est.countries  # biggest audience first
    assert (us.country, gb.country, jp.country) == ("US", "GB", "JP")
    # US: 1017 recipients (1007 GSM-7, 10 UCS-2), 1041 parts x 0.00883 = 9.19203
    assert (us.recipients, us.gsm7, us.ucs2, us.parts) == (1017, 1007, 10, 1041)
    assert (us.parts_gsm7, us.parts_ucs2) == (1021, 20)
    assert us.cost == D("9.19203")
    # GB: 600 parts x 0.0365 = 21.9
    assert (gb.recipients, gb.gsm7, gb.ucs2, gb.parts, gb.cost) == (300, 300, 0, 600, D("21.9"))
    # JP: 20 parts x 0.051 = 1.02
    assert (jp.recipients, jp.gsm7, jp.ucs2, jp.parts, jp.cost) == (5, 0, 5, 20, D("1.02"))
    t = est.total
    # 1017 + 300 + 5 = 1322 recipients; 1041 + 600 + 20 = 1661 parts; 9.19203 + 21.9 + 1.02
    assert (t.recipients, t.gsm7, t.ucs2, t.parts) == (1322, 1307, 15, 1661)
    assert t.cost == D("32.11203")
    assert (t.unpriced, t.over_max_price) == (0, 0)
    data = est.to_json()
    assert data["total"]["cost"] == 32.11203
    assert data["total"]["cost_exact"] == "32.11203"
    assert by_country(est)["JP"]["price_per_part"] == 0.051


def test_millions_of_parts_add_up_exactly_and_fast() -> None:
    # 1,000,000 recipients in 250 classes of 4,000 (parts 1..10 across 25 countries' worth of
    # classes, all US here): sum of parts = 4000 x 25 x (1+...+10) = 4000 x 25 x 55 = 5,500,000;
    # cost = 5,500,000 x 0.00883 = 48,565.
    classes = [
        PartsClass("US", "GSM-7" if i % 2 else "UCS-2", parts, 4000)
        for i in range(25)
        for parts in range(1, 11)
    ]
    started = time.perf_counter()
    est = run(classes)
    assert time.perf_counter() - started < 0.5
    assert est.total.recipients == 1_000_000
    assert est.total.parts == 5_500_000
    assert est.total.cost == D("48565.00000")
    # The same prices summed as floats message by message would drift: Decimal does not.
    assert sum([0.00883] * 1000) != 8.83
    assert run([PartsClass("US", "GSM-7", 1, 1000)]).total.cost == D("8.83")


@pytest.mark.parametrize(
    ("table_text", "max_price", "parts", "over", "from_parts"),
    [
        # GB 0.0365 a part: 2 parts = 0.073, exactly MaxPrice: allowed
        ("GB,0.0365,", "0.073", 2, 0, 3),
        # 3 parts = 0.1095 > 0.073
        ("GB,0.0365,", "0.073", 3, 40, 3),
        # one micro-dollar dearer per message: 2 x 0.0365005 = 0.073001 > 0.073
        ("GB,0.0365005,", "0.073", 2, 40, 2),
        # the carrier fee counts: 2 x (0.00581 + 0.00302) = 0.01766
        ("US,0.00581,0.00302", "0.01766", 2, 0, 3),
        ("US,0.00581,0.00302", "0.01765", 2, 40, 2),
        # the API's short spelling ".0075": 1 x 0.0075 is not over, 2 parts are
        ("US,0.0075,", ".0075", 1, 0, 2),
        ("US,0.0075,", ".0075", 2, 40, 2),
        # no MaxPrice: nothing is over
        ("US,0.0075,", None, 9, 0, None),
    ],
)
def test_max_price_boundaries(
    table_text: str, max_price: str | None, parts: int, over: int, from_parts: int | None
) -> None:
    table = table_of("country,price_per_part,carrier_fee_per_part\n" + table_text + "\n")
    country = table_text[:2]
    est = run([PartsClass(country, "GSM-7", parts, 40)], table, max_price=max_price)
    (row,) = est.countries
    assert row.over_max_price == over
    assert row.over_max_price_from_parts == from_parts
    assert est.total.over_max_price == over
    assert est.to_json()["max_price"] == max_price


def test_max_price_counts_per_class_across_countries() -> None:
    # MaxPrice 0.05: US 0.00883/part -> over from 6 parts (5 x 0.00883 = 0.04415, 6 x = 0.05298);
    # GB 0.0365 -> over from 2 parts (0.073); JP via `*` 0.051 -> even 1 part is over.
    est = run(
        [
            PartsClass("US", "GSM-7", 5, 100),  # not over
            PartsClass("US", "UCS-2", 6, 3),  # over
            PartsClass("GB", "GSM-7", 1, 50),  # not over
            PartsClass("GB", "UCS-2", 2, 8),  # over
            PartsClass("JP", "GSM-7", 1, 2),  # over
        ],
        max_price="0.05",
    )
    rows = by_country(est)
    assert rows["US"]["over_max_price"] == 3
    assert rows["GB"]["over_max_price"] == 8
    assert rows["JP"]["over_max_price"] == 2
    assert est.total.over_max_price == 13  # 3 + 8 + 2
    assert (rows["US"]["over_max_price_from_parts"], rows["GB"]["over_max_price_from_parts"]) == (
        6,
        2,
    )
    text = render_estimate(est)
    assert "WARNING: 13 messages cost more than MaxPrice $0.05" in text
    assert "GB 8 (2+ parts at $0.0365)" in text


def test_unpriced_countries_are_counted_never_free() -> None:
    table = table_of("country,price_per_part,carrier_fee_per_part\nUS,0.00581,0.00302\n")
    est = run(
        [
            PartsClass("US", "GSM-7", 1, 10),  # 10 x 0.00883 = 0.0883
            PartsClass("FR", "UCS-2", 2, 4),  # no FR, no `*`: unpriced
            PartsClass(None, "GSM-7", 1, 2),  # country unknown: unpriced
        ],
        table,
        max_price="0.001",  # every priced message is over; unpriced ones cannot be judged
    )
    rows = by_country(est)
    assert rows["FR"]["cost"] is None and rows["FR"]["unpriced"] is True
    assert rows["FR"]["price_per_part"] is None
    assert rows["FR"]["over_max_price"] == 0
    assert rows[None]["cost"] is None
    assert rows["US"]["cost"] == 0.0883 and rows["US"]["unpriced"] is False
    assert est.total.cost == D("0.08830")  # only the priced US recipients
    assert est.total.unpriced == 6  # 4 FR + 2 unknown
    assert est.total.unpriced_parts == 10  # 4 x 2 + 2 x 1
    assert est.total.over_max_price == 10
    assert "6 recipients in FR, ?? have no price in prices.csv: not counted" in render_estimate(est)


def test_nothing_priced_means_unknown_cost_not_zero() -> None:
    table = table_of("country,price_per_part\nUS,0.01\n")
    est = run([PartsClass("DE", "GSM-7", 1, 5)], table)
    assert est.total.cost is None
    assert est.to_json()["total"]["cost"] is None
    assert est.total.unpriced == 5


@pytest.mark.parametrize("table", [None, PriceTable.default()])
def test_no_table_at_all(table: PriceTable | None) -> None:
    est = run(
        [PartsClass("US", "GSM-7", 2, 5), PartsClass("GB", "UCS-2", 1, 3)],
        table,
        max_price="0.01",
    )
    data = est.to_json()
    assert data["prices"] is None
    assert data["total"]["cost"] is None
    assert data["total"]["unpriced"] == 8
    assert data["total"]["over_max_price"] == 0
    assert data["total"]["parts"] == 13  # 2 x 5 + 1 x 3
    assert all(c["cost"] is None and c["unpriced"] for c in data["countries"])
    text = render_estimate(est)
    assert "No price table" in text and "--prices" in text


def test_empty_campaign() -> None:
    est = run([])
    assert est.total.recipients == 0
    assert est.total.cost == D(0)
    assert est.countries == ()
    assert "Nothing to send" in render_estimate(est)


def test_encoding_spellings() -> None:
    est = run(
        [
            PartsClass("US", "ucs2", 1, 1),
            PartsClass("US", "UCS-2", 1, 2),
            PartsClass("US", "gsm7", 1, 4),
            PartsClass("US", None, 1, 8),  # unknown: counted as GSM-7 (parts already counted)
        ]
    )
    (us,) = est.countries
    assert (us.ucs2, us.gsm7) == (3, 12)


@pytest.mark.parametrize(
    ("mps", "parts", "seconds"),
    [
        (100.0, 1_000_000, 10_000.0),  # 1,000,000 / 100
        (3.0, 7, 2.333),  # 7 / 3, rounded to the millisecond
        (None, 10, None),
        (0.0, 10, None),
    ],
)
def test_duration(mps: float | None, parts: int, seconds: float | None) -> None:
    est = run([PartsClass("US", "GSM-7", 1, parts)], mps=mps, mps_source="--mps")
    assert est.duration_seconds == seconds
    assert est.to_json()["duration_seconds"] == seconds


def test_duration_rendered() -> None:
    est = run([PartsClass("US", "GSM-7", 2, 500_000)], mps=100, mps_source="--mps")
    assert "about 2h47m at 100 MPS (from --mps)" in render_estimate(est)  # 10,000 s
    assert "Duration: unknown" in render_estimate(run([PartsClass("US", "GSM-7", 1, 1)]))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59.4, "59s"),
        (60, "1m00s"),
        (3599, "59m59s"),
        (3599.6, "1h00m"),
        (10_000, "2h47m"),
        (86_399, "1d00h"),
        (90_000, "1d01h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_json_shape() -> None:
    est = run(
        [PartsClass("US", "GSM-7", 1, 3), PartsClass(None, "UCS-2", 2, 1)],
        max_price="0.05",
        mps=10,
        mps_source="default for a long code",
        ucs2=[Ucs2Character("’", "template", 1, 1)],
    )
    data = est.to_json()
    json.dumps(data)  # plain JSON types only: no Decimal
    assert {"campaign", "total", "countries", "ucs2_characters", "duration_seconds"} <= set(data)
    assert {"currency", "prices", "mps", "mps_source", "max_price"} <= set(data)
    assert {"recipients", "parts", "cost", "over_max_price", "unpriced"} <= set(data["total"])
    for row in data["countries"]:
        assert {
            "country",
            "recipients",
            "gsm7",
            "ucs2",
            "parts",
            "cost",
            "over_max_price",
            "price_per_part",
            "unpriced",
        } <= set(row)
    assert data["campaign"] == "spring"
    assert data["currency"] == "USD"
    assert (data["mps"], data["mps_source"]) == (10, "default for a long code")
    assert data["duration_seconds"] == 0.5  # (3 + 2) parts / 10
    assert [c["country"] for c in data["countries"]] == ["US", None]
    assert set(data["ucs2_characters"][0]) >= {
        "character",
        "name",
        "codepoint",
        "source",
        "rows",
        "extra_parts",
    }


def test_json_rounds_to_micro_dollars_and_keeps_the_exact_amount() -> None:
    # 3 parts x 0.0000005 = 0.0000015 -> 0.000002 (half up) in `cost`, exact in `cost_exact`
    table = table_of("country,price_per_part\nUS,0.0000005\n")
    data = run([PartsClass("US", "GSM-7", 3, 1)], table).to_json()
    assert data["total"]["cost"] == 0.000002
    assert data["total"]["cost_exact"] == "0.0000015"


def test_invalid_max_price() -> None:
    with pytest.raises(ValueError, match="MaxPrice 'abc' is not a number"):
        run([], max_price="abc")


# -- UCS-2 characters ------------------------------------------------------------------------------


def test_ucs2_section_names_codepoints_and_gsm_safe_hint() -> None:
    est = run(
        [PartsClass("US", "UCS-2", 2, 13)],
        ucs2=[
            Ucs2Character("’", "template", 10, 10),
            Ucs2Character("\u00a0", "column:first_name", 3, 3),
        ],
    )
    first, second = est.to_json()["ucs2_characters"]
    assert first == {
        "character": "’",
        "name": "RIGHT SINGLE QUOTATION MARK",
        "codepoint": "U+2019",
        "source": "template",
        "rows": 10,
        "extra_parts": 10,
        "gsm_safe": "'",
    }
    assert (second["name"], second["codepoint"], second["gsm_safe"]) == (
        "NO-BREAK SPACE",
        "U+00A0",
        " ",
    )
    hint = est.gsm_safe_hint
    assert hint is not None
    assert hint.startswith("create the campaign with --gsm-safe")
    assert """'’' with "'", U+00A0 with ' '""" in hint
    text = render_estimate(est)
    assert "RIGHT SINGLE QUOTATION MARK" in text and "U+2019" in text
    assert "column:first_name" in text
    assert "Hint: create the campaign with --gsm-safe" in text


def test_ucs2_hint_when_some_characters_have_no_lookalike() -> None:
    est = run(
        [PartsClass("US", "UCS-2", 1, 5)],
        ucs2=[Ucs2Character("–", "template", 5, 0), Ucs2Character("😀", "column:note", 2, 2)],
    )
    emoji = est.ucs2_characters[1]
    assert (emoji.name, emoji.codepoint, emoji.gsm_safe) == ("GRINNING FACE", "U+1F600", None)
    assert est.gsm_safe_hint is not None
    assert "--gsm-safe would replace '–' with '-'" in est.gsm_safe_hint
    assert "'😀' (U+1F600) has no GSM-7 look-alike" in est.gsm_safe_hint


def test_no_hint_without_lookalikes_or_characters() -> None:
    only_emoji = run([], ucs2=[Ucs2Character("😀", "template", 1, 1)])
    assert only_emoji.gsm_safe_hint is None
    assert "Hint:" not in render_estimate(only_emoji)
    nothing = run([])
    assert nothing.gsm_safe_hint is None and nothing.to_json()["ucs2_characters"] == []
    assert "force UCS-2" not in render_estimate(nothing)


def test_default_lookalikes_are_the_messages_own() -> None:
    # Without `lookalikes`, the estimate uses campaign.message.GSM_LOOKALIKES (what --gsm-safe does).
    est = estimate(
        campaign="c",
        classes=[],
        table=None,
        max_price=None,
        mps=None,
        mps_source=None,
        ucs2=[Ucs2Character("”", "template", 1, 1)],
    )
    assert est.ucs2_characters[0].gsm_safe == '"'
    assert est.gsm_safe_hint is not None and "--gsm-safe" in est.gsm_safe_hint


# -- the terminal view -----------------------------------------------------------------------------


def test_render_fits_100_columns_and_says_these_are_estimates() -> None:
    countries = ["US", "GB", "DE", "FR", "IN", "AU", "BR", "MX", "CA", "JP", "KR", "ZA", "NG"]
    est = run(
        [PartsClass(c, "UCS-2", 10, 9_999_999) for c in countries]
        + [PartsClass(None, "GSM-7", 1, 1)],
        table_of("country,price_per_part\nUS,99.123456789\nGB,0.0365\n"),
        max_price="0.05",
        mps=0.5,
        mps_source="the default for a US 10DLC number",
        ucs2=[
            Ucs2Character("\u2e3b", "column:" + "x" * 60, 9_999_999, 99_999_999),  # long name
            Ucs2Character("😀", "template", 1, 1),
        ],
    )
    text = render_estimate(est)
    assert all(len(line) <= 100 for line in text.splitlines()), text
    assert "not AWS quotes" in text
    assert "prices.csv" in text
    assert "WARNING" in text and "have no price" in text
    assert "THREE-EM DASH" in text  # U+2E3B, clipped or not


def test_render_shows_country_rows_and_totals() -> None:
    est = run([PartsClass("US", "GSM-7", 1, 1000), PartsClass("GB", "GSM-7", 2, 300)])
    lines = render_estimate(est).splitlines()
    us = next(line for line in lines if line.startswith("US "))
    total = next(line for line in lines if line.startswith("total "))
    assert us.split() == ["US", "1,000", "1,000", "0", "1,000", "0.00883", "8.8300", "-"]
    # 8.83 + 600 x 0.0365 = 8.83 + 21.9 = 30.73
    assert total.split() == ["total", "1,300", "1,300", "0", "1,600", "30.7300", "-"]
