"""The ledger's errors: problems the user can fix, each a one-line message (campaign.errors.UserError)."""

from __future__ import annotations

from campaign.errors import UserError


class LedgerError(UserError):
    """A problem the user can fix; the message is one line."""


class CampaignNotFound(LedgerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no campaign named {name!r} (see `campaign list`)")


class CampaignExists(LedgerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a campaign named {name!r} already exists")


class SenderBusy(LedgerError):
    """Another sender owns the campaign and is alive."""
