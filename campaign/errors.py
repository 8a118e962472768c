"""The tool's exit codes, the root of every error a user can cause, and the masking of secrets in
error texts.

The CLI turns a `UserError` into one `Error: ...` line and exit 1; `ExitCode` is docs/contract.md's
table, the only place the numbers are written."""

from __future__ import annotations

import enum
import re


class ExitCode(enum.IntEnum):
    """What the process tells its caller (docs/contract.md, "Exit codes")."""

    OK = 0  # done
    ERROR = 1  # bad input or configuration: one clear line, no traceback
    USAGE = 2  # a usage error (Click's own)
    INTERRUPTED = 3  # Ctrl-C or SIGTERM; run the same command to resume
    HALTED = 4  # an account-level error or the budget; fix it, run the same command again
    WAITING = 5  # recipients wait for their sending window (`send --no-wait`); run it later


def count(n: int, noun: str) -> str:
    """`1 row`, `2 rows`, `1,000 rows`: for the CLI (campaign.cli.render re-exports it) and for
    the modules below it, whose error texts reach the user too."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


class UserError(Exception):
    """A problem the user can fix; str() is one clear line."""


# scheme://userinfo@ in free text (an error message quoting an endpoint URL). The userinfo runs to
# the last "@" before the host's end, since an unescaped "@" in a password is common.
_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s\"'<>]*)@"
)


def mask_url_secrets(text: str) -> str:
    """`text` with the password of every URL in it masked, as SQLAlchemy shows a `--db` URL:
    `http://admin:pw@host` -> `http://admin:***@host`; a lone userinfo (often a token) is masked
    whole: `https://token@host` -> `https://***@host`. Applied where texts that quote an endpoint
    URL are made (the reasons stored in the ledger, shown and reported)."""
    return _URL_USERINFO.sub(_masked_userinfo, text)


def _masked_userinfo(match: re.Match[str]) -> str:
    user, colon, _secret = match["userinfo"].partition(":")
    return f"{match['scheme']}{user}:***@" if colon else f"{match['scheme']}***@"
