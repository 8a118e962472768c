"""Ctrl-C and SIGTERM for the long-running commands (`send`, `events ingest`)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from campaign.errors import ExitCode

# How the first signal's note ends: what was received and how to quit at once. A SIGTERM comes
# from a supervisor or `kill`, where "Ctrl-C again" would name a key nobody pressed.
_QUIT_AT_ONCE: dict[int, str] = {
    signal.SIGINT: "Ctrl-C again to quit at once",
    signal.SIGTERM: "got SIGTERM; a second SIGTERM or Ctrl-C quits at once",
}


def stop_note(signum: int, stopping: str) -> str:
    """What the first Ctrl-C or SIGTERM prints: `Stopping: <what stopping means here> (...)`."""
    quit_at_once = _QUIT_AT_ONCE.get(
        signum, f"got {signal.Signals(signum).name}; Ctrl-C quits at once"
    )
    return f"Stopping: {stopping} ({quit_at_once})"


class StopSignal:
    """First Ctrl-C/SIGTERM asks the sender to stop claiming; the second exits at once.

    Exiting at once is safe: every commit is atomic, and claims whose calls were in flight are
    found `sending` by the next sender and marked `unknown`.

    `say` and `stopping` print `stop_note(<the signal received>, stopping)` on the first signal.
    `on_first` is the older form, a callback with a fixed text that cannot name the signal; it
    stays until `send` passes `say` and `stopping` like `events ingest`."""

    def __init__(
        self,
        requested: threading.Event,
        on_first: Callable[[], None] | None = None,
        *,
        say: Callable[[str], None] | None = None,
        stopping: str = "",
    ) -> None:
        self.requested = requested
        self.on_first = on_first
        self.say = say
        self.stopping = stopping

    def _handler(self, signum: int, _frame: Any) -> None:
        if self.requested.is_set():
            os._exit(ExitCode.INTERRUPTED)
        self.requested.set()
        if self.say is not None:
            self.say(stop_note(signum, self.stopping))
        elif self.on_first is not None:
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
