"""How a command ends when it cannot finish: the library's typed errors become one `Error: ...`
line, with the exit code docs/contract.md gives it (campaign.errors.ExitCode)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.exc import DBAPIError, StatementError

from campaign.errors import ExitCode, UserError, mask_url_secrets
from campaign.ledger.engine import LedgerStorageError


class Halted(click.ClickException):
    exit_code = ExitCode.HALTED


class Interrupted(click.ClickException):
    exit_code = ExitCode.INTERRUPTED


# Claims are committed before their calls, so a send stopped by a failed ledger write resumes safely.
SEND_RESUME_HINT = (
    "; once fixed, run the same send command again to resume{command} (calls that were in flight "
    "are then marked `unknown`; nobody is sent twice)"
)
# Where `send` leaves the whole command that resumes it (campaign.cli.send.resume_command).
RESUME_COMMAND_KEY = "campaign.resume_command"


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's typed errors into one clear line and exit 1."""
    try:
        yield
    except LedgerStorageError as exc:
        raise click.ClickException(f"{exc}{_resume_hint()}") from None
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    except BrokenPipeError:
        raise  # `campaign report x | head`: Click exits quietly on a closed pipe
    except OSError as exc:
        raise click.ClickException(
            f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
        ) from None
    except DBAPIError as exc:
        raise click.ClickException(database_error_line(exc)) from None


def database_error_line(exc: StatementError) -> str:
    """A driver error the ledger does not name (a lock held too long, a lost server): the
    driver's first line. Never SQLAlchemy's own text: it holds the SQL and its parameters
    (phone numbers, message text)."""
    first = (str(exc.orig or "").strip().splitlines() or [type(exc).__name__])[0]
    return f"the ledger's database failed: {first}"


def unexpected_error_line(exc: Exception) -> str:
    """The `Error:` line for an exception no command turned into one (campaign.cli.main)."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, StatementError):
        return database_error_line(exc)
    text = mask_url_secrets(str(exc))  # a URL's password quoted by a library's message
    return f"internal error: {type(exc).__name__}: {text} (set CAMPAIGN_DEBUG=1 for the traceback)"


def _resume_hint() -> str:
    """What to run next, when the command that failed was a send."""
    context = click.get_current_context(silent=True)
    if context is None or context.command.name != "send":
        return ""
    command = context.meta.get(RESUME_COMMAND_KEY)
    return SEND_RESUME_HINT.format(command=f": `{command}`" if command else "")
