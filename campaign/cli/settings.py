"""One settings object, built by the root command group and handed to every command."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from campaign.ledger import Ledger

DEFAULT_DB = "sqlite:///campaign.db"  # in the current folder (docs/contract.md)


@dataclass
class Settings:
    db_url: str = DEFAULT_DB
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    quiet: bool = False

    @cached_property
    def ledger(self) -> Ledger:
        """The ledger, migrated to the newest schema on first use."""
        # Imported here: SQLAlchemy is for the commands that open a ledger (cli/__init__.py).
        from campaign.ledger import Ledger
        from campaign.ledger.engine import open_ledger_engine

        return Ledger(open_ledger_engine(self.db_url))

    def show_progress(self) -> bool:
        """Progress bars only for a person watching: not with -q, not when stderr is a file/pipe."""
        if self.quiet:
            return False
        if os.environ.get("CAMPAIGN_FORCE_PROGRESS"):
            return True
        return sys.stderr.isatty()


pass_settings = click.make_pass_decorator(Settings)
