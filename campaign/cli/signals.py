"""Ctrl-C and SIGTERM for the long-running commands (`send`, `events ingest`)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from campaign.errors import ExitCode


class StopSignal:
    """First Ctrl-C/SIGTERM asks the sender to stop claiming; the second exits at once.

    Exiting at once is safe: every commit is atomic, and claims whose calls were in flight are
    found `sending` by the next sender and marked `unknown`."""

    def __init__(self, requested: threading.Event, on_first: Callable[[], None]) -> None:
        self.requested = requested
        self.on_first = on_first

    def _handler(self, signum: int, _frame: Any) -> None:
        if self.requested.is_set():
            os._exit(ExitCode.INTERRUPTED)
        self.requested.set()
        self.on_first()

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, self._handler)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
