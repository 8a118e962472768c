"""Reading recipient files into the ledger."""
