"""The tool's exit codes, and the root of every error a user can cause.

The CLI turns a `UserError` into one `Error: ...` line and exit 1; `ExitCode` is SPEC's table, the
only place the numbers are written."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What the process tells its caller (SPEC: exit codes)."""

    OK = 0  # done
    ERROR = 1  # bad input or configuration: one clear line, no traceback
    USAGE = 2  # a usage error (Click's own)
    INTERRUPTED = 3  # Ctrl-C or SIGTERM; run the same command to resume
    HALTED = 4  # an account-level error or the budget; fix it, run the same command again
    WAITING = 5  # recipients wait for their sending window (`send --no-wait`); run it later


class UserError(Exception):
    """A problem the user can fix; str() is one clear line."""
