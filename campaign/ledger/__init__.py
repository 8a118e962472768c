"""The ledger: every SQL statement of the tool, behind one `Ledger` facade."""

from campaign.ledger.store import (
    CampaignExists,
    CampaignNotFound,
    Ledger,
    LedgerError,
    SenderBusy,
)

__all__ = ["CampaignExists", "CampaignNotFound", "Ledger", "LedgerError", "SenderBusy"]
