"""How a command ends when it cannot finish: the library's typed errors become one `Error: ...`
line, with the exit code SPEC gives it (campaign.errors.ExitCode)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from campaign.errors import ExitCode, UserError


class Halted(click.ClickException):
    exit_code = ExitCode.HALTED


class Interrupted(click.ClickException):
    exit_code = ExitCode.INTERRUPTED


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's typed errors into one clear line and exit 1."""
    try:
        yield
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    except BrokenPipeError:
        raise  # `campaign report x | head`: Click exits quietly on a closed pipe
    except OSError as exc:
        raise click.ClickException(
            f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
        ) from None
