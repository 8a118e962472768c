"""`campaign db`: the ledger database itself."""

from __future__ import annotations

import click

from campaign.cli.errors import user_errors
from campaign.cli.render import say
from campaign.cli.settings import Settings, pass_settings


@click.group()
def db() -> None:
    """The ledger database itself."""


@db.command("upgrade")
@click.option(
    "--revision",
    default="head",
    show_default=True,
    help="The schema revision to upgrade to (e.g. 0009); head is the newest.",
)
@pass_settings
def db_upgrade(settings: Settings, revision: str) -> None:
    """Upgrade the ledger schema (the tool also does this by itself on first use).

    \b
    Example:
      campaign --db sqlite:///ledger.db db upgrade
    """
    from campaign.ledger.engine import current_revision, head_revision, make_engine, migrate

    with user_errors():
        engine = make_engine(settings.db_url)
        before = current_revision(engine)
        migrate(engine, revision)
        after = current_revision(engine)
    say(
        f"Ledger at revision {after} (was {before or 'empty'}; newest {head_revision()}).", settings
    )
