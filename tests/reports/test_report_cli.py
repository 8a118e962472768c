"""`campaign report NAME --html FILE`: the page of a campaign built through the real CLI against the
simulator (tests/reports/real_campaign.py) holds the ledger's own figures, read back with plain SQL
and compared with the parsed page (lxml), before and after delivery events; on SQLite and
PostgreSQL. And what the command says when it cannot write where it is told."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml.html import HtmlElement

from campaign.reports.data import format_percent
from campaign.simulator.server import Simulator
from tests.helpers import Cli, write_csv
from tests.reports.page import cells, one, parse, text
from tests.reports.real_campaign import (
    PRICE_PER_PART,
    RECIPIENT_ROWS,
    TEMPLATE,
    Built,
    Snapshot,
    Truth,
    build_campaign,
    ingest_events,
    read_truth,
    recipients_csv,
    simulator_config,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(simulator_config()) as simulator:
        yield simulator


def write_report(run: Cli, built: Built, path: Path, *extra: str) -> HtmlElement:
    result = run(
        "--db", built.db_url, "report", built.name, "--html", str(path), "--prices",
        str(built.prices), *extra,
    )  # fmt: skip
    assert f"Wrote the HTML report to {path}" in result.stderr
    return parse(path.read_text("utf-8"))


def real_campaign(
    request: pytest.FixtureRequest, run: Cli, tmp_path: Path, db: Path, url: str
) -> tuple[Built, Sequence[dict[str, Any]]]:
    """The campaign of real_campaign.py in the ledger at `url`, and what the simulator accepted:
    on SQLite a copy of the session's build (the browser test uses it too), else built here."""
    if url.startswith("sqlite"):
        snapshot: Snapshot = request.getfixturevalue("sqlite_campaign")
        return snapshot.restore(db), snapshot.accepted
    sim: Simulator = request.getfixturevalue("sim")
    return build_campaign(run, sim, tmp_path, url), sim.accepted(dry_run=False)


@pytest.mark.slow
def test_the_page_of_a_real_campaign_holds_the_ledgers_figures(
    request: pytest.FixtureRequest,
    run: Cli,
    tmp_path: Path,
    isolated_env: Path,
    sqlite_or_postgres_url: str,
) -> None:
    built, accepted = real_campaign(request, run, tmp_path, isolated_env, sqlite_or_postgres_url)
    truth = read_truth(built)
    # The campaign has what the report must show: every state, throttles, three runs.
    for state in ("sent", "failed", "opted_out", "unknown", "invalid", "duplicate"):
        assert truth.states.get(state, 0) > 0, (state, truth.states)
    assert truth.throttles_by_run.get(truth.runs[0][0], 0) > 0
    assert [code for _, _, code in truth.runs][:2] == [3, 0]

    before = write_report(run, built, tmp_path / "before.html")
    check_ledger_figures(before, truth)
    check_without_events(before)

    ingest_events(run, accepted, built, tmp_path)
    truth = read_truth(built)
    assert truth.delivery.get("delivered", 0) > 0 and truth.delivery.get("undelivered", 0) > 0
    assert truth.delivery.get("awaiting", 0) > 0  # events for some of the sent messages only
    charts = tmp_path / "charts"
    after = write_report(run, built, tmp_path / "after.html", "--png", str(charts))
    check_ledger_figures(after, truth)
    check_with_events(after, truth)
    written = sorted(p.name for p in charts.iterdir())
    assert written == ["countries.png", "funnel.png", "send-over-time.png"]
    for png in charts.iterdir():
        assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 5_000


def value(element: HtmlElement) -> str:
    found = element.get("data-value")
    assert found is not None, text(element)
    return found


FOLDED_BLOCKED = (
    "ValidationException: DESTINATION_COUNTRY_BLOCKED (DestinationPhoneNumber: "
    "DESTINATION_COUNTRY_BLOCKED for [number]) - DESTINATION_COUNTRY_BLOCKED for [number]"
)


def shown_reason(reason: str | None) -> str:
    """A reason as the page shows it: the phone numbers it quotes left out, so that one reason
    is one row whatever number the API's message named."""
    return re.sub(r"\+\d+", "[number]", reason) if reason else "(no reason recorded)"


def check_ledger_figures(doc: HtmlElement, truth: Truth) -> None:
    states = truth.states
    imported = sum(states.values())
    valid = imported - states.get("invalid", 0) - states.get("duplicate", 0)
    assert value(one(doc, "#card-recipients .figure")) == str(valid)
    assert value(one(doc, "#card-sent .figure")) == str(states["sent"])
    assert float(value(one(doc, "#card-rate .figure"))) == truth.runs[-1][1]
    _check_funnel(doc, truth, imported, valid)
    _check_runs(doc, truth)
    _check_countries(doc, truth)
    _check_failures(doc, truth)
    _check_message(doc, truth)


def _check_funnel(doc: HtmlElement, truth: Truth, imported: int, valid: int) -> None:
    rows = {r.get("data-step"): r for r in doc.xpath("//section[@id='funnel']//tbody/tr")}
    counts = {step: value(row.xpath("./td")[1]) for step, row in rows.items()}
    assert counts["Imported rows"] == str(imported)
    assert counts["Valid"] == str(valid)
    assert counts["Sent"] == str(truth.states["sent"])
    fell_out = {
        chip.get("data-state"): int(chip.xpath("./b")[0].text.replace(",", ""))
        for chip in rows["Sent"].xpath(".//span[@data-state]")
    }
    skipped = ("sent", "invalid", "duplicate")
    assert fell_out == {s: n for s, n in truth.states.items() if s not in skipped and n}


def _check_runs(doc: HtmlElement, truth: Truth) -> None:
    rows = {
        r.get("data-run"): r.xpath("./td") for r in doc.xpath("//table[@class='runs']/tbody/tr")
    }
    assert list(rows) == [str(run_id) for run_id, _, _ in truth.runs]
    for run_id, mps, _code in truth.runs:
        tds = rows[str(run_id)]
        # run, started, ended, sending time, MPS, parts, throttles, how it ended
        assert float(value(tds[4])) == mps
        assert value(tds[5]) == str(truth.parts_by_run.get(run_id, 0))
        assert value(tds[6]) == str(truth.throttles_by_run.get(run_id, 0))
    assert text(rows[str(truth.runs[0][0])][7]) == "interrupted"
    causes = [li.get("data-cause") for li in doc.xpath("//ul[contains(@class, 'pauses')]/li")]
    assert causes == ["CTRL_C", "BETWEEN_RUNS"]  # after run 1 (Ctrl-C), run 2 (--limit)
    svg = one(doc, "figure#chart-send-over-time").xpath("./*[local-name()='svg']")[0]
    labels = " ".join(" ".join(t.itertext()) for t in svg.xpath(".//*[local-name()='text']"))
    assert "Ctrl-C" in labels


def _check_countries(doc: HtmlElement, truth: Truth) -> None:
    rows = {
        r.get("data-country"): r.xpath("./td")
        for r in doc.xpath("//table[@class='countries']/tbody/tr")
    }
    total = rows.pop("Total")
    assert set(rows) == set(truth.countries) == {"US", "FR", "DE", "GB", "JP"}
    estimated_total = Decimal(0)
    for code, figures in truth.countries.items():
        # country, recipients, parts, GSM-7/UCS-2, sent, estimated, charged, delivered
        tds = rows[code]
        assert value(tds[1]) == str(figures["recipients"])
        assert value(tds[2]) == str(figures["parts"])
        share = figures["ucs2"] / figures["recipients"]
        assert text(tds[3]).endswith(f"{format_percent(1 - share)} / {format_percent(share)}")
        assert value(tds[4]) == str(figures["sent"])
        price = PRICE_PER_PART.get(code)
        if price is None:  # JP: no price in the table, never counted as free
            assert value(tds[5]) == "" and text(tds[5]) == "—"
        else:
            assert Decimal(value(tds[5])) == price * figures["sent_parts"]
            estimated_total += price * figures["sent_parts"]
    assert value(total[1]) == str(sum(c["recipients"] for c in truth.countries.values()))
    assert Decimal(value(one(doc, "#card-spend .figure"))) == estimated_total
    notes = text(one(doc, "section#notes"))
    assert "(JP)" in notes and "no price in prices.csv" in notes


def _check_failures(doc: HtmlElement, truth: Truth) -> None:
    rows = doc.xpath("//section[@id='failures']//tbody/tr")
    shown = {(r.get("data-state"), text(r.xpath("./td")[0])): r for r in rows}
    expected: Counter[tuple[str, str]] = Counter()
    for (state, why), n in truth.failures.items():
        expected[(state, shown_reason(why))] += n
    assert ("failed", FOLDED_BLOCKED) in expected  # the API's message named the number
    assert {key: int(value(r.xpath("./td")[2])) for key, r in shown.items()} == expected
    counts = [int(value(r.xpath("./td")[2])) for r in rows]
    assert counts == sorted(counts, reverse=True)  # most frequent first
    for (state, reason), row in shown.items():
        examples = row.xpath(".//span[@data-row]")
        assert examples, (state, reason)
        for example in examples:
            verdict = truth.row_verdicts[int(example.get("data-row"))]
            assert (verdict[0], shown_reason(verdict[1])) == (state, reason)
            assert " of customers.csv: " in text(example)
    page = text(doc)
    for _name, phone in RECIPIENT_ROWS:
        if len(phone) > 8:
            assert phone not in page  # example numbers are masked


def _check_message(doc: HtmlElement, truth: Truth) -> None:
    assert one(doc, "pre#template").text_content() == TEMPLATE
    sizes = {
        (int(r.get("data-parts")), r.get("data-encoding")): int(value(r.xpath("./td")[2]))
        for r in doc.xpath("//table[@class='parts']/tbody/tr")
    }
    assert sizes == truth.sizes
    assert set(sizes) == {(1, "GSM-7"), (2, "UCS-2")}  # a UCS-2 name doubles the parts
    characters = {
        r.get("data-character"): int(value(r.xpath("./td")[2]))
        for r in doc.xpath("//table[@class='ucs2']/tbody/tr")
    }
    assert characters == truth.ucs2 and {"ë", "á", "ū"} <= set(characters)


def check_without_events(doc: HtmlElement) -> None:
    assert one(doc, "section#non-delivery").get("data-status") == "unavailable"
    assert value(one(doc, "#card-delivered .figure")) == ""
    assert text(one(doc, "#spend-charged")) == "not known yet"
    delivered = one(doc, "section#funnel tr[data-step=Delivered]")
    assert cells(delivered)[3].startswith("Not available yet: No delivery events")
    for row in doc.xpath("//table[@class='countries']/tbody/tr"):
        assert [value(td) for td in row.xpath("./td")[6:8]] == ["", ""]  # charged, delivered


def check_with_events(doc: HtmlElement, truth: Truth) -> None:
    delivery, sent = truth.delivery, truth.states["sent"]
    assert float(value(one(doc, "#card-delivered .figure"))) == pytest.approx(
        delivery["delivered"] / sent
    )
    assert float(value(one(doc, "#spend-charged"))) == pytest.approx(truth.charged, abs=1e-6)
    row = one(doc, "section#funnel tr[data-step=Delivered]")
    assert value(row.xpath("./td")[1]) == str(delivery["delivered"])
    fell_out = {
        chip.get("data-state"): int(chip.xpath("./b")[0].text.replace(",", ""))
        for chip in row.xpath(".//span[@data-state]")
    }
    assert fell_out == {k: v for k, v in delivery.items() if k != "delivered"}
    reasons = doc.xpath("//section[@id='non-delivery']//tbody/tr")
    shown = {text(r.xpath("./td")[0]): int(value(r.xpath("./td")[2])) for r in reasons}
    assert shown == truth.non_delivery
    for r in reasons:
        for example in r.xpath(".//span[@data-row]"):
            verdict = truth.row_verdicts[int(example.get("data-row"))]
            assert verdict[2] == text(r.xpath("./td")[0])
    countries = {
        r.get("data-country"): r.xpath("./td")
        for r in doc.xpath("//table[@class='countries']/tbody/tr")
    }
    for code, figures in truth.countries.items():
        charged, delivered = countries[code][6:8]
        if figures["charged"] is None:
            assert value(charged) == ""
        else:
            assert float(value(charged)) == pytest.approx(figures["charged"], abs=1e-6)
        if figures["reached"]:
            assert float(value(delivered)) == pytest.approx(figures["delivered"] / figures["sent"])
        else:  # no event for this country yet: unknown, not 0%
            assert value(delivered) == ""
    assert any(not c["reached"] for c in truth.countries.values())


# -- what the command says ------------------------------------------------------------------------


@pytest.fixture
def imported(run: Cli, tmp_path: Path) -> str:
    run("create", "c1", "-o", "+12065550100", "-m", "Hi {first_name}, sale. Reply STOP")
    run("import", "c1", str(recipients_csv(tmp_path / "c1.csv")), "--default-region", "US")
    return "c1"


def test_a_campaign_not_sent_yet_says_so(run: Cli, imported: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = run("report", imported, "--html", str(page))
    assert result.stdout == ""
    assert result.stderr.startswith(f"Wrote the HTML report to {page} (")
    doc = parse(page.read_text("utf-8"))
    for section in ("timeline", "non-delivery"):
        assert one(doc, f"section#{section}").get("data-status") == "unavailable"
    assert "no send run is recorded" in text(one(doc, "section#timeline"))
    assert value(one(doc, "#card-spend .figure")) == ""  # no price table given
    assert value(one(doc, "#card-recipients .figure")) == "60"
    assert run("-q", "report", imported, "--html", str(page)).stderr == ""  # -q: silent


@pytest.mark.parametrize(
    ("make_target", "message"),
    [
        (lambda d: d, "it is a directory"),
        (lambda d: write_csv(d / "file.txt", "x") / "report.html", "Not a directory"),
        (lambda d: d / "missing" / "report.html", "No such file or directory"),
    ],
    ids=["directory", "under-a-file", "missing-folder"],
)
def test_a_path_it_cannot_write_is_one_line(
    run: Cli, imported: str, tmp_path: Path, make_target: object, message: str
) -> None:
    target = make_target(tmp_path)  # type: ignore[operator]
    result = run("report", imported, "--html", str(target), code=1)
    assert result.stderr == f"Error: cannot write {target}: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_png_errors_and_options_that_need_html(run: Cli, imported: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    blocker = write_csv(tmp_path / "charts", "not a folder")
    result = run("report", imported, "--html", str(page), "--png", str(blocker), code=1)
    assert result.stderr.endswith(
        f"Error: cannot write charts to {blocker}: it is not a directory\n"
    )
    result = run("report", imported, "--png", str(tmp_path / "c"), code=2)
    assert "--png and --prices go with --html FILE" in result.stderr
    result = run("report", "nope", "--html", str(page), code=1)
    assert result.stderr.startswith("Error: ") and "nope" in result.stderr
    # Nothing to chart yet but the funnel and the countries: the PNGs written say which.
    charts = tmp_path / "pngs"
    result = run("report", imported, "--html", str(page), "--png", str(charts))
    assert f"Wrote 2 charts to {charts}: funnel.png, countries.png" in result.stderr


def test_a_bad_png_folder_is_refused_before_the_page_is_written(
    run: Cli, imported: str, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    blocker = write_csv(tmp_path / "charts", "not a folder")
    result = run("report", imported, "--html", str(page), "--png", str(blocker), code=1)
    assert result.stderr == f"Error: cannot write charts to {blocker}: it is not a directory\n"
    assert not page.exists()
    under = blocker / "charts"  # a folder that cannot be made: under a file
    result = run("report", imported, "--html", str(page), "--png", str(under), code=1)
    assert result.stderr == f"Error: cannot write charts to {under}: Not a directory\n"
    assert not page.exists()


def test_html_to_stdout(run: Cli, imported: str, tmp_path: Path, isolated_env: Path) -> None:
    result = run("report", imported, "--html", "-")
    assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.rstrip().endswith(
        "</html>"
    )
    assert result.stderr == ""
    assert not (tmp_path / "-").exists()  # not a file named "-"


@pytest.mark.parametrize(
    "csv_option",
    [("-o", "out.csv"), ("--include", "email"), ("--excel",)],
    ids=["output", "include", "excel"],
)
def test_csv_options_with_html_are_a_usage_error(
    run: Cli, imported: str, tmp_path: Path, csv_option: tuple[str, ...]
) -> None:
    page = tmp_path / "report.html"
    result = run("report", imported, "--html", str(page), *csv_option, code=2)
    assert "--output, --include and --excel are for the CSV, not --html" in result.stderr
    assert not page.exists() and not (tmp_path / "out.csv").exists()
