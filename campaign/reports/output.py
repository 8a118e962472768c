"""Writing a report file the way the user means the path they gave.

A report written to a regular file goes to a temporary name beside it and is renamed over it, so a
crash never leaves half a report under the real name. Any other kind of path is written through,
never replaced: `/dev/stdout`, a named pipe, `/dev/full` (whose "no space left" is then reported,
not hidden by replacing the device node with a file, as `report -o /dev/full` once did as root).
A symlink stays a symlink: the file it points to is what gets replaced.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from campaign.errors import UserError


class ReportWriteError(UserError):
    """The report could not be written where the user asked."""


def chart_directory(directory: Path) -> None:
    """The folder `report --png` writes its charts to, made if missing; refused in one line if it
    cannot be (checked before the page is written, and again when the charts are)."""
    if directory.exists() and not directory.is_dir():
        raise ReportWriteError(f"cannot write charts to {directory}: it is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportWriteError(f"cannot write charts to {directory}: {exc.strerror}") from None


def write_report_file(path: Path, data: bytes) -> None:
    """Write `data` to `path`: atomically for a regular file (or a new name), through for a
    FIFO, a device or anything else that is not a file; a directory is refused."""
    with open_report_file(path) as fh:
        fh.write(data)


@contextlib.contextmanager
def open_report_file(path: Path) -> Iterator[BinaryIO]:
    """`write_report_file` for a report written as it is read (a million rows never held in
    memory): yields a binary file to write to. A regular file (or a new name) is written to a
    temporary name beside it and renamed over it only when the block ends without an error; a
    FIFO or a device is written through; a directory is refused. A failed write (a full disk,
    /dev/full) is a ReportWriteError naming `path`, and no temporary file is left behind."""
    try:
        st: os.stat_result | None = os.stat(path)  # follows symlinks: what the path points at
    except FileNotFoundError:
        st = None  # a new file, or a symlink to one that does not exist yet
    except OSError as exc:
        raise ReportWriteError(f"cannot write {path}: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ReportWriteError(f"cannot write {path}: it is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            fd = os.open(path, os.O_WRONLY)  # no O_CREAT, no O_TRUNC: it is not a file
            with os.fdopen(fd, "wb") as fh:
                yield fh
        except OSError as exc:
            raise ReportWriteError(f"cannot write {path}: {exc.strerror}") from None
        return
    if st is not None and not os.access(path, os.W_OK):
        # A rename would replace a file the user may not write (chmod 444), unlike `> file`.
        raise ReportWriteError(f"cannot write {path}: Permission denied")
    target = Path(os.path.realpath(path))  # through symlinks, so that the link itself survives
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        # 0o666 and the umask, as for any file the user creates; an existing file keeps its mode.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:  # name the file asked for, not the temporary one
        raise ReportWriteError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if st is not None:
                os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:  # Ctrl-C included: never leave the temporary file behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise ReportWriteError(f"cannot write {path}: {exc.strerror}") from None
        raise
