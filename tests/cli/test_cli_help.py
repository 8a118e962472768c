"""Every command explains itself: --help works and shows an example (docs/contract.md)."""

from __future__ import annotations

import click
import pytest

from campaign.cli import cli
from tests.helpers import Cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
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
