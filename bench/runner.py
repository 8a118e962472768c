"""Running and measuring child processes: wall time, CPU, peak memory, timeouts, clean-up.

Memory: a child (and any worker processes it starts) is read from /proc every SAMPLE_SECONDS:
"peak memory" is the larger of (a) the peak of the sum of VmRSS over the whole process tree and
(b) the largest VmHWM (the kernel's own high-water mark) of any one process in it. (b) makes a
single-process command exact up to growth in its last SAMPLE_SECONDS. The sum of RSS counts pages
that forked workers share with their parent once per process, so it errs on the high side; the sum
of PSS (shared pages split between their sharers) is sampled beside it, every TREE_SECONDS.

wait4's ru_maxrss is NOT used: on Linux a child's maxrss starts from the high-water mark of the
process that forked it (kept across exec), so every child would report at least this benchmark's
own peak.

CPU: user + system seconds from wait4's rusage of the child, which includes the descendants it
waited for (an import's worker processes).

Every child runs in its own session (process group), so a timeout or an error kills exactly the
processes the benchmark started, and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_SECONDS = 0.02
TREE_SECONDS = 0.2  # how often the process tree is re-read (new workers) and PSS sampled
MEMORY_METHOD = (
    f"peak memory = max of (sum of VmRSS over the process tree, sampled from /proc every "
    f"{1000 * SAMPLE_SECONDS:g} ms) and (the largest per-process VmHWM); PSS sum shown beside"
)

_live: dict[int, subprocess.Popen[bytes]] = {}  # pid -> process, for kill_all() on the way out
_live_lock = threading.Lock()


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why (one paragraph)."""


@dataclass
class Measured:
    label: str
    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    hwm_mb: float  # the largest VmHWM of any one process in the tree
    process_hwm_mb: list[float]  # every process's VmHWM, the child's first
    tree_rss_peak_mb: float  # sampled
    tree_pss_peak_mb: float  # sampled
    processes: int  # distinct processes seen in the tree
    samples: int
    timed_out: bool
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)
    log_prefix: str = ""

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def peak_mb(self) -> float:
        return max(self.tree_rss_peak_mb, self.hwm_mb)

    def summary(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "returncode": self.returncode,
            "wall_s": round(self.wall_s, 4),
            "cpu_user_s": round(self.user_s, 3),
            "cpu_sys_s": round(self.sys_s, 3),
            "peak_mb": round(self.peak_mb, 1),
            "tree_rss_peak_mb": round(self.tree_rss_peak_mb, 1),
            "tree_pss_peak_mb": round(self.tree_pss_peak_mb, 1),
            "largest_process_hwm_mb": round(self.hwm_mb, 1),
            "process_hwm_mb": [round(x, 1) for x in self.process_hwm_mb],
            "processes": self.processes,
            "memory_samples": self.samples,
            "timed_out": self.timed_out,
            "logs": self.log_prefix,
        }

    def check(self, what: str) -> Measured:
        """Raise BenchError unless the command exited 0."""
        if self.timed_out:
            raise BenchError(
                f"{what}: timed out after {self.wall_s:.0f} s and was killed "
                f"({' '.join(self.argv)}); logs: {self.log_prefix}.*\n{tail(self.stderr)}"
            )
        if self.returncode != 0:
            raise BenchError(
                f"{what}: exit code {self.returncode} ({' '.join(self.argv)}); "
                f"logs: {self.log_prefix}.*\n{tail(self.stderr)}"
            )
        return self

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise BenchError(
                f"{self.label}: stdout is not JSON: {self.stdout[:300]!r}\n{tail(self.stderr)}"
            ) from None


def tail(text: str, lines: int = 12) -> str:
    rows = text.rstrip().splitlines()[-lines:]
    return "\n".join("    | " + r for r in rows) if rows else "    | (no stderr)"


def _kb_fields(path: str, wanted: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open(path, "rb") as fh:
            for line in fh:
                key, _, rest = line.partition(b":")
                name = key.decode()
                if name in wanted:
                    found[name] = int(rest.split()[0])
                    if len(found) == len(wanted):
                        break
    except (OSError, ValueError, IndexError):
        pass
    return found


def _parents() -> dict[int, int]:
    """pid -> parent pid for every process (this kernel has no /proc/PID/task/TID/children)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; split after the last ")".
        after = stat[stat.rfind(b")") + 2 :].split()
        if len(after) > 1:
            parents[int(entry.name)] = int(after[1])
    return parents


def process_tree(root: int) -> list[int]:
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in parents or pid == root:
            tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


class _TreeSampler:
    def __init__(self, root: int) -> None:
        self.root = root
        self.rss_peak_kb = 0
        self.pss_peak_kb = 0
        self.hwm_kb: dict[int, int] = {}
        self.pids = [root]
        self.samples = 0
        self._tree_read = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        full = now - self._tree_read >= TREE_SECONDS
        if full:
            self.pids = process_tree(self.root)
            self._tree_read = now
        rss = pss = 0
        for pid in self.pids:
            status = _kb_fields(f"/proc/{pid}/status", ("VmRSS", "VmHWM"))
            if "VmRSS" not in status:
                continue  # a zombie, or gone
            rss += status["VmRSS"]
            self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), status.get("VmHWM", 0))
            if full:
                pss += _kb_fields(f"/proc/{pid}/smaps_rollup", ("Pss",)).get("Pss", 0)
        self.rss_peak_kb = max(self.rss_peak_kb, rss)
        if full:
            self.pss_peak_kb = max(self.pss_peak_kb, pss)
        self.samples += 1


class Runner:
    """Starts measured children with one environment and numbered log files."""

    def __init__(self, cwd: Path, logs: Path, env: Mapping[str, str], *, echo: bool = True) -> None:
        self.cwd = cwd
        self.logs = logs
        self.env = dict(env)
        self.echo = echo
        self._n = 0
        logs.mkdir(parents=True, exist_ok=True)

    def _log_paths(self, label: str) -> tuple[Path, Path, str]:
        self._n += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:60]
        prefix = self.logs / f"{self._n:03d}-{safe}"
        return prefix.with_suffix(".out"), prefix.with_suffix(".err"), str(prefix)

    def run(
        self,
        label: str,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        sample_memory: bool = True,
    ) -> Measured:
        """Run argv to completion (or kill its process group at `timeout`), measuring it."""
        out_path, err_path, prefix = self._log_paths(label)
        full_env = {**self.env, **(env or {})}
        if self.echo:
            print(f"  $ {_shown(argv)}", file=sys.stderr, flush=True)
        with out_path.open("wb") as out, err_path.open("wb") as err:
            started = time.perf_counter()
            try:
                proc = subprocess.Popen(
                    list(argv),
                    cwd=self.cwd,
                    env=full_env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as exc:
                raise BenchError(f"{label}: cannot start {argv[0]}: {exc}") from None
            _register(proc)
            reaped: dict[str, Any] = {}
            done = threading.Event()

            def wait_for_exit() -> None:
                # wait4 rather than Popen.wait: its rusage is this child's (and its reaped
                # descendants'), not everything this process ever waited for.
                _, status, usage = os.wait4(proc.pid, 0)
                reaped["ended"] = time.perf_counter()
                reaped["status"] = status
                reaped["usage"] = usage
                done.set()

            waiter = threading.Thread(target=wait_for_exit, daemon=True)
            waiter.start()
            sampler = _TreeSampler(proc.pid)
            timed_out = False
            try:
                if sample_memory:
                    sampler.sample()  # Popen returns after the exec: this is the new program
                while not done.wait(SAMPLE_SECONDS if sample_memory else 0.5):
                    if sample_memory:
                        sampler.sample()
                    if not timed_out and time.perf_counter() - started > timeout:
                        timed_out = True
                        _kill_group(proc.pid, signal.SIGKILL)
            except BaseException:
                _kill_group(proc.pid, signal.SIGKILL)
                done.wait(10)
                raise
            finally:
                waiter.join(10)
                proc.returncode = (
                    os.waitstatus_to_exitcode(reaped["status"]) if "status" in reaped else -9
                )
                _unregister(proc)
        if "usage" not in reaped:
            raise BenchError(f"{label}: the process could not be reaped ({_shown(argv)})")
        usage = reaped["usage"]
        return Measured(
            label=label,
            argv=list(argv),
            returncode=proc.returncode,
            wall_s=reaped["ended"] - started,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            hwm_mb=max(sampler.hwm_kb.values(), default=0) / 1024,
            process_hwm_mb=[kb / 1024 for kb in sampler.hwm_kb.values()],
            tree_rss_peak_mb=sampler.rss_peak_kb / 1024,
            tree_pss_peak_mb=sampler.pss_peak_kb / 1024,
            processes=max(len(sampler.hwm_kb), 1),
            samples=sampler.samples,
            timed_out=timed_out,
            stdout=out_path.read_text(encoding="utf-8", errors="replace"),
            stderr=err_path.read_text(encoding="utf-8", errors="replace"),
            log_prefix=prefix,
        )


def _shown(argv: Sequence[str]) -> str:
    parts = []
    for a in argv:
        a = str(a)
        if a.startswith(sys.prefix) or a.startswith(os.getcwd()):
            a = os.path.relpath(a)
        parts.append(a if re.fullmatch(r"[\w@%+=:,./-]+", a) else repr(a))
    text = " ".join(parts)
    return text if len(text) < 220 else text[:217] + "..."


def _register(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live[proc.pid] = proc


def _unregister(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.pop(proc.pid, None)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_all() -> None:
    """Kill every process group this benchmark started that is still running."""
    with _live_lock:
        procs = list(_live.values())
    for proc in procs:
        if proc.poll() is None:
            _kill_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
                proc.wait(5)
        _unregister(proc)


class LoadMeter:
    """CPU the rest of the machine used while a section ran: all busy CPU time (/proc/stat) minus
    this benchmark's own (itself and every child it reaped). Other work on a 2-core machine skews
    every figure, the ratios less than the times."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._busy = _busy_seconds()
        self._ours = _our_cpu_seconds()

    def result(self) -> dict[str, float]:
        wall = time.perf_counter() - self._started
        other = max(0.0, (_busy_seconds() - self._busy) - (_our_cpu_seconds() - self._ours))
        cores = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 1),
            "other_cpu_s": round(other, 1),
            "other_share_of_machine": round(other / (wall * cores), 3) if wall > 0 else 0.0,
        }


def _busy_seconds() -> float:
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _our_cpu_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


# -- the simulator as a separate process ------------------------------------------------------


class SimulatorProcess:
    """`campaign simulator --port 0 ...` in its own process group; stop() is always safe."""

    def __init__(
        self,
        campaign_bin: str,
        *,
        mps: float,
        latency_ms: float,
        log_path: Path | None,
        stderr_path: Path,
        cwd: Path,
        env: Mapping[str, str],
    ) -> None:
        self.argv = [
            campaign_bin,
            "simulator",
            "--port",
            "0",
            "--mps",
            f"{mps:g}",
            "--latency-ms",
            f"{latency_ms:g}",
        ]
        if log_path is not None:
            self.argv += ["--log", str(log_path)]
        self.mps = mps
        self.log_path = log_path
        self.stderr_path = stderr_path
        self.cwd = cwd
        self.env = dict(env)
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.cpu_s: float | None = None

    def start(self, timeout: float = 30.0) -> SimulatorProcess:
        print(f"  $ {_shown(self.argv)} &", file=sys.stderr, flush=True)
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        _register(self.proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
            found = re.search(r"listening on (http://\S+)", text)
            if found:
                self.url = found.group(1)
                self.stats()  # the health check answers: it is really serving
                return self
            if self.proc.poll() is not None:
                raise BenchError(
                    f"the simulator exited at start with code {self.proc.returncode}\n{tail(text)}"
                )
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"the simulator did not say it was listening within {timeout:.0f} s")

    def stats(self) -> dict[str, Any]:
        """GET / : the simulator's counters since it started."""
        try:
            with urllib.request.urlopen(self.url + "/", timeout=10) as response:
                data: dict[str, Any] = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise BenchError(f"the simulator's health check at {self.url}/ failed: {exc}") from None
        return data

    def stop(self) -> None:
        """SIGTERM (the simulator stops cleanly and closes its log), SIGKILL after 10 s."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                _kill_group(proc.pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        proc.returncode = os.waitstatus_to_exitcode(status)
                        self.cpu_s = usage.ru_utime + usage.ru_stime
                        break
                    time.sleep(0.05)
                else:
                    _kill_group(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        except ChildProcessError:
            pass
        finally:
            _unregister(proc)

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
