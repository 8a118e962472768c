"""The command line: parse options, call the library, render the result.

Only this package prints or exits. The root group and its global options live here; each command
group has its module (campaigns, imports, estimate, send, reports, simulator, db), sharing option
decorators (options.py), terminal output (render.py) and the way errors end (errors.py).
Library errors arrive as typed exceptions and leave as one `Error: ...` line with the exit code
docs/contract.md gives them (campaign.errors.ExitCode).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

import click

from campaign.cli.settings import DEFAULT_DB, Settings
from campaign.errors import ExitCode

# Each command's module is imported when that command runs (or `--help` lists them all): a command
# pays only for the libraries it uses, `campaign --version` for none of them. Name -> module:object.
COMMANDS = {
    "create": "campaign.cli.campaigns:create",
    "edit": "campaign.cli.campaigns:edit",
    "import": "campaign.cli.imports:import_",
    "estimate": "campaign.cli.estimate:estimate",
    "send": "campaign.cli.send:send",
    "status": "campaign.cli.reports:status",
    "list": "campaign.cli.campaigns:list_",
    "report": "campaign.cli.reports:report",
    "suppress": "campaign.cli.suppress:suppress",
    "optouts": "campaign.cli.suppress:optouts",
    "events": "campaign.cli.events:events",
    "simulator": "campaign.cli.simulator:simulator",
    "db": "campaign.cli.db:db",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (Click's "lazily loading subcommands")."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, name = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), name)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise RuntimeError(f"{self.lazy[cmd_name]} is not the command {cmd_name!r}")
        return command


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--db",
    "db_url",
    envvar="CAMPAIGN_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="SQLAlchemy URL of the ledger (env CAMPAIGN_DB).",
)
@click.option(
    "--profile", default=None, help="AWS profile for the boto3 session (env AWS_PROFILE)."
)
@click.option("--region", default=None, help="AWS region (env AWS_REGION / AWS_DEFAULT_REGION).")
@click.option(
    "--endpoint-url",
    default=None,
    help="Another SMS endpoint, e.g. the local simulator "
    "(env AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2 or AWS_ENDPOINT_URL).",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress bars or chatter; errors still go to stderr."
)
@click.version_option(package_name="campaign")
@click.pass_context
def cli(
    ctx: click.Context,
    db_url: str,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    quiet: bool,
) -> None:
    """Send bulk SMS campaigns through AWS End User Messaging SMS.

    \b
    A campaign in four steps:
      campaign create spring --origination-identity +12065550100 --message-file msg.txt
      campaign import spring recipients.csv --default-region US
      campaign estimate spring --prices prices.csv
      campaign send spring
    Then `campaign status spring` and `campaign report spring`.
    Interrupted? Run the same `send` again: nobody gets a second message.
    """
    ctx.obj = Settings(
        db_url=db_url, profile=profile, region=region, endpoint_url=endpoint_url, quiet=quiet
    )


def main() -> NoReturn:
    """Console entry point: no traceback for anything a user can cause."""
    try:
        cli.main(prog_name="campaign", standalone_mode=True)
    except Exception as exc:  # what no command turned into its line: one line, traceback on request
        if os.environ.get("CAMPAIGN_DEBUG"):
            raise
        from campaign.cli.errors import unexpected_error_line

        click.echo(f"Error: {unexpected_error_line(exc)}", err=True)
        sys.exit(ExitCode.ERROR)
    sys.exit(ExitCode.OK)


__all__ = ["cli", "main"]
