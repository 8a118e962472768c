"""The tool's value types: recipient states, campaigns, claims, outcomes, runs.

Frozen dataclasses built from ledger rows with one `from_row` style, and the enums the SPEC names.
No SQLAlchemy here: the pricing, the importer's worker processes and the simulator import this
module without loading the store (docs/architecture.md).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


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


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything the ledger writes is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class CampaignSpec:
    """Everything `campaign create` stores; validated by campaign.options before it gets here."""

    name: str
    template: str
    origination_identity: str
    message_type: str = "PROMOTIONAL"
    configuration_set: str | None = None
    max_price: str | None = None
    ttl: int | None = None
    keyword: str | None = None
    protect_configuration_id: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    country_parameters: Mapping[str, str] = field(default_factory=dict)
    message_feedback: bool = False
    gsm_safe: bool = False


@dataclass(frozen=True)
class Campaign(CampaignSpec):
    id: int = 0
    created_at: datetime | None = None
    sender_pid: int | None = None
    sender_host: str | None = None
    sender_heartbeat: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> Campaign:
        return cls(
            id=row.id,
            name=row.name,
            template=row.template,
            origination_identity=row.origination_identity,
            message_type=row.message_type,
            configuration_set=row.configuration_set,
            max_price=row.max_price,
            ttl=row.ttl,
            keyword=row.keyword,
            protect_configuration_id=row.protect_configuration_id,
            context=json.loads(row.context or "{}"),
            country_parameters=json.loads(row.country_parameters or "{}"),
            message_feedback=bool(row.message_feedback),
            gsm_safe=bool(row.gsm_safe),
            created_at=aware(row.created_at),
            sender_pid=row.sender_pid,
            sender_host=row.sender_host,
            sender_heartbeat=aware(row.sender_heartbeat),
        )


@dataclass(frozen=True)
class ImportRecord:
    id: int
    filename: str
    sha256: str
    rows: int
    accepted: int
    duplicates: int
    invalid: int
    created_at: datetime | None


@dataclass(frozen=True)
class StateCounts:
    counts: dict[str, int]
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Claim:
    """A recipient claimed for one API call: everything the call needs."""

    recipient_id: int
    phone: str
    country: str | None
    fields: Mapping[str, str]
    parts: int


@dataclass(frozen=True)
class Settlement:
    """The recorded outcome of one call. `state` None means: not sent, still claimed (will retry)."""

    recipient_id: int
    outcome: str  # attempts.outcome: sent, throttled, error, failed, opted_out, unknown, dry_run, released
    state: RecipientState | None
    message_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RunInfo:
    id: int
    pid: int
    host: str
    dry_run: bool
    mps: float
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    note: str | None


@dataclass(frozen=True)
class PartsClass:
    """One (country, encoding, parts) class of pending-or-sendable recipients, for estimates."""

    country: str | None
    encoding: str | None
    parts: int
    recipients: int


@dataclass(frozen=True)
class Ucs2Character:
    character: str
    source: str
    rows: int
    extra_parts: int
