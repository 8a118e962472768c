"""The ledger: every SQL statement of the tool, behind one `Ledger` facade.

Other modules never build SQL or touch a connection; they call `Ledger` methods and get back the value
types of campaign.domain. The package is split by concern, one module each:

- engine.py     the engine (SQLite pragmas) and the Alembic upgrade, loaded only when one is needed
- tables.py     the SQLAlchemy Core tables (the schema the migrations build)
- campaigns.py  create, read, list, update a campaign; `edit`'s recount of its pending recipients
- imports.py    write an import in one transaction; earlier imports, known phones, UCS-2 characters
- claims.py     the send path: the sender lock, runs, claim, settle, recover_orphans, retry_unknown
- reads.py      what `status`, `estimate`, `report` and the send summary read
- report.py     what `report --html` reads: the campaign's figures grouped in SQL
- sql.py        the hand-written batch statements of the hot paths, and every SQLite/PostgreSQL difference
- events.py     delivery events: recorded by the ingester; the funnel, charges, `unknown` outcomes
- rows.py       row -> value type conversions shared by more than one concern
- errors.py     LedgerError and its kinds
- suppressions.py  the account-wide do-not-send list
- audience.py   who may be claimed now (window groups, do-not-send list, frequency cap), expiry

Why a facade composed of mixins, one per concern module: callers keep one object and one flat set of
method names (`ledger.claim`, `ledger.state_counts`) whatever module a method lives in, and a method
moves between modules without a caller noticing. Each mixin owns its statements and shares only the
engine; no method is written twice, as a delegating facade would need. A concern that grows a
module of its own (`senders` for several senders' liveness, `events` for delivery events,
`suppressions` for do-not-send lists) adds one mixin here and its tables in tables.py. The cost, a
single namespace, is checked by test_ledger_facade.py: no method name may be defined by two mixins.
"""

from __future__ import annotations

from sqlalchemy import Engine

from campaign.ledger.audience import AudienceMixin
from campaign.ledger.campaigns import CampaignsMixin
from campaign.ledger.claims import ClaimsMixin
from campaign.ledger.errors import CampaignExists, CampaignNotFound, LedgerError, SenderBusy
from campaign.ledger.events import EventsMixin
from campaign.ledger.imports import ImportsMixin
from campaign.ledger.reads import ReadsMixin
from campaign.ledger.report import ReportMixin
from campaign.ledger.suppressions import SuppressionsMixin


class Ledger(
    CampaignsMixin,
    ImportsMixin,
    ClaimsMixin,
    ReadsMixin,
    EventsMixin,
    ReportMixin,
    SuppressionsMixin,
    AudienceMixin,
):
    """The ledger at `engine` (see campaign.ledger.engine.open_ledger_engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


__all__ = ["CampaignExists", "CampaignNotFound", "Ledger", "LedgerError", "SenderBusy"]
