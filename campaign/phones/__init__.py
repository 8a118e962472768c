"""Phone numbers: normalization to E.164 (and, later, time zones)."""
