"""The import's worker processes: started fresh (spawn), they load only campaign.importing.rows,
and they die with the importing process, even when it is killed with SIGKILL (a worker waiting for
work would otherwise wait forever, holding its memory)."""

from __future__ import annotations

import contextlib
import os
import signal

from campaign.importing.rows import ChunkWork, _worker_init


def die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when its parent dies (PR_SET_PDEATHSIG), as the
    sender's worker processes do (campaign/sending/callers.py)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def start_worker(work: ChunkWork, parent: int) -> None:
    """A worker process's initializer: tie its life to the importer's, then set up the row work."""
    die_with_parent(parent)
    # Ctrl-C goes to the whole process group: the importer decides what happens, not each worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_init(work)
