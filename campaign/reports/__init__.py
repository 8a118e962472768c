"""What the ledger says about a campaign: status, CSV report."""
