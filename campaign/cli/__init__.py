"""The command line: parse options, call the library, render the result.

Only this package prints or exits. The root group and its global options live here; each command
group has its module (campaigns, imports, estimate, send, reports, simulator, db), sharing option
decorators (options.py), terminal output (render.py) and the way errors end (errors.py).
Library errors arrive as typed exceptions and leave as one `Error: ...` line with the exit code
docs/contract.md gives them (campaign.errors.ExitCode).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from campaign.cli.campaigns import create, edit, list_
from campaign.cli.db import db
from campaign.cli.errors import unexpected_error_line
from campaign.cli.estimate import estimate
from campaign.cli.events import events
from campaign.cli.imports import import_
from campaign.cli.reports import report, status
from campaign.cli.send import send
from campaign.cli.settings import DEFAULT_DB, Settings
from campaign.cli.simulator import simulator
from campaign.cli.suppress import optouts, suppress
from campaign.errors import ExitCode


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


# In the order of a campaign's life: `campaign --help` lists them alphabetically anyway.
for command in (
    create,
    edit,
    import_,
    estimate,
    send,
    status,
    list_,
    report,
    suppress,
    optouts,
    events,
    simulator,
    db,
):
    cli.add_command(command)


def main() -> NoReturn:
    """Console entry point: no traceback for anything a user can cause."""
    try:
        cli.main(prog_name="campaign", standalone_mode=True)
    except Exception as exc:  # what no command turned into its line: one line, traceback on request
        if os.environ.get("CAMPAIGN_DEBUG"):
            raise
        click.echo(f"Error: {unexpected_error_line(exc)}", err=True)
        sys.exit(ExitCode.ERROR)
    sys.exit(ExitCode.OK)


__all__ = ["cli", "main"]
