"""The tool's value types: recipient states, campaigns, claims, outcomes, runs.

Frozen dataclasses built from ledger rows with one `from_row` style, and the enums
docs/contract.md names. No SQLAlchemy here: the pricing, the importer's worker processes and the
simulator import this module without loading the store (docs/architecture.md).
"""

from __future__ import annotations

import enum
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from campaign.errors import ExitCode


class RecipientState(enum.StrEnum):
    """Recipient states, spelled exactly as docs/contract.md (and `status --json`) spells them."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    OPTED_OUT = "opted_out"
    SUPPRESSED = "suppressed"  # on the do-not-send list (at import or at claim time); never sent
    EXPIRED = "expired"  # the campaign's deadline passed before it could be sent
    UNKNOWN = "unknown"
    INVALID = "invalid"
    DUPLICATE = "duplicate"

    def __str__(self) -> str:
        return self.value


ALL_STATES: tuple[str, ...] = tuple(s.value for s in RecipientState)


class AttemptOutcome(enum.StrEnum):
    """What one call came to, as `attempts.outcome` stores it (NULL while the call is in flight)."""

    SENT = "sent"  # accepted; MessageId stored
    DRY_RUN = "dry_run"  # accepted by a DryRun call: validated, not delivered
    THROTTLED = "throttled"  # ThrottlingException: not sent, retried
    ERROR = "error"  # a service error or an account-level refusal: not sent
    FAILED = "failed"  # a permanent per-recipient error
    OPTED_OUT = "opted_out"  # the destination is on the opt-out list
    UNKNOWN = "unknown"  # may have gone out: a timeout, a dropped connection, a dead sender

    def __str__(self) -> str:
        return self.value


class StopReason(enum.StrEnum):
    """Why a send run ended; each maps to the exit code docs/contract.md gives it."""

    DONE = "done"
    LIMIT = "limit"  # --limit reached; the rest stays pending
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    HALTED = "halted"  # an account-level error
    BUDGET = "budget"  # --budget reached (or cannot be enforced)
    GAVE_UP = "gave_up"  # recipients left pending after repeated service errors
    WAITING = "waiting"  # the rest wait for their sending window (send --no-wait), or a decision

    @property
    def exit_code(self) -> ExitCode:
        return _STOP_EXIT_CODES[self]


_STOP_EXIT_CODES = {
    StopReason.DONE: ExitCode.OK,
    StopReason.LIMIT: ExitCode.OK,
    StopReason.INTERRUPTED: ExitCode.INTERRUPTED,
    StopReason.HALTED: ExitCode.HALTED,
    StopReason.BUDGET: ExitCode.HALTED,
    StopReason.GAVE_UP: ExitCode.ERROR,
    StopReason.WAITING: ExitCode.WAITING,
}


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
    # Round 2 (revision 0006): when and how often recipients may be messaged (campaign.audience).
    window: str | None = None  # WindowPolicy.spec; None: the message type's default; "none": off
    days: str | None = None  # --days, applied to whatever window is in force
    deadline: datetime | None = None  # nothing leaves after it (aware UTC)
    max_per_recipient: int | None = None  # frequency cap across campaigns: at most N messages ...
    per_hours: int | None = None  # ... per this many hours; None: no cap
    # Revision 0009: the most every run together may spend (estimated from a price table).
    budget: Decimal | None = None


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
            window=row.window,
            days=row.days,
            deadline=aware(row.deadline),
            max_per_recipient=row.max_per_recipient,
            per_hours=row.per_hours,
            budget=Decimal(row.budget) if row.budget else None,
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
class Suppression:
    """One number on the account-wide do-not-send list."""

    phone: str  # E.164, as the import stores it
    reason: str
    source: str  # "user", or "aws-opt-out:<list ARN>" (campaign optouts sync)
    added_at: datetime | None


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
    outcome: AttemptOutcome
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


# -- is the sender alive? ----------------------------------------------------------------------------

# A live sender writes a heartbeat every few seconds (campaign.sending.sender.HEARTBEAT_SECONDS);
# one silent this long is gone, wherever it ran.
SENDER_FRESH = timedelta(seconds=60)


class SenderLock(Protocol):
    """Who holds a campaign's sender lock: a `Campaign`, or a ledger row with these columns."""

    @property
    def sender_pid(self) -> int | None: ...
    @property
    def sender_host(self) -> str | None: ...
    @property
    def sender_heartbeat(self) -> datetime | None: ...


def sender_alive(
    lock: SenderLock, *, at: datetime | None = None, this_host: str | None = None
) -> bool:
    """THE liveness rule (status, edit and send all use it): a sender is alive while its heartbeat
    is fresh AND, when it ran on this host, its process still exists. The pid check makes a crashed
    sender on this machine dead at once instead of 60 s later; on another host only the heartbeat
    can tell."""
    heartbeat = aware(lock.sender_heartbeat)
    if lock.sender_pid is None or heartbeat is None:
        return False
    if (at or now()) - heartbeat > SENDER_FRESH:
        return False
    here = this_host or socket.gethostname()
    return lock.sender_host != here or pid_alive(lock.sender_pid)


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists on this host."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True
