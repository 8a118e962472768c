"""`campaign estimate` through the CLI: hand-computed totals from real imports."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import Cli, write_csv

# Each test runs on SQLite and on PostgreSQL (see conftest).
pytestmark = pytest.mark.usefixtures("sqlite_or_postgres_url")
PRICES = "country,price_per_part,carrier_fee_per_part\nUS,0.01,0.002\nGB,0.04,\n"


def setup(run: Cli, tmp_path: Path, message: str, rows: list[str], *extra: str) -> Path:
    run("create", "c1", "-o", "+12065550100", "-m", message, *extra)
    run("import", "c1", str(write_csv(tmp_path / "r.csv", "\n".join(["name,phone", *rows]) + "\n")))
    return write_csv(tmp_path / "prices.csv", PRICES)


def test_estimate_json_matches_hand_computed_totals(run: Cli, tmp_path: Path) -> None:
    prices = setup(
        run,
        tmp_path,
        "Hi {name}! " + "x" * 150,  # 'Hi Ann! ' + 150 = 158 septets: 1 part; Zoë forces UCS-2
        [
            "Ann,+12065550100",  # US GSM-7 1 part
            "Bob,+12065550101",  # US GSM-7: 'Hi Bob! ' 158 -> 1 part
            "Zoë,+12065550102",  # US UCS-2: 158 units -> ceil(158/67) = 3 parts
            "Amy,+447860019066",  # GB GSM-7 1 part
            "Eve,+61455944038",  # AU: not in the table -> unpriced
        ],
        "--max-price",
        "0.03",
    )
    data = run.json("estimate", "c1", "--prices", str(prices), "--mps", "2", "--json")
    countries = {c["country"]: c for c in data["countries"]}
    assert countries["US"]["recipients"] == 3
    assert countries["US"]["gsm7"] == 2 and countries["US"]["ucs2"] == 1
    assert countries["US"]["parts"] == 1 + 1 + 3
    # US: 5 parts x (0.01 + 0.002) = 0.06; the 3-part message costs 0.036 > MaxPrice 0.03
    assert Decimal(str(countries["US"]["cost"])) == Decimal("0.06")
    assert countries["US"]["over_max_price"] == 1
    # GB: 1 part x 0.04 = 0.04 > 0.03
    assert Decimal(str(countries["GB"]["cost"])) == Decimal("0.04")
    assert countries["GB"]["over_max_price"] == 1
    assert countries["AU"]["cost"] is None
    total = data["total"]
    assert total["recipients"] == 5 and total["parts"] == 7
    assert Decimal(str(total["cost"])) == Decimal("0.10")
    assert total["unpriced"] == 1 and total["over_max_price"] == 2
    assert data["duration_seconds"] == pytest.approx(7 / 2)
    chars = {c["character"]: c for c in data["ucs2_characters"]}
    assert chars["ë"]["source"] == "column:name"
    assert chars["ë"]["extra_parts"] == 2  # 3 parts as UCS-2 instead of 1 as GSM-7


def test_estimate_text_warns_about_unpriced_and_no_table(run: Cli, tmp_path: Path) -> None:
    prices = setup(run, tmp_path, "Hi {name}", ["Eve,+61455944038", "Ann,+12065550100"])
    text = run("estimate", "c1", "--prices", str(prices)).stdout
    assert "AU" in text and "no price" in text
    bare = run("estimate", "c1").stdout
    assert "No price table" in bare


def test_curly_quote_in_the_template_is_reported_and_gsm_safe_removes_it(
    run: Cli, tmp_path: Path
) -> None:
    message = "It’s on: 20% off today"
    setup(run, tmp_path, message, ["Ann,+12065550100"])
    data = run.json("estimate", "c1", "--json")
    assert [c["character"] for c in data["ucs2_characters"]] == ["’"]
    assert data["ucs2_characters"][0]["source"] == "template"
    assert data["countries"][0]["ucs2"] == 1
    run("create", "c2", "-o", "+12065550100", "-m", message, "--gsm-safe")
    run("import", "c2", str(tmp_path / "r.csv"))
    safe = run.json("estimate", "c2", "--json")
    assert safe["ucs2_characters"] == [] and safe["countries"][0]["gsm7"] == 1


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        # a price that is not a number, on data row 2
        ("country,price_per_part\nUS,0.01\nGB,abc\n", "row 2"),
        # the required column is missing
        ("country,cost\nUS,0.01\n", "price_per_part"),
    ],
)
def test_bad_price_table_is_one_line_exit_1(
    run: Cli, tmp_path: Path, table: str, fragment: str
) -> None:
    setup(run, tmp_path, "Hi", ["Ann,+12065550100"])
    bad = write_csv(tmp_path / "bad.csv", table)
    result = run("estimate", "c1", "--prices", str(bad), code=1)
    assert result.stderr.startswith("Error: ") and fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_campaign_is_exit_1(run: Cli) -> None:
    result = run("estimate", "nope", code=1)
    assert "no campaign named 'nope'" in result.stderr


def test_status_with_prices_shows_spend_to_come(run: Cli, tmp_path: Path) -> None:
    prices = setup(run, tmp_path, "Hi {name}", ["Ann,+12065550100", "Amy,+447860019066"])
    info = run.json("status", "c1", "--json", "--prices", str(prices))
    # Nothing sent yet; to send: US 1 part x 0.012 + GB 1 part x 0.04
    assert info["spend"]["sent"] == 0
    assert Decimal(str(info["spend"]["to_send"])) == Decimal("0.052")
    assert "Estimated spend" in run("status", "c1", "--prices", str(prices)).stdout


def test_edit_gsm_safe_recounts_pending_recipients(run: Cli, tmp_path: Path) -> None:
    # ’ and – force UCS-2: 'It’s on – {name}' + 60 x = 75 units -> 2 UCS-2 parts, 1 as GSM-7
    setup(run, tmp_path, "It’s on – {name} " + "x" * 60, ["Ann,+12065550100", "Bob,+12065550101"])
    before = run.json("estimate", "c1", "--json")
    assert before["total"]["parts"] == 4 and before["ucs2_characters"]
    result = run("edit", "c1", "--gsm-safe")
    assert "Recounted 2 pending recipients: 4 -> 2 parts" in result.stderr
    after = run.json("estimate", "c1", "--json")
    assert after["total"]["parts"] == 2 and after["ucs2_characters"] == []
    assert after["countries"][0]["gsm7"] == 2


def test_edit_message_must_use_kept_columns(run: Cli, tmp_path: Path) -> None:
    setup(run, tmp_path, "Hi {name}", ["Ann,+12065550100"])
    result = run("edit", "c1", "-m", "Hi {city}", code=1)
    assert "{city}" in result.stderr and "create a new campaign" in result.stderr
    # A new message with the kept column: counted again, stored.
    run("edit", "c1", "-m", "Hello {name}, " + "y" * 160)
    assert run.json("estimate", "c1", "--json")["total"]["parts"] == 2


def test_edit_plain_option_and_bad_value(run: Cli, tmp_path: Path) -> None:
    setup(run, tmp_path, "Hi {name}", ["Ann,+12065550100"])
    run("edit", "c1", "--max-price", "0.02")
    assert run.json("status", "c1", "--json")["max_price"] == "0.02"
    result = run("edit", "c1", "--ttl", "3", code=1)
    assert "--ttl 3 is out of range" in result.stderr
    run("edit", "c1", code=2)
