"""Options more than one command takes, written once: a campaign's settings (`create`, `edit`),
`--prices`, `--mps`, `--json`, and the DOLLARS type."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

MESSAGE_TYPES = ("PROMOTIONAL", "TRANSACTIONAL")
MAX_MPS = 10_000


def _apply(decorators: list[Callable[[Any], Any]]) -> Callable[[F], F]:
    """Apply click option decorators so that --help lists them in the order written."""

    def decorate(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return decorate


def campaign_options(*, editing: bool) -> Callable[[F], F]:
    """A campaign's settings. `create` requires an origination identity and stores defaults;
    `edit` changes only what is given (None: not given)."""
    new = "new " if editing else ""
    return _apply(
        [
            click.option(
                "--origination-identity",
                "-o",
                # No default at all: Click takes an explicit default=None as given.
                required=not editing,
                help="A new origination identity."
                if editing
                else "Phone number (E.164), sender ID, pool ID or ARN to send from.",
            ),
            click.option(
                "--message", "-m", "message", default=None, help=f"The {new}message template."
            ),
            click.option(
                "--message-file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help=f"Read the {new}message template from a UTF-8 file.",
            ),
            click.option(
                "--message-type",
                default=None if editing else "PROMOTIONAL",
                show_default=not editing,
                type=click.Choice(MESSAGE_TYPES, case_sensitive=False),
            ),
            click.option(
                "--configuration-set",
                default=None,
                help="ConfigurationSetName (event destinations).",
            ),
            click.option(
                "--max-price",
                default=None,
                metavar="DOLLARS",
                help="MaxPrice: the most to pay per message, e.g. 0.05. AWS rejects dearer messages.",
            ),
            click.option(
                "--ttl",
                type=int,
                default=None,
                metavar="SECONDS",
                help="TimeToLive: 5-259200 seconds (default at AWS: 72 hours).",
            ),
            click.option("--keyword", default=None, help="Keyword (US short-code programs)."),
            click.option(
                "--protect-configuration-id", default=None, help="ProtectConfigurationId."
            ),
        ]
    )


def campaign_flags(*, editing: bool) -> Callable[[F], F]:
    """A campaign's on/off settings: flags for `create`, --x/--no-x for `edit` (None: unchanged)."""
    return _apply(
        [
            _flag(
                "--message-feedback",
                editing=editing,
                help="Set MessageFeedbackEnabled.",
            ),
            _flag(
                "--gsm-safe",
                editing=editing,
                help="Replace look-alike characters (curly quotes, dashes, non-breaking spaces...) "
                "by their GSM-7 equivalents so they do not force UCS-2 and double the parts"
                + (" (--no-gsm-safe: stop doing so)." if editing else "."),
            ),
        ]
    )


def when_options(*, editing: bool) -> Callable[[F], F]:
    """When and how often a campaign may message each recipient: the sending window in the
    recipient's local time, the deadline, the frequency cap across campaigns."""
    return _apply(
        [
            click.option(
                "--window",
                default=None,
                metavar="HH:MM-HH:MM",
                help="Send only inside this window of the recipient's local time, e.g. "
                "09:00-18:00 (default for PROMOTIONAL: US/CA 08:00-20:00, FR Mon-Sat "
                "10:00-20:00, IN 10:00-21:00, elsewhere 09:00-20:00; TRANSACTIONAL: none)"
                + ("; 'default' goes back to it." if editing else "."),
            ),
            click.option(
                "--days",
                default=None,
                metavar="DAYS",
                help="Weekdays the window opens, e.g. mon-fri or mon,tue,sat.",
            ),
            click.option(
                "--no-window",
                is_flag=True,
                help="No sending window: send at any hour of the recipient's day.",
            ),
            click.option(
                "--deadline",
                default=None,
                metavar="ISO-8601",
                help="Nothing leaves after this moment, and no message lives past it, e.g. "
                "2026-05-01T20:00-04:00 (an offset or Z is required)"
                + ("; 'none' removes it." if editing else "."),
            ),
            click.option(
                "--max-per-recipient",
                type=click.IntRange(min=0),
                default=None,
                metavar="N",
                help="Frequency cap: at most N messages to one number per --per HOURS, counted "
                "across every campaign of the ledger (off by default; FL, OK and MD allow 3 per "
                "24 h)" + ("; 0 turns it off." if editing else "."),
            ),
            click.option(
                "--per",
                "per_hours",
                type=click.IntRange(min=1),
                default=None,
                metavar="HOURS",
                help="The frequency cap's period in hours, e.g. 24.",
            ),
        ]
    )


def _flag(name: str, *, editing: bool, help: str) -> Callable[[Any], Any]:
    if editing:  # None when not given: `edit` leaves the setting as it is
        return click.option(f"{name}/--no-{name.removeprefix('--')}", default=None, help=help)
    return click.option(name, is_flag=True, help=help)


def file_format_options() -> Callable[[F], F]:
    """--delimiter and --encoding of a CSV the tool reads (`import`, `suppress add`)."""
    return _apply(
        [
            click.option(
                "--delimiter", default=None, help="Field delimiter (default: detect , ; tab |)."
            ),
            click.option(
                "--encoding",
                default=None,
                help="File encoding (default: detect UTF-8, UTF-8 with BOM, UTF-16, Windows-1252, "
                "or UTF-8 with some Windows-1252 lines, decoded line by line with a warning).",
            ),
        ]
    )


def prices_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--prices",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help=help,
    )


def mps_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--mps", type=click.FloatRange(min=0.01, max=MAX_MPS), default=None, help=help
    )


def json_option(help: str = "Print one JSON object.") -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help)


# A budget's bounds: the ledger stores it as text of at most 16 characters (999999999.999999).
MAX_DOLLARS = Decimal(1_000_000_000)
MICRO_DOLLAR = Decimal("0.000001")


class Dollars(click.ParamType):
    """A positive amount in US dollars, as an exact Decimal."""

    name = "dollars"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Decimal):
            return value
        hint = param.opts[0] if param is not None else None
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise click.BadParameter(
                f"{value!r} is not an amount in dollars", ctx, param, hint
            ) from None
        if not amount.is_finite() or amount <= 0:
            raise click.BadParameter("must be a positive amount in dollars", ctx, param, hint)
        if amount >= MAX_DOLLARS:
            raise click.BadParameter(
                f"{value!r} is too large: it must be less than ${MAX_DOLLARS:,}", ctx, param, hint
            )
        if amount != amount.quantize(MICRO_DOLLAR):
            raise click.BadParameter(
                f"{value!r} has more than 6 decimal places (a millionth of a dollar)",
                ctx,
                param,
                hint,
            )
        return Decimal(f"{amount:f}")  # "1e3" -> 1000: the ledger stores and shows plain digits


# `edit --budget none`: the campaign's budget is removed (Dollars never gives zero otherwise).
NO_BUDGET = Decimal(0)


class BudgetOrNone(Dollars):
    """`edit --budget`: DOLLARS, or `none` to remove the campaign's budget (NO_BUDGET)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == "none":
            return NO_BUDGET
        return super().convert(value, param, ctx)


def budget_option(*, editing: bool) -> Callable[[F], F]:
    """The campaign's budget: the most all its runs together may spend, estimated from the price
    table `send --prices` gives (which it then requires)."""
    return click.option(
        "--budget",
        type=BudgetOrNone() if editing else Dollars(),
        default=None,
        metavar="DOLLARS",
        help="The most every send of this campaign together may spend, estimated from "
        "`send --prices` (which it then requires); what earlier runs sent counts"
        + ("; 'none' removes it." if editing else "."),
    )
