"""An import and its report on both dialects: every cell kept and read back, the note, `sent_at`
from the accepting attempt (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from campaign.domain import AttemptOutcome, RecipientState, Settlement
from campaign.ledger import Ledger
from campaign.ledger.engine import open_ledger_engine
from tests.helpers import Cli, write_csv
from tests.ledger.helpers import pending_claims, start_run


def test_import_and_report_on_each_dialect(
    run: Cli, tmp_path: Path, sqlite_or_postgres_url: str
) -> None:
    url = sqlite_or_postgres_url
    text = (
        "id,Name,Mobile,Phone,Notes\n"
        '007,Ava,+1 206 555 0100,,"a \x1f unit separator"\n'
        "008,Liam,,+1 206 555 0101,plain\n"
    )
    path = write_csv(tmp_path / "r.csv", text)
    run("--db", url, "create", "c", "-o", "+12065550100", "-m", "Hi {name}")
    run("--db", url, "import", "c", str(path), "--phone-fallback")
    ledger = Ledger(open_ledger_engine(url))
    campaign = ledger.get_campaign("c")
    run_id = start_run(ledger, campaign)
    first, _ = ledger.claim(campaign.id, run_id, pending_claims(ledger, campaign))
    ledger.settle(
        run_id,
        [Settlement(first.recipient_id, AttemptOutcome.SENT, RecipientState.SENT, "mid-1", None)],
    )
    out = run("--db", url, "report", "c", "--include", "all").stdout
    a, b = csv.DictReader(io.StringIO(out))
    assert (a["state"], a["message_id"], a["id"], a["Notes"]) == (
        "sent",
        "mid-1",
        "007",
        "a \x1f unit separator",  # a separator in a cell survives (stored as JSON)
    )
    assert a["sent_at"].endswith("Z") and a["sent_at"][:2] == "20"
    assert (b["state"], b["sent_at"], b["original:Phone"], b["Mobile"]) == (
        "sending",
        "",
        "+1 206 555 0101",
        "",
    )
    assert b["note"] == "phone from 'Phone' ('Mobile': empty)"
