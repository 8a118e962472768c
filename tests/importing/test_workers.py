"""`kill -9` of `campaign import` must not leave its worker processes behind (issue 13, item 10):
each was about 86 MB, blocked forever waiting for work."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.helpers import Cli, campaign_process

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")


def worker_pids(parent: int) -> set[int]:
    """The parent's children started by multiprocessing's spawn."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_import(run: Cli, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("first_name,phone\n")
        for i in range(400_000):
            fh.write(f"Ann,+1206{i:07d}\n")
    run("create", "c", "-o", "+12065550100", "-m", "Hi {first_name}")
    proc = campaign_process("import", "c", str(path), "--workers", "2")
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            workers = worker_pids(proc.pid)
            time.sleep(0.05)
        assert len(workers) == 2, "the import ended before its workers could be seen"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in workers:  # a failed run must not leave them behind either
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
