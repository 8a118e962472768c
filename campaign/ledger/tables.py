"""The ledger's tables (SQLAlchemy Core).

Core rather than the ORM: the importer writes a million rows and the sender claims and settles hundreds
per second, and both go through plain whole-batch statements (campaign.ledger.sql). The naming
convention gives every constraint a stable name so that Alembic's batch mode can rebuild SQLite tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Partial indexes: a condition for SQLite here, the same for PostgreSQL when a PostgreSQL ledger is
# opened (with_postgresql_conditions). Naming `postgresql_where` here would load SQLAlchemy's
# PostgreSQL dialect, all its drivers' modules, in every command on SQLite too (30 ms and more).
_PARTIAL_INDEXES: list[Index] = []


def _partial(index: Index) -> Index:
    _PARTIAL_INDEXES.append(index)
    return index


def with_postgresql_conditions() -> None:
    """Give the partial indexes their PostgreSQL condition (campaign.ledger.engine.make_engine
    calls it for a PostgreSQL URL, before anything creates or compares them)."""
    for index in _PARTIAL_INDEXES:
        index.dialect_kwargs["postgresql_where"] = index.dialect_kwargs["sqlite_where"]


# The Alembic revision these tables match (tests check it is the head). The tool compares it with
# the ledger's alembic_version on start, and loads Alembic only when the two differ.
SCHEMA_REVISION = "0010"


campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("template", Text, nullable=False),
    Column("origination_identity", String(256), nullable=False),
    Column("message_type", String(16), nullable=False, server_default="PROMOTIONAL"),
    Column("configuration_set", String(256)),
    Column("max_price", String(8)),
    Column("ttl", Integer),
    Column("keyword", String(30)),
    Column("protect_configuration_id", String(256)),
    # JSON objects stored as text: portable across SQLite and PostgreSQL.
    Column("context", Text, nullable=False, server_default="{}"),
    Column("country_parameters", Text, nullable=False, server_default="{}"),
    Column("message_feedback", Boolean, nullable=False, server_default="0"),
    Column("gsm_safe", Boolean, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The single-sender lock: a sender owns the campaign while its token is set and it is alive.
    Column("sender_token", String(64)),
    Column("sender_pid", Integer),
    Column("sender_host", String(255)),
    Column("sender_heartbeat", DateTime(timezone=True)),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("filename", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("invalid", Integer, nullable=False),
    Column("phone_column", String(200), nullable=False),
    Column("columns", Text, nullable=False),  # JSON list of the file's header names
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("campaign_id", "sha256"),
)

recipients = Table(
    "recipients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("import_id", Integer, ForeignKey("imports.id", ondelete="CASCADE"), nullable=False),
    Column("row", Integer, nullable=False),  # 1-based data row number in its file
    Column("raw_phone", Text, nullable=False),
    Column("phone", String(20)),  # E.164; NULL when invalid
    Column("country", String(2)),
    Column("fields", Text),  # JSON object of the merge columns the template uses
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("parts", Integer),
    Column("encoding", String(8)),
    Column("message_id", String(128)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True)),
    # Delivery, beside the state (revision 0004): NULL is "awaiting" (or never sent). What decided
    # it is kept so that events arriving out of order never let an older or non-final event
    # overwrite it: a final event beats a non-final one, a later one an earlier one of its kind.
    Column("delivery", String(16)),  # delivered / undelivered / NULL
    Column("delivery_reason", Text),  # "TEXT_BLOCKED: <description>"
    Column("delivery_at", DateTime(timezone=True)),  # the deciding event's time
    Column("charged", Float),  # totalMessagePrice + totalCarrierFee, USD
    UniqueConstraint("import_id", "row"),
)
# Claiming walks pending rows in id order; status counts and sums parts by state without
# touching the table (the index covers it).
Index(
    "ix_recipients_campaign_state",
    recipients.c.campaign_id,
    recipients.c.state,
    recipients.c.id,
    recipients.c.parts,
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("mps", Float, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("exit_code", Integer),
    Column("note", Text),
)

# Append-only: a row is written when a call is claimed (before it is made) and its outcome is written
# once, when the call returns. An attempt with no outcome is a call whose fate is unknown.
attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "recipient_id", Integer, ForeignKey("recipients.id", ondelete="CASCADE"), nullable=False
    ),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("outcome", String(16)),
    Column("message_id", String(128)),
    Column("reason", Text),
)
Index("ix_attempts_recipient", attempts.c.recipient_id)
Index("ix_attempts_run", attempts.c.run_id)

# Characters that force UCS-2, found at import: where each comes from (the template or a merge column)
# and how many parts it adds. `estimate` reports them without re-reading a million rows.
ucs2_characters = Table(
    "ucs2_characters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("import_id", Integer, ForeignKey("imports.id", ondelete="CASCADE"), nullable=False),
    Column("character", String(8), nullable=False),
    Column("source", String(200), nullable=False),  # "template" or "column:<name>"
    Column("rows", Integer, nullable=False),
    Column("extra_parts", Integer, nullable=False),
)

# The sender registry: one row per `send` process, on any host. Liveness is per sender, not per
# recipient row: a heartbeat stamped by the DATABASE's clock (host clocks never matter), and a
# sender silent past a timeout is declared `lost` by a live one (see campaign/ledger/senders.py).
senders = Table(
    "senders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),  # live, stopped, lost
    Column("lost_at", DateTime(timezone=True)),
    Column("rate", Float),  # the sender's own parts per second, as of its last heartbeat
    Column("rate_note", Text),  # why its rate is what it is (e.g. throttled), for `status`
)
# `status` lists a campaign's senders; declaring senders lost looks for silent live ones.
Index("ix_senders_campaign_state", senders.c.campaign_id, senders.c.state)
Index("ix_senders_state_heartbeat", senders.c.state, senders.c.heartbeat_at)

# One MPS schedule per origination identity, shared by every sender using it (any campaign): a
# GCRA "theoretical arrival time" in seconds since 1970 on the database's clock (see
# campaign/ledger/rates.py).
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("identity", String(256), primary_key=True),
    Column("mps", Float, nullable=False),
    Column("tat", Float, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# -- delivery events (revision 0004) ----------------------------------------------------------------
# Events without our context are matched by MessageId; only sent recipients have one.
_partial(
    Index(
        "ix_recipients_message_id",
        recipients.c.message_id,
        sqlite_where=recipients.c.message_id.is_not(None),
    )
)

# Every event that belongs to one of the ledger's recipients, once: at-least-once delivery (SQS,
# SNS, a re-read file) is made exactly-once by the unique key AWS's events carry.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", String(128), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("event_ts", BigInteger, nullable=False),  # eventTimestamp, Unix ms, as AWS sent it
    Column("is_final", Boolean, nullable=False),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column(
        "recipient_id", Integer, ForeignKey("recipients.id", ondelete="CASCADE"), nullable=False
    ),
    Column("status", String(64)),  # messageStatus
    Column("description", Text),  # messageStatusDescription
    Column("parts", Integer),
    Column("price", Float),
    Column("carrier_fee", Float),
    Column("iso_country", String(2)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # The time first: events arrive roughly in time order, so the index grows at its end instead of
    # touching a random page per event (a random MessageId first made each batch rewrite most of it).
    UniqueConstraint("event_ts", "message_id", "event_type"),
)
Index("ix_events_recipient", events.c.recipient_id, events.c.event_ts)

# Inputs that are not events of this ledger's recipients, kept with the reason (campaign.events.parse
# names the reasons) so that nothing read is lost and the ingest summary can count them. The
# fingerprint (the event key, or a digest of an undecodable body) makes a re-delivered one count once.
events_aside = Table(
    "events_aside",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fingerprint", String(255), nullable=False, unique=True),
    Column("reason", String(32), nullable=False),
    Column("detail", Text),
    Column("message_id", String(128)),
    Column("event_type", String(64)),
    Column("event_ts", BigInteger),
    Column("context", Text),  # JSON object, when the event had one
    Column("raw", Text),  # the input itself, for undecodable ones (cut to a few KB)
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# -- sending windows, deadlines, do-not-send lists, frequency caps (revision 0006) ------------------
# Columns appended here rather than in the tables above: ADD COLUMN puts them last, as this does.
for _column in (
    # WindowPolicy.spec; NULL: the message type's default; "none": off. WINDOW is a reserved word
    # in PostgreSQL: Core quotes it; hand-written SQL must write "window".
    Column("window", Text),
    Column("days", String(40)),  # --days ("mon-fri"), applied to whatever window is in force
    Column("deadline", DateTime(timezone=True)),  # nothing leaves after it
    Column("max_per_recipient", Integer),  # at most this many messages to one number ...
    Column("per_hours", Integer),  # ... in this many hours, across every campaign; NULL: no cap
):
    campaigns.append_column(_column)
for _column in (
    # The recipient's time zones, decided at import (campaign.phones.timezones): the kept IANA
    # names, sorted and space-joined; NULL: unknown (never guessed). How it was decided: number,
    # country (every zone of the calling code) or column (--timezone-column).
    Column("tz_key", Text),
    Column("tz_source", String(16)),
):
    recipients.append_column(_column)
del _column

# The window check works on (zone key, country) groups of pending recipients: `estimate`,
# `status` and the sender group them with this index alone (pending rows only, so a claim takes
# its row out of it and nothing else pays for it). It holds `state` as well, which the query
# names, so that SQLite reads the index alone (migration 0010).
_partial(
    Index(
        "ix_recipients_pending_groups",
        recipients.c.campaign_id,
        recipients.c.tz_key,
        recipients.c.country,
        recipients.c.parts,
        recipients.c.state,
        sqlite_where=recipients.c.state == "pending",
    )
)
# The frequency cap counts the messages to one number in the last N hours across campaigns: the
# recipients with that number that were ever claimed (`attempts > 0`, so an import adds nothing
# to this index and a claim adds its row once), then their attempts (ix_attempts_recipient).
_partial(
    Index(
        "ix_recipients_claimed_phone",
        recipients.c.phone,
        sqlite_where=recipients.c.attempts > 0,
    )
)

# The account-wide do-not-send list: every campaign of the ledger skips these numbers, at import
# and again at claim time (a lookup by the primary key per candidate).
suppressions = Table(
    "suppressions",
    metadata,
    Column("phone", String(20), primary_key=True),  # E.164, byte for byte as imports store it
    Column("reason", Text, nullable=False),
    Column("source", String(300), nullable=False),  # "user" or "aws-opt-out:<list name>"
    Column("added_at", DateTime(timezone=True), nullable=False),
)

# -- what report gives back to the CRM (revision 0007) -----------------------------------------------
# How an accepted number was found when that needs saying (a fallback phone column, one number of
# several in a cell), and every cell of the input row, for `report --include`, in the order of
# imports.columns (encoded by campaign.importing.cells: cells joined by U+001F, or JSON).
recipients.append_column(Column("note", Text))
recipients.append_column(Column("cells", Text))

# -- several senders on one campaign (revision 0008) --------------------------------------------------
# The registered sender (`senders.id`) holding a `sending` claim: outcomes are written only while the
# row is still `sending` and that sender's (fencing), and a lost sender's `sending` rows are found by
# this small index (rows in flight only). NULL on rows claimed before 0008.
recipients.append_column(Column("sender_id", Integer))
_partial(
    Index(
        "ix_recipients_sending_owner",
        recipients.c.sender_id,
        sqlite_where=recipients.c.state == "sending",
    )
)

# -- a budget on the campaign (revision 0009) --------------------------------------------------------
# US dollars as exact decimal text (like max_price); the sender holds every run of the campaign
# under it, counting what earlier runs sent. NULL: no campaign budget.
campaigns.append_column(Column("budget", String(16)))
