"""The CLI as a whole: its default ledger, its exit codes, and what it loads to start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from campaign.cli.errors import Halted, Interrupted
from campaign.errors import ExitCode
from tests.helpers import Cli


def test_the_default_ledger_is_campaign_db_in_the_current_folder(
    run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAMPAIGN_DB")
    run("create", "c1", "-o", "+12065550100", "-m", "Hi")
    assert (tmp_path / "campaign.db").is_file()
    assert "sqlite:///campaign.db" in run("--help").stdout


def test_exit_codes_are_spec_s_table() -> None:
    # docs/contract.md, "Exit codes".
    assert [(c.name, c.value) for c in ExitCode] == [
        ("OK", 0),
        ("ERROR", 1),
        ("USAGE", 2),
        ("INTERRUPTED", 3),
        ("HALTED", 4),
        ("WAITING", 5),
    ]
    assert (Interrupted("x").exit_code, Halted("x").exit_code) == (3, 4)


@pytest.mark.parametrize(
    ("budget", "message"),
    [("ten", "'ten' is not an amount in dollars"), ("-1", "must be a positive amount")],
)
def test_a_bad_budget_is_a_usage_error(run: Cli, budget: str, message: str) -> None:
    run("create", "c1", "-o", "+12065550100", "-m", "Hi")
    result = run("send", "c1", "--budget", budget, "--prices", __file__, code=2)
    assert f"Invalid value for --budget: {message}" in result.stderr


def test_starting_the_cli_loads_no_aws_pandas_or_progress_bars() -> None:
    """`campaign --help` and `campaign status` stay quick: the heavy libraries load with the
    commands that need them."""
    code = (
        "import sys, campaign.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'pandas', "
        "'tqdm', 'phonenumbers'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
