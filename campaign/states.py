"""Recipient states, spelled exactly as SPEC.md (and `status --json`) spells them.

A module of its own, free of SQLAlchemy, so the importer's worker processes stay small."""

from __future__ import annotations

import enum


class RecipientState(enum.StrEnum):
    """Recipient states, spelled exactly as SPEC.md (and `status --json`) spells them."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    OPTED_OUT = "opted_out"
    UNKNOWN = "unknown"
    INVALID = "invalid"
    DUPLICATE = "duplicate"

    def __str__(self) -> str:
        return self.value


ALL_STATES: tuple[str, ...] = tuple(s.value for s in RecipientState)
# States nobody will ever be sent in again without the user asking (`--retry-unknown`).
FINAL_STATES = frozenset(
    {
        RecipientState.SENT,
        RecipientState.FAILED,
        RecipientState.OPTED_OUT,
        RecipientState.UNKNOWN,
        RecipientState.INVALID,
        RecipientState.DUPLICATE,
    }
)
