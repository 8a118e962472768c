"""SendTextMessage option values, checked against the service's own limits (docs/aws-facts.md)
before anything is stored: the user hears about a bad MaxPrice at `create`, not a million calls
later.

`CampaignOptions` is a campaign's settings as the user typed them (`create`, `edit`); `campaign_spec`
and `CampaignOptions.changes` check every one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from campaign.audience.windows import (
    WindowError,
    WindowPolicy,
    days_spec,
    default_policy,
    parse_days,
    policy_from_options,
)
from campaign.domain import CampaignSpec
from campaign.errors import UserError
from campaign.message import MissingMergeValue, Template, TemplateError, size_problem

MESSAGE_TYPES = ("PROMOTIONAL", "TRANSACTIONAL")
MAX_PRICE_RE = re.compile(r"[0-9]{0,2}\.[0-9]{1,5}")
# The service takes any MaxPrice of the right form, then refuses every message dearer than it
# (PRICE_OVER_THRESHOLD). As far as we know no destination in AWS's SMS price table costs less
# than a tenth of a cent a part (the cheapest cost a few tenths, like India's 0.0022 in
# samples/prices.csv), so a MaxPrice below this floor, such as 0.000 or 0.00001, could only refuse
# the whole campaign, one call at a time. Low enough never to refuse a price that works.
MIN_MAX_PRICE = Decimal("0.00100")
# A phone number as the service takes it: E.164, "+" and up to 15 digits.
E164_RE = re.compile(r"\+[1-9][0-9]{1,14}")
ORIGINATION_RE = re.compile(r"[A-Za-z0-9_:/+\-]+")
CONFIGURATION_SET_RE = re.compile(r"[A-Za-z0-9_:/\-]+")
KEYWORD_RE = re.compile(r"[ \S]+")
NO_SPACE_RE = re.compile(r"\S+")
TTL_MIN, TTL_MAX = 5, 259_200
COUNTRY_PARAMETER_KEYS = ("IN_ENTITY_ID", "IN_TEMPLATE_ID")
# The service allows 5 Context entries; the tool keeps 2 for itself (campaign and recipient), so
# delivery events can be matched back to the ledger.
CONTEXT_KEY_CAMPAIGN = "campaign"
CONTEXT_KEY_RECIPIENT = "recipient"
MAX_USER_CONTEXT = 3
# The frequency cap's bounds: a cap per hour up to one per year.
MAX_PER_RECIPIENT = 1_000
MAX_PER_HOURS = 8_760


class OptionError(UserError, ValueError):
    """An option value the service would reject; the message names the option and the rule."""


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise OptionError("campaign name must be 1-200 characters")
    return name


def check_origination_identity(value: str) -> str:
    if not 1 <= len(value) <= 256 or not ORIGINATION_RE.fullmatch(value):
        raise OptionError(
            f"--origination-identity {value!r} is not valid: 1-256 characters of letters, digits "
            "and _ : / + - (a phone number in E.164, a sender ID, a pool ID or an ARN)"
        )
    if value.startswith("+"):  # a phone number; sender IDs, pool IDs and ARNs never start so
        problem = _phone_number_problem(value)
        if problem:
            raise OptionError(
                f"--origination-identity {value!r} is not a phone number in E.164 ({problem}): "
                "write it like +12065550100"
            )
    return value


def _phone_number_problem(value: str) -> str | None:
    """Why `value` cannot be a phone number the account owns, or None.

    Possible (the right length for its country), not valid: libphonenumber's validity tables lag
    newly opened ranges and call reserved test ranges invalid, while a leased number never has an
    impossible length. A truncated paste (`+1206555`) does."""
    import phonenumbers

    if not E164_RE.fullmatch(value):
        return "a + and up to 15 digits, no spaces or dashes"
    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException:
        return "no such country calling code"
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible == phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    if possible == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        return "no such country calling code"
    if possible == phonenumbers.ValidationResult.TOO_SHORT:
        return "too short"
    if possible == phonenumbers.ValidationResult.TOO_LONG:
        return "too long"
    if possible == phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        return "a local number: its area code is missing"
    return "the wrong length for its country"


def check_message_type(value: str) -> str:
    upper = value.upper()
    if upper not in MESSAGE_TYPES:
        raise OptionError(f"--message-type must be PROMOTIONAL or TRANSACTIONAL, not {value!r}")
    return upper


def check_max_price(value: str | None) -> str | None:
    if value is None:
        return None
    if not 2 <= len(value) <= 8 or not MAX_PRICE_RE.fullmatch(value):
        raise OptionError(
            f"--max-price {value!r} is not valid: US dollars per message written like 0.05 or .0075 "
            "(up to 2 digits, a point, 1-5 decimals; at most 99.99999)"
        )
    if Decimal(value) < MIN_MAX_PRICE:
        raise OptionError(
            f"--max-price {value} is below what any SMS costs: AWS would refuse every message "
            f"(PRICE_OVER_THRESHOLD); give at least {MIN_MAX_PRICE} (US dollars per message)"
        )
    return value


def check_ttl(value: int | None) -> int | None:
    if value is None:
        return None
    if not TTL_MIN <= value <= TTL_MAX:
        raise OptionError(
            f"--ttl {value} is out of range: {TTL_MIN} to {TTL_MAX} seconds (72 hours)"
        )
    return value


def check_keyword(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 30 or not KEYWORD_RE.fullmatch(value):
        raise OptionError(f"--keyword {value!r} is not valid: 1-30 characters, no line breaks")
    return value


def check_configuration_set(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 256 or not CONFIGURATION_SET_RE.fullmatch(value):
        raise OptionError(
            f"--configuration-set {value!r} is not valid: 1-256 letters, digits and _ : / -"
        )
    return value


def check_protect_configuration_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 256 or not CONFIGURATION_SET_RE.fullmatch(value):
        raise OptionError(f"--protect-configuration-id {value!r} is not valid")
    return value


def parse_pairs(pairs: Iterable[str], option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise OptionError(f"{option} {pair!r} must be KEY=VALUE")
        key = key.strip()
        if key in result:
            raise OptionError(f"{option} key {key!r} is given twice")
        result[key] = value
    return result


def check_context(context: Mapping[str, str]) -> dict[str, str]:
    if len(context) > MAX_USER_CONTEXT:
        raise OptionError(
            f"--context takes at most {MAX_USER_CONTEXT} entries (the service allows 5 and the tool "
            f"uses 2 to tie delivery events to the ledger); got {len(context)}"
        )
    for key, value in context.items():
        if not 1 <= len(key) <= 100 or not NO_SPACE_RE.fullmatch(key):
            raise OptionError(f"--context key {key!r} must be 1-100 characters with no spaces")
        if key in (CONTEXT_KEY_CAMPAIGN, CONTEXT_KEY_RECIPIENT):
            raise OptionError(f"--context key {key!r} is reserved by the tool")
        if not 1 <= len(value) <= 800:
            raise OptionError(f"--context {key} value must be 1-800 characters")
        if value != value.strip():
            raise OptionError(f"--context {key} value must not start or end with whitespace")
    return dict(context)


def check_country_parameters(params: Mapping[str, str]) -> dict[str, str]:
    for key, value in params.items():
        if key not in COUNTRY_PARAMETER_KEYS:
            raise OptionError(
                f"--country-parameter key {key!r} is not one of {', '.join(COUNTRY_PARAMETER_KEYS)}"
            )
        if not 1 <= len(value) <= 64 or not NO_SPACE_RE.fullmatch(value):
            raise OptionError(f"--country-parameter {key} value must be 1-64 characters, no spaces")
    return dict(params)


def check_template(text: str) -> Template:
    """Parse the message template; a static body is also checked against the service's size limit."""
    if "\x00" in text:
        # No SMS carries it, and PostgreSQL's text cannot hold it: one clear line on every ledger.
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise OptionError(f"message has a NUL character (line {line}); is it a binary file?")
    try:
        template = Template.parse(text)
    except TemplateError as exc:
        raise OptionError(f"message template: {exc}") from None
    if template.is_static:
        try:
            body = template.render({})
        except MissingMergeValue:  # pragma: no cover - a static template has no fields
            body = text
        problem = size_problem(body)
        if problem:
            raise OptionError(problem)
    elif not template.literal_text.strip() and not template.columns:
        raise OptionError("message is empty")
    elif template.literal_text.strip():
        # Fields only add characters: text already too long without them fails every row.
        problem = size_problem(template.literal_text)
        if problem:
            raise OptionError(f"even without its fields, the {problem}")
    return template


# -- when and how often (round 2: sending windows, deadline, frequency cap) ---------------------------

# The stored columns of a window: `window` (WindowPolicy.spec without the days; None: the message
# type's default; "none": --no-window) and `days` (--days, applied to whatever window is in force).
WindowColumns = tuple[str | None, str | None]


def window_columns(
    message_type: str,
    window: str | None,
    days: str | None,
    no_window: bool,
    current: WindowColumns = (None, None),
) -> WindowColumns:
    """--window/--days/--no-window as the `window` and `days` columns, each checked (one line
    naming the option when not). `edit` passes the campaign's `current` columns: what is not
    given stays; `--window default` goes back to the message type's default."""
    if no_window:
        policy_from_options(message_type, window, days, no_window=True)  # refuses a contradiction
        return "none", None
    stored, stored_days = current
    if window is not None:
        if window.strip().lower() == "default":
            stored = None
        else:
            stored = policy_from_options(message_type, window, None, no_window=False).spec
    if days is not None:
        stored_days = days_spec(parse_days(days))
    check_days_have_a_window(message_type, stored, stored_days)
    return stored, stored_days


def check_days_have_a_window(message_type: str, window: str | None, days: str | None) -> None:
    policy = WindowPolicy.from_spec(window) if window else default_policy(message_type)
    if days and not policy.has_windows:
        why = "it has --no-window" if window else f"{message_type.upper()} has no default window"
        raise WindowError(
            f"--days {days} needs a window and {why}: give --window HH:MM-HH:MM with it"
        )


def check_deadline(value: str | None) -> datetime | None:
    """--deadline as an aware UTC datetime; "none" (for `edit`) removes it."""
    if value is None or value.strip().lower() == "none":
        return None
    from campaign.audience.deadline import parse_deadline  # it imports this module's TTL limits

    return parse_deadline(value)


def check_frequency_cap(
    max_per_recipient: int | None,
    per_hours: int | None,
    current: tuple[int | None, int | None] = (None, None),
) -> tuple[int | None, int | None]:
    """--max-per-recipient N --per HOURS as the (max_per_recipient, per_hours) columns; N = 0
    turns the cap off. `edit` passes the `current` pair: one of the two may change alone."""
    if max_per_recipient == 0:
        return None, None
    count = max_per_recipient if max_per_recipient is not None else current[0]
    hours = per_hours if per_hours is not None else current[1]
    if count is None and hours is None:
        return None, None
    if count is None:
        raise OptionError(f"--per {hours} needs --max-per-recipient N (e.g. 3 --per 24)")
    if hours is None:
        raise OptionError(
            f"--max-per-recipient {count} needs --per HOURS (e.g. --max-per-recipient 3 --per 24)"
        )
    if not 1 <= count <= MAX_PER_RECIPIENT:
        raise OptionError(
            f"--max-per-recipient {count} is out of range: 1 to {MAX_PER_RECIPIENT} (0: no cap)"
        )
    if not 1 <= hours <= MAX_PER_HOURS:
        raise OptionError(f"--per {hours} is out of range: 1 to {MAX_PER_HOURS} hours (a year)")
    return count, hours


def read_message_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise OptionError(f"{path} is not UTF-8 text") from None


@dataclass(frozen=True)
class CampaignOptions:
    """A campaign's settings as given on the command line, not checked yet. None: not given."""

    origination_identity: str | None = None
    message: str | None = None
    message_file: Path | None = None
    message_type: str | None = None
    configuration_set: str | None = None
    max_price: str | None = None
    ttl: int | None = None
    keyword: str | None = None
    protect_configuration_id: str | None = None
    contexts: tuple[str, ...] = ()  # KEY=VALUE
    country_parameters: tuple[str, ...] = ()  # KEY=VALUE
    message_feedback: bool | None = None
    gsm_safe: bool | None = None
    window: str | None = None  # --window HH:MM-HH:MM ("default" on edit)
    days: str | None = None  # --days
    no_window: bool = False  # --no-window
    deadline: str | None = None  # --deadline ISO-8601 ("none" on edit)
    max_per_recipient: int | None = None  # --max-per-recipient N (0: no cap)
    per_hours: int | None = None  # --per HOURS

    def template(self) -> Template | None:
        """The message template from --message or --message-file, checked (None: neither)."""
        text = self.message
        if self.message_file is not None:
            text = read_message_file(self.message_file)
        return None if text is None else check_template(text)

    def changes(self, current: CampaignSpec | None = None) -> dict[str, Any]:
        """`edit`: the campaign columns to change, each value checked; options not given are left
        out. `current`: the campaign as stored (its window and cap are changed, not replaced)."""
        changes: dict[str, Any] = {}
        template = self.template()
        if template is not None:
            changes["template"] = template.source
        checks: dict[str, Any] = {
            "origination_identity": check_origination_identity,
            "message_type": check_message_type,
            "configuration_set": check_configuration_set,
            "max_price": check_max_price,
            "ttl": check_ttl,
            "keyword": check_keyword,
            "protect_configuration_id": check_protect_configuration_id,
            "gsm_safe": bool,
            "message_feedback": bool,
        }
        for column, check in checks.items():
            value = getattr(self, column)
            if value is not None:
                changes[column] = check(value)
        changes.update(self._when_changes(current, changes.get("message_type")))
        return changes

    def _when_changes(
        self, current: CampaignSpec | None, message_type: str | None
    ) -> dict[str, Any]:
        """`edit`'s window, deadline and cap columns (only those given)."""
        changes: dict[str, Any] = {}
        stored: WindowColumns = (current.window, current.days) if current else (None, None)
        kind = message_type or (current.message_type if current else MESSAGE_TYPES[0])
        if self.window is not None or self.days is not None or self.no_window:
            window, days = window_columns(kind, self.window, self.days, self.no_window, stored)
            changes.update(window=window, days=days)
        elif message_type is not None:
            check_days_have_a_window(kind, *stored)  # a new type may have no default window
        if self.deadline is not None:
            changes["deadline"] = check_deadline(self.deadline)
        if self.max_per_recipient is not None or self.per_hours is not None:
            cap = (current.max_per_recipient, current.per_hours) if current else (None, None)
            count, hours = check_frequency_cap(self.max_per_recipient, self.per_hours, cap)
            changes.update(max_per_recipient=count, per_hours=hours)
        return changes


def campaign_spec(name: str, options: CampaignOptions) -> tuple[CampaignSpec, Template]:
    """`create`: every setting checked, and the parsed template (for the columns it uses)."""
    template = options.template()
    if template is None:
        raise OptionError("give the message with --message or --message-file")
    message_type = check_message_type(options.message_type or MESSAGE_TYPES[0])
    window, days = window_columns(message_type, options.window, options.days, options.no_window)
    max_per_recipient, per_hours = check_frequency_cap(options.max_per_recipient, options.per_hours)
    spec = CampaignSpec(
        name=check_name(name),
        template=template.source,
        origination_identity=check_origination_identity(options.origination_identity or ""),
        message_type=message_type,
        configuration_set=check_configuration_set(options.configuration_set),
        max_price=check_max_price(options.max_price),
        ttl=check_ttl(options.ttl),
        keyword=check_keyword(options.keyword),
        protect_configuration_id=check_protect_configuration_id(options.protect_configuration_id),
        context=check_context(parse_pairs(options.contexts, "--context")),
        country_parameters=check_country_parameters(
            parse_pairs(options.country_parameters, "--country-parameter")
        ),
        message_feedback=bool(options.message_feedback),
        gsm_safe=bool(options.gsm_safe),
        window=window,
        days=days,
        deadline=check_deadline(options.deadline),
        max_per_recipient=max_per_recipient,
        per_hours=per_hours,
    )
    return spec, template
