"""Issue 13 item 12: the resume hint is the whole command (where it sends and how, passwords
masked), so running it literally resumes the same send instead of going to real AWS; and the
summary before the confirmation always names where the send goes."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from campaign.simulator.server import Simulator
from tests.helpers import Cli, write_csv

pytestmark = pytest.mark.slow

SECRET = "pw-s3cr3t"


def _campaign(run: Cli, db: str, tmp_path: Path, n: int) -> Path:
    run("--db", db, "create", "c1", "-o", "+12065550100", "-m", "Hi {name}", "--no-window")
    lines = ["name,phone"] + [f"Sam{i},+1206555{i:04d}" for i in range(n)]
    run("--db", db, "import", "c1", str(write_csv(tmp_path / "c1.csv", "\n".join(lines) + "\n")))
    return write_csv(tmp_path / "prices.csv", "country,price_per_part\nUS,0.01\n")


def test_the_resume_hint_is_the_whole_command_and_runs_as_printed(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    db = f"sqlite:///{tmp_path / 'other.db'}"
    prices = _campaign(run, db, tmp_path, 10)
    endpoint = simulator.url.replace("http://", f"http://admin:{SECRET}@")
    masked = simulator.url.replace("http://", "http://admin:***@")
    first = run(
        *("--db", db, "--region", "us-west-2", "--endpoint-url", endpoint, "send", "c1"),
        *("--mps", "50", "--prices", str(prices), "--budget", "0.04", "--yes"),
        code=4,
    )
    err = first.stderr
    assert SECRET not in err + first.stdout
    # The summary names the target: the simulator says who it is, its account comes from an ARN.
    assert f"to the local simulator at {masked} (nothing is delivered, account 111122223333)" in err
    hint = shlex.join(
        [
            *("campaign", "--db", db, "--region", "us-west-2", "--endpoint-url", masked),
            *("send", "c1", "--mps", "50", "--budget", "0.04", "--prices", str(prices), "--yes"),
        ]
    )
    assert f"run `{hint}` again once fixed" in err, err
    assert len(simulator.accepted(dry_run=False)) == 4
    # Run literally (the password typed back in), it resumes the same send: 4 more, same ledger.
    args = shlex.split(hint.replace("***", SECRET))[1:]
    run(*args, code=4)
    assert len(simulator.accepted(dry_run=False)) == 8
    assert run.json("--db", db, "status", "c1", "--json")["counts"]["sent"] == 8


def test_the_target_is_named_for_aws_and_other_endpoints() -> None:
    """Without --endpoint-url the target is AWS in its region, with the account when an ARN named
    it; any other endpoint is named by its URL (masked by the caller)."""
    from campaign.aws.sms import Target

    assert Target("eu-west-2", None).describe() == (
        "AWS End User Messaging SMS in eu-west-2, account ?"
    )
    assert Target("eu-west-2", None, account="123456789012").describe() == (
        "AWS End User Messaging SMS in eu-west-2, account 123456789012"
    )
    assert Target("us-east-1", "https://proxy:***@x.example", None).describe() == (
        "the endpoint https://proxy:***@x.example (region us-east-1)"
    )
