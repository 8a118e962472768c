"""`campaign send` with sending windows, the do-not-send list, the deadline and the frequency cap,
end to end: the real CLI, real boto3, the local simulator over HTTP.

Windows are chosen from the real current time (two hours of New York's clock around now: open in
New York, closed in Los Angeles), so the tests pass at any hour; the one that waits for a window
to open moves the sender's wall clock instead (campaign.sending.admission.now)."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from campaign.simulator.server import Simulator
from tests.helpers import Cli, write_csv

pytestmark = pytest.mark.slow
ORIGIN = "+12065550100"
NY = zoneinfo.ZoneInfo("America/New_York")
NEW_YORK = ["+12125550101", "+12125550102", "+12125550103"]
LOS_ANGELES = ["+13105550104", "+13105550105", "+13105550106"]


def window_around_new_york_now(now: datetime) -> str:
    """Two hours of New York's clock centred on now: open in New York, closed in Los Angeles
    (3 h behind), where it opens in about two hours."""
    local = now.astimezone(NY)
    start = (local.hour * 60 + local.minute - 60) % 1440
    end = (start + 120) % 1440
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def import_numbers(run: Cli, tmp_path: Path, numbers: list[str], name: str = "c") -> None:
    path = write_csv(tmp_path / f"{name}.csv", "phone\n" + "\n".join(numbers) + "\n")
    run("import", name, str(path))


def send(run: Cli, sim: Simulator, *args: str, code: int = 0, name: str = "c") -> Any:
    return run("--endpoint-url", sim.url, "send", name, "--yes", "--mps", "50", *args, code=code)


def sent_to(sim: Simulator) -> list[str]:
    return [r["destination"] for r in sim.accepted(dry_run=False)]


def counts(run: Cli, name: str = "c") -> dict[str, int]:
    return dict(run.json("status", name, "--json")["counts"])


def report_rows(run: Cli, name: str = "c") -> dict[str, dict[str, str]]:
    import csv
    import io

    rows = csv.DictReader(io.StringIO(run("report", name).stdout))
    return {row["phone"]: row for row in rows}


def test_only_the_open_group_is_sent_and_no_wait_exits_5(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    now = datetime.now(UTC)
    run(
        "create", "c", "-o", ORIGIN, "-m", "Sale today", "--window", window_around_new_york_now(now)
    )
    import_numbers(run, tmp_path, NEW_YORK + LOS_ANGELES)

    result = send(run, simulator, "--no-wait", code=5)

    assert sorted(sent_to(simulator)) == NEW_YORK  # Los Angeles is outside its window
    assert counts(run)["sent"] == 3 and counts(run)["pending"] == 3
    # The confirmation said it up front, and the ending says when to come back.
    assert "It holds back 3 of 6 pending now: 3 wait for their window" in result.stderr
    assert not result.stderr.rstrip().splitlines()[-1].startswith("Error")
    stopped = re.search(
        r"Stopped: 3 recipients wait for their sending window \(the next opens "
        r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC for 3\)\. Run `campaign --endpoint-url \S+ send c "
        r"--mps 50 --yes` again at "
        r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC or later\.",
        result.stderr,
    )
    assert stopped, result.stderr
    opens = datetime.strptime(stopped[1], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert timedelta(hours=1, minutes=55) < opens - now < timedelta(hours=2, minutes=5)
    assert stopped[2] == stopped[1]

    # Run again inside the same hour: still nobody in Los Angeles, still exit 5.
    send(run, simulator, "--no-wait", code=5)
    assert len(sent_to(simulator)) == 3


def test_transactional_has_no_window(run: Cli, tmp_path: Path, simulator: Simulator) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Code 1234", "--message-type", "TRANSACTIONAL")
    import_numbers(run, tmp_path, NEW_YORK + LOS_ANGELES)
    result = send(run, simulator, "--no-wait")
    assert sorted(sent_to(simulator)) == sorted(NEW_YORK + LOS_ANGELES)
    assert "Sending window: none, every recipient may be messaged at any hour." in result.stderr


@pytest.fixture
def fast_wall_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[datetime]:
    """The sender's wall clock reads 2026-07-01 15:00 UTC (11:00 in New York, 08:00 in Los
    Angeles) when first asked, then runs 15 minutes for each real second; a waiting sender looks
    again every 20 ms."""
    import time

    import campaign.sending.admission as admission

    start = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
    first: list[float] = []

    def fast() -> datetime:
        if not first:
            first.append(time.monotonic())
        return start + timedelta(minutes=15 * (time.monotonic() - first[0]))

    monkeypatch.setattr(admission, "now", fast)
    monkeypatch.setattr(admission, "WAIT_RECHECK_SECONDS", 0.02)
    yield start


def test_waits_for_the_next_window_and_goes_on(
    run: Cli, tmp_path: Path, simulator: Simulator, fast_wall_clock: datetime
) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Sale today", "--window", "09:00-17:00")
    import_numbers(run, tmp_path, LOS_ANGELES + NEW_YORK)

    result = send(run, simulator)

    # New York first (its window is open), Los Angeles once its window opens at 16:00 UTC.
    order = sent_to(simulator)
    assert sorted(order[:3]) == NEW_YORK and sorted(order[3:]) == LOS_ANGELES
    assert counts(run)["sent"] == 6
    assert (
        "Waiting: 3 recipients wait for their sending window (the next opens 2026-07-01 16:00 "
        "UTC for 3). Sending resumes by itself at 2026-07-01 16:00 UTC" in result.stderr
    )


def test_do_not_send_list_at_claim_time(run: Cli, tmp_path: Path, simulator: Simulator) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Sale today", "--no-window")
    import_numbers(run, tmp_path, NEW_YORK + LOS_ANGELES)
    # Listed after the import: found when the sender claims them.
    run("suppress", "add", NEW_YORK[1], LOS_ANGELES[0], "--reason", "complained")

    result = send(run, simulator)

    assert sorted(sent_to(simulator)) == sorted(
        set(NEW_YORK + LOS_ANGELES) - {NEW_YORK[1], LOS_ANGELES[0]}
    )
    assert counts(run)["suppressed"] == 2 and counts(run)["sent"] == 4
    rows = report_rows(run)
    assert rows[NEW_YORK[1]]["state"] == "suppressed"
    assert "complained" in rows[NEW_YORK[1]]["reason"]
    assert "Suppressed 2: on the do-not-send list" in result.stderr


def test_deadline_passed_expires_everyone_and_sends_nothing(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    passed = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    run("create", "c", "-o", ORIGIN, "-m", "Sale ends", "--no-window", "--deadline", passed)
    import_numbers(run, tmp_path, NEW_YORK + LOS_ANGELES)

    result = send(run, simulator)

    assert sent_to(simulator) == []
    assert counts(run)["expired"] == 6 and counts(run)["pending"] == 0
    assert "has passed: 6 pending recipients expired, nothing is sent." in result.stderr
    assert "the deadline" in report_rows(run)[NEW_YORK[0]]["reason"]


def test_deadline_caps_each_messages_time_to_live(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    deadline = datetime.now(UTC) + timedelta(hours=1)
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--no-window", "--deadline", deadline.isoformat())
    run("create", "long", "-o", ORIGIN, "-m", "Hi", "--no-window", "--ttl", "60",
        "--deadline", deadline.isoformat())  # fmt: skip
    import_numbers(run, tmp_path, NEW_YORK)
    import_numbers(run, tmp_path, LOS_ANGELES, name="long")

    result = send(run, simulator)
    send(run, simulator, name="long")

    ttl = {r["destination"]: r["ttl"] for r in simulator.accepted(dry_run=False)}
    assert all(3500 < ttl[n] <= 3600 for n in NEW_YORK), ttl  # the hour left, not 72 h
    assert all(ttl[n] == 60 for n in LOS_ANGELES)  # shorter than the time left: kept
    assert "deadline " in result.stderr and "everyone can be sent before it" in result.stderr


def test_frequency_cap_across_two_campaigns(run: Cli, tmp_path: Path, simulator: Simulator) -> None:
    run("create", "first", "-o", ORIGIN, "-m", "Hi", "--no-window")
    import_numbers(run, tmp_path, NEW_YORK[:2], name="first")
    send(run, simulator, name="first")
    run("create", "c", "-o", ORIGIN, "-m", "Hi again", "--no-window",
        "--max-per-recipient", "1", "--per", "24")  # fmt: skip
    import_numbers(run, tmp_path, NEW_YORK)

    result = send(run, simulator, "--no-wait", code=5)

    # The two messaged by the first campaign wait; the third is sent.
    assert sorted(sent_to(simulator)) == NEW_YORK  # once each: 101 and 102 by `first`
    assert counts(run)["pending"] == 2 and counts(run)["sent"] == 1
    assert "2 recipients inside their window are held by the frequency cap" in result.stderr
    assert "frequency cap: at most 1 message per 24 h to one number" in result.stderr


def test_ctrl_c_while_waiting_exits_3_and_resumes_later(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    import signal
    import time

    from tests.helpers import campaign_process

    now = datetime.now(UTC)
    run(
        "create", "c", "-o", ORIGIN, "-m", "Sale today", "--window", window_around_new_york_now(now)
    )
    import_numbers(run, tmp_path, NEW_YORK + LOS_ANGELES)
    proc = campaign_process("--endpoint-url", simulator.url, "send", "c", "--yes", "--mps", "50")
    deadline = time.monotonic() + 60
    while len(sent_to(simulator)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # now waiting for Los Angeles
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert "Waiting: 3 recipients wait for their sending window" in err
    assert re.search(r"run `campaign (--\S+ \S+ )*send c( --\S+( \S+)?)*` again to resume", err), (
        err
    )
    assert counts(run)["pending"] == 3 and counts(run)["sending"] == 0
