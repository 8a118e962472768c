"""Report files land where the user meant: a file is replaced whole, anything else is written
through (never replaced), a directory is refused with one line."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from campaign.errors import UserError
from campaign.reports import output
from campaign.reports.charts import write_pngs
from campaign.reports.output import ReportWriteError, write_report_file
from tests.reports.builders import sample_report


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_a_new_file_and_a_replaced_file_keep_their_mode(tmp_path: Path) -> None:
    new = tmp_path / "report.html"
    write_report_file(new, b"first")
    assert new.read_bytes() == b"first"
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~_umask()
    new.chmod(0o640)
    write_report_file(new, b"second")
    assert new.read_bytes() == b"second"
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_a_symlink_stays_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real.html"
    target.write_text("old")
    link = tmp_path / "latest.html"
    link.symlink_to(target)
    write_report_file(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "not-yet.html")
    write_report_file(dangling, b"created")
    assert dangling.is_symlink() and (tmp_path / "not-yet.html").read_bytes() == b"created"
    assert leftovers(tmp_path) == []


def test_a_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_report_file(fifo, b"<html>through the pipe</html>")
    reader.join(timeout=10)
    assert received == [b"<html>through the pipe</html>"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert leftovers(tmp_path) == []


def _device(tmp_path: Path, name: str, minor: int) -> Path:
    # A copy of /dev/null (1, 3) or /dev/full (1, 7) in a temporary folder: if this code were
    # wrong, the test must not replace the machine's own device.
    path = tmp_path / name
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    return path


def test_a_full_device_is_reported_not_replaced(tmp_path: Path) -> None:
    full = _device(tmp_path, "full", 7)
    with pytest.raises(ReportWriteError, match=r"^cannot write .*/full: No space left on device$"):
        write_report_file(full, b"x" * 100_000)
    assert stat.S_ISCHR(full.lstat().st_mode)
    null = _device(tmp_path, "null", 3)
    link = tmp_path / "null-link"
    link.symlink_to(null)
    write_report_file(link, b"discarded")
    assert stat.S_ISCHR(null.lstat().st_mode) and link.is_symlink()
    assert leftovers(tmp_path) == []


def test_a_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        write_report_file(tmp_path, b"x")
    assert str(caught.value) == f"cannot write {tmp_path}: it is a directory"
    with pytest.raises(ReportWriteError, match="No such file or directory"):
        write_report_file(tmp_path / "missing" / "report.html", b"x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportWriteError, match="it is not a directory"):
        write_pngs(sample_report(), tmp_path / "file")


def test_a_failed_rename_leaves_the_old_report_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "report.html"
    report.write_text("the old report")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", refuse)
    with pytest.raises(ReportWriteError, match=r"report\.html: No space left on device$"):
        write_report_file(report, b"the new one")
    assert report.read_text() == "the old report"
    assert leftovers(tmp_path) == []


def test_a_file_the_user_may_not_write_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename needs only the folder's write permission: it replaced a chmod 444 file that
    `> file` would have refused. (os.access is stubbed: the tests may run as root.)"""
    report = tmp_path / "report.csv"
    report.write_text("kept")
    report.chmod(0o444)
    real_access = os.access
    monkeypatch.setattr(
        output.os, "access", lambda p, mode: False if Path(p) == report else real_access(p, mode)
    )
    with pytest.raises(ReportWriteError, match=r"report\.csv: Permission denied$"):
        write_report_file(report, b"new")
    assert report.read_text() == "kept"
    assert leftovers(tmp_path) == []
    write_report_file(tmp_path / "new.csv", b"new")  # a new name needs no such check
    assert (tmp_path / "new.csv").read_bytes() == b"new"
