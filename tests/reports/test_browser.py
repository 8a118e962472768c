"""A real browser opens the report offline: Debian's headless Chromium, networking off.

The page must render (a screenshot with the charts' colours in it, not one flat colour), print no
console message at all (the page has no script, so any message is a fault), and its DOM must come
through whole. Skips in one line where Chromium is absent, except under CI (CI set), where
.ci/run installs it and its absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from campaign.reports.html import write_html
from tests.helpers import Cli
from tests.reports.builders import sample_report
from tests.reports.real_campaign import Snapshot, ingest_events

pytestmark = pytest.mark.slow

SCREENSHOT_SIZE = (1280, 2000)
CHART_BLUE = (0x2F, 0x5D, 0x8A)  # charts.BLUE: the funnel's last bar and the spend bars


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip(
        "browser check skipped: chromium not installed (apt-get install chromium)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:  # only under CI: the rest of the suite still runs
        pytest.fail("chromium is not installed, and CI is set: .ci/run should install it")
    return CHROMIUM


def run_chromium(
    chromium: str, tmp_path: Path, page: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: nothing can be fetched
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        page.as_uri(),
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_the_report_renders_in_chromium(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    write_html(sample_report(), page)
    assert_renders(chromium, tmp_path, page, "spring-sale", charts=3)


def test_a_report_built_from_a_real_ledger_renders(
    chromium: str, tmp_path: Path, run: Cli, isolated_env: Path, sqlite_campaign: Snapshot
) -> None:
    # The whole path: a campaign sent through the CLI against the simulator (every state,
    # throttles, a Ctrl-C pause; built once per session, tests/reports/conftest.py), delivery
    # events ingested, the page written by the command.
    built = sqlite_campaign.restore(isolated_env)
    ingest_events(run, sqlite_campaign.accepted, built, tmp_path)
    page = tmp_path / "ledger-report.html"
    run("report", "spring", "--html", str(page), "--prices", str(built.prices))
    screenshot = assert_renders(chromium, tmp_path, page, "spring", charts=3)
    kept = os.environ.get("KEEP_REPORT_SCREENSHOT")  # to look at it: a path to copy it to
    if kept:
        shutil.copyfile(screenshot, kept)


def assert_renders(chromium: str, tmp_path: Path, page: Path, name: str, charts: int) -> Path:
    """Chromium, networking off, takes a screenshot of `page` and dumps its DOM: the screenshot has
    text and the charts' colours, no console message, every section and chart in the DOM."""
    from PIL import Image

    screenshot = tmp_path / f"{page.stem}.png"
    shot = run_chromium(
        chromium, tmp_path, page, f"--screenshot={screenshot}", "--window-size=1280,2000"
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_messages(shot.stderr) == []
    with Image.open(screenshot) as image:
        rgb = image.convert("RGB")
    assert rgb.size == SCREENSHOT_SIZE
    colours: list[tuple[int, tuple[int, int, int]]] = rgb.getcolors(maxcolors=1 << 20) or []  # type: ignore[assignment]
    assert len(colours) > 50, "the screenshot is (nearly) one flat colour"
    blue = sum(
        n for n, c in colours if all(abs(a - b) <= 6 for a, b in zip(c, CHART_BLUE, strict=True))
    )
    assert blue > 5_000, "no chart drawn"  # the SVG charts were rendered, not just the text
    ink = sum(n for n, c in colours if max(c) < 80)
    assert ink > 2_000, "no text drawn"

    dom = run_chromium(chromium, tmp_path, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'<h1 id="campaign-name">{name}</h1>' in dom.stdout
    for section in (
        "headline",
        "funnel",
        "timeline",
        "countries",
        "failures",
        "non-delivery",
        "message",
    ):
        assert f'<section id="{section}"' in dom.stdout
    assert dom.stdout.count("<svg") == charts
    assert console_messages(dom.stderr) == []
    return screenshot


def test_the_check_catches_a_page_with_a_script_error(chromium: str, tmp_path: Path) -> None:
    # The console check above must be able to fail: a page with an uncaught error trips it.
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><h1>x</h1><script>undefinedFunction()</script>")
    result = run_chromium(chromium, tmp_path, page, "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console_messages(result.stderr))
