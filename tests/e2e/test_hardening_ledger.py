"""Issue 13, item 7: a ledger that cannot be written (read-only, full disk, damaged file) ends the
real command with one `Error:` line naming the file and what is wrong - never "internal error"
with the SQL and its parameters - exit 1, and the ledger as it was.

The tests run as root here, and root ignores file permissions, so "read-only" is made three ways
that bind root too: SQLite's own `mode=ro` URL, a read-only mount, and (for other users) chmod.
"Disk full" is a small tmpfs (ENOSPC) where mounting is allowed, and everywhere a file size limit
(RLIMIT_FSIZE, with SIGXFSZ ignored so the write fails with EFBIG instead of killing the process).
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from campaign.simulator.server import Simulator, SimulatorConfig
from tests.helpers import Cli, campaign_process, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("start_from_migrated_ledger")]

ORIGIN = "+12065550100"


def recipients_csv(path: Path, n: int, start: int = 0) -> Path:
    lines = ["first_name,phone"] + [
        f"Sam{i},+1{206 + i // 10_000}555{i % 10_000:04d}" for i in range(start, start + n)
    ]
    return write_csv(path, "\n".join(lines) + "\n")


@pytest.fixture
def ledger(run: Cli, tmp_path: Path, isolated_env: Path) -> Path:
    """A ledger with campaign c1 and 20 recipients, checkpointed: everything in the main file."""
    run("create", "c1", "-o", ORIGIN, "-m", "Hi {first_name}", "--no-window")  # any hour
    run("import", "c1", str(recipients_csv(tmp_path / "first.csv", 20)))
    checkpoint(isolated_env)
    return isolated_env


def checkpoint(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def campaign_cmd(
    db_url: str, *args: str, preexec_fn: Callable[[], None] | None = None
) -> tuple[int, str]:
    proc = campaign_process(*args, env={"CAMPAIGN_DB": db_url}, preexec_fn=preexec_fn)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def assert_one_error_line(code: int, err: str, *expected: str) -> str:
    """Exit 1, one `Error:` line holding each of `expected`, no SQL, no parameters, no traceback."""
    assert code == 1, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    for word in ("internal error", "[SQL", "[parameters", "INSERT", "UPDATE", "Traceback"):
        assert word not in err, err
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def ledger_state(db: Path) -> tuple[str, list[tuple[str, int]]]:
    """The ledger's integrity check and its recipients by state."""
    with sqlite3.connect(db) as conn:
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        counts = conn.execute(
            "SELECT state, count(*) FROM recipients GROUP BY state ORDER BY state"
        ).fetchall()
    return integrity, counts


# -- read-only ---------------------------------------------------------------------------------------


def test_a_ledger_opened_read_only_by_its_url(ledger: Path, tmp_path: Path) -> None:
    before = digest(ledger)
    url = f"sqlite:///file:{ledger}?mode=ro&uri=true"
    code, err = campaign_cmd(url, "edit", "c1", "--ttl", "600")
    line = assert_one_error_line(
        code, err, f"cannot write the ledger {ledger}: it is read-only", "nothing was lost"
    )
    assert "the --db URL opens it read-only" in line
    code, err = campaign_cmd(url, "import", "c1", str(recipients_csv(tmp_path / "more.csv", 5, 20)))
    assert_one_error_line(code, err, f"cannot write the ledger {ledger}: it is read-only")
    assert digest(ledger) == before
    # Reading still works: status opens it without writing.
    code, err = campaign_cmd(url, "status", "c1")
    assert code == 0, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes files whatever their mode")
def test_a_ledger_file_without_write_permission(ledger: Path) -> None:
    before = digest(ledger)
    ledger.chmod(0o444)
    try:
        code, err = campaign_cmd(f"sqlite:///{ledger}", "edit", "c1", "--ttl", "600")
    finally:
        ledger.chmod(0o644)
    assert_one_error_line(code, err, f"the ledger {ledger}")
    assert digest(ledger) == before


@pytest.fixture
def mounted_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (skipped where this process may not mount)."""
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_ledger_on_a_read_only_file_system(ledger: Path, mounted_tmpfs: Path) -> None:
    copy = mounted_tmpfs / "ledger.db"
    shutil.copyfile(ledger, copy)
    subprocess.run(["mount", "-o", "remount,ro", str(mounted_tmpfs)], check=True)
    before = digest(copy)
    for args in (("status", "c1"), ("edit", "c1", "--ttl", "600")):
        code, err = campaign_cmd(f"sqlite:///{copy}", *args)
        # SQLite cannot even read a WAL ledger there: it needs its -shm file beside it.
        assert_one_error_line(code, err, f"the ledger {copy}", "read-only file system")
    assert digest(copy) == before


# -- damaged ---------------------------------------------------------------------------------------


def test_a_file_of_random_bytes(tmp_path: Path) -> None:
    damaged = tmp_path / "random.db"
    damaged.write_bytes(os.urandom(64 * 1024))
    before = digest(damaged)
    for args in (("status", "c1"), ("edit", "c1", "--ttl", "600"), ("list",)):
        code, err = campaign_cmd(f"sqlite:///{damaged}", *args)
        assert_one_error_line(
            code, err, f"the ledger {damaged} is damaged or is not a campaign ledger"
        )
    assert digest(damaged) == before


def test_a_ledger_cut_short(ledger: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.db"
    cut.write_bytes(ledger.read_bytes()[: ledger.stat().st_size // 2])
    before = digest(cut)
    for args in (("status", "c1"), ("edit", "c1", "--ttl", "600")):
        code, err = campaign_cmd(f"sqlite:///{cut}", *args)
        assert_one_error_line(code, err, f"the ledger {cut} is damaged", "malformed")
    assert digest(cut) == before


# -- disk full ---------------------------------------------------------------------------------------


def test_a_full_disk(ledger: Path, mounted_tmpfs: Path, tmp_path: Path) -> None:
    copy = mounted_tmpfs / "ledger.db"
    shutil.copyfile(ledger, copy)
    before = ledger_state(copy)
    big = recipients_csv(tmp_path / "big.csv", 20_000, 20)  # several MB in the ledger: > 1 MiB
    code, err = campaign_cmd(f"sqlite:///{copy}", "import", "c1", str(big))
    assert_one_error_line(
        code, err, f"cannot write the ledger {copy}: the disk is full", "nothing was lost"
    )
    assert ledger_state(copy) == before  # the import was one transaction: rolled back whole


def file_size_limit(max_bytes: int) -> Callable[[], None]:
    """For preexec_fn: files this process writes stop growing at `max_bytes` (EFBIG, no signal)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return limit


def test_a_file_size_limit_during_an_import(ledger: Path, tmp_path: Path) -> None:
    before = ledger_state(ledger)
    big = recipients_csv(tmp_path / "big.csv", 5_000, 20)
    limit = file_size_limit(ledger.stat().st_size + 64 * 1024)
    code, err = campaign_cmd(f"sqlite:///{ledger}", "import", "c1", str(big), preexec_fn=limit)
    assert_one_error_line(
        code, err, f"cannot write the ledger {ledger}: the disk refused the write"
    )
    assert ledger_state(ledger) == before


def test_a_file_size_limit_during_a_send_then_resume(run: Cli, tmp_path: Path) -> None:
    """The ledger stops taking writes mid-send: one line with the resume hint; resumed without the
    limit, nobody is sent twice and everyone ends sent or unknown."""
    db = tmp_path / "send.db"
    url = f"sqlite:///{db}"
    n = 2_000
    run("--db", url, "create", "c1", "-o", ORIGIN, "-m", "Hi {first_name}", "--no-window")
    run("--db", url, "import", "c1", str(recipients_csv(tmp_path / "r.csv", n)))
    checkpoint(db)
    with Simulator(SimulatorConfig(mps=2000)) as sim:
        send = ("--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "1000")
        # The write-ahead log starts empty: it may grow to 256 KiB, a few commits' worth.
        code, err = campaign_cmd(url, *send, preexec_fn=file_size_limit(256 * 1024))
        line = assert_one_error_line(code, err, f"cannot write the ledger {db}")
        assert "run the same send command again to resume" in line
        accepted_before = len(sim.accepted(dry_run=False))
        assert 0 < accepted_before < n, err  # it failed mid-send
        integrity, _ = ledger_state(db)
        assert integrity == "ok"

        code, err = campaign_cmd(url, *send)
        assert code == 0, err
        accepted = sim.accepted(dry_run=False)
    assert max(Counter(a["destination"] for a in accepted).values()) == 1
    counts = dict(ledger_state(db)[1])
    assert set(counts) <= {"sent", "unknown"} and sum(counts.values()) == n
    assert counts["sent"] + counts.get("unknown", 0) == n
    assert counts["sent"] <= len(accepted)
