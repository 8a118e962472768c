"""Where the SendTextMessage calls run.

`ThreadCaller`: a thread pool in this process. `ProcessCaller`: thread pools in a few worker
processes, for call rates one process cannot reach: boto3 spends 2-3 ms of CPU on each call, and
one interpreter runs Python on one core at a time, so one process tops out at roughly 300-400
calls/s. Either way the sender's loop stays the only writer of the ledger: it claims (and commits)
before `submit`, and records what comes back on `done`, one `(recipient_id, Outcome)` per call.

Worker processes ignore Ctrl-C (the loop decides when to stop and lets calls in flight finish) and
are killed by the kernel if the sender dies, so no call is made after the claim's owner is gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from campaign.aws.sms import ClientSettings, make_client
from campaign.sending.retry import Outcome, classify

Done = tuple[int, Outcome]


class Caller(Protocol):
    done: queue.SimpleQueue[Done]

    def submit(self, key: int, request: dict[str, Any]) -> None: ...

    def healthy(self) -> bool: ...

    def close(self) -> None: ...


def _call(client: Any, key: int, request: dict[str, Any]) -> Done:
    try:
        result: Any = client.send_text_message(**request)
    except Exception as exc:  # every outcome is classified, none escapes
        result = exc
    return key, classify(result)


class ThreadCaller:
    def __init__(self, client: Any, concurrency: int) -> None:
        self.client = client
        self.done: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sms")

    def submit(self, key: int, request: dict[str, Any]) -> None:
        self.pool.submit(lambda: self.done.put(_call(self.client, key, request)))

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class ProcessCaller:
    def __init__(self, settings: ClientSettings, processes: int, concurrency: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.done: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self._requests: Any = context.Queue()
        self._results: Any = context.Queue()
        threads = max(1, -(-concurrency // processes))
        self._workers = [
            context.Process(
                target=_worker_main,
                args=(settings, threads, self._requests, self._results, os.getpid()),
                daemon=True,
                name=f"sms-caller-{i}",
            )
            for i in range(processes)
        ]
        for worker in self._workers:
            worker.start()
        self._feeder = threading.Thread(target=self._feed, daemon=True, name="sms-results")
        self._feeder.start()

    def _feed(self) -> None:
        while True:
            item = self._results.get()
            if item is None:
                return
            self.done.put(item)

    def submit(self, key: int, request: dict[str, Any]) -> None:
        self._requests.put((key, request))

    def healthy(self) -> bool:
        """False once a worker process has died (its calls in flight will never report)."""
        return all(worker.is_alive() for worker in self._workers)

    def close(self) -> None:
        for _ in self._workers:
            self._requests.put(None)
        for worker in self._workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
        self._results.put(None)
        self._feeder.join(timeout=5)


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when the sender dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _worker_main(
    settings: ClientSettings, threads: int, requests: Any, results: Any, parent: int
) -> None:
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sender's loop decides when to stop
    client = make_client(settings)
    slots = threading.BoundedSemaphore(threads)  # take no more work than threads to run it

    def run(key: int, request: dict[str, Any]) -> None:
        try:
            results.put(_call(client, key, request))
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sms") as pool:
        while True:
            slots.acquire()
            item = requests.get()
            if item is None:
                break
            pool.submit(run, *item)
