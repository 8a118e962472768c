"""Every command explains itself: --help works and shows an example (docs/contract.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from campaign.cli import cli
from tests.helpers import Cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under `group`, asked as click asks (the root group loads them lazily)."""
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join((*prefix, name))} is listed but does not load"
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


COMMANDS = _commands(cli)


def test_the_spec_commands_exist() -> None:
    names = {c[-1] for c in COMMANDS}
    assert {
        "create",
        "import",
        "estimate",
        "send",
        "status",
        "list",
        "report",
        "simulator",
    } <= names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_has_an_example(run: Cli, command: tuple[str, ...]) -> None:
    result = run(*command, "--help")
    assert "Example" in result.stdout, f"`campaign {' '.join(command)} --help` shows no example"


def test_unknown_command_is_a_usage_error(run: Cli) -> None:
    result = run("sned", code=2)
    assert "No such command" in result.stderr


def _modules_loaded_by(*args: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `campaign ARGS` (exit 0)."""
    script = (
        "import json, sys\n"
        "from campaign.cli import cli\n"
        "try:\n"
        f"    cli.main({list(args)!r}, prog_name='campaign')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_a_command_loads_only_what_it_needs() -> None:
    # The root group imports each command's module when it runs: `--version` loads no SQLAlchemy,
    # and `simulator --help` none of the ledger, while `status --help` loads its own module.
    bare = _modules_loaded_by("--version")
    assert not {m for m in bare if m.startswith(("sqlalchemy", "campaign.ledger", "boto"))}
    simulator = _modules_loaded_by("simulator", "--help")
    assert "campaign.cli.simulator" in simulator
    assert "campaign.cli.send" not in simulator and "campaign.ledger" not in simulator
    assert "campaign.cli.reports" in _modules_loaded_by("status", "--help")
