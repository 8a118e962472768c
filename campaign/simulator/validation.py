"""Request validation against the service's own limits (docs/aws-facts.md, from the service model).

Written independently of the tool's option checks in campaign/options.py, ON PURPOSE: the
simulator plays the service, and the service does not share code with its clients. If the tool
let a bad MaxPrice, TTL, Context entry or Keyword through, a shared check would wave it through
here too and the tests would pass; kept apart, the simulator answers ValidationException as AWS
would and the end-to-end tests catch the tool's bug. So do not import campaign.options here, and
when a limit changes, change it in both places from the service model.

One deliberate exception: the body's encoding, parts and size come from campaign.message
(`count_body`, `size_problem`), the tool's single part counter, because pacing in parts and the
accepted log must count exactly what the tool counts. That counter is checked on its own against
the documented examples (tests/unit/test_message.py).

botocore checks only required/type/min before sending; everything else the service checks is
checked here, every violated rule listed in Fields as the service does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from campaign.message import BodyCount, count_body, size_problem
from campaign.simulator.errors import validation_error

Problems = list[tuple[str, str]]

# The model's patterns are unanchored; the service evidently applies them to the whole value, and
# destinations must be E.164, i.e. with the leading "+".
E164 = re.compile(r"\+[1-9][0-9]{1,18}")
PHONE_PATTERN = re.compile(r"\+?[1-9][0-9]{1,18}")
IDENTITY_PATTERN = re.compile(r"[A-Za-z0-9_:/\+-]+")
KEYWORD_PATTERN = re.compile(r"[ \S]+")
RESOURCE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_:/-]+")
MAX_PRICE_PATTERN = re.compile(r"[0-9]{0,2}\.[0-9]{1,5}")
_NON_SPACE = re.compile(r"\S+")
_TRIMMED = re.compile(r"(?!\s)^[\s\S]+(?<!\s)")
_FILTER_VALUE = re.compile(r"[/\.:A-Za-z0-9+_-]+")
MESSAGE_TYPES = frozenset({"TRANSACTIONAL", "PROMOTIONAL"})
COUNTRY_PARAMETER_KEYS = frozenset({"IN_ENTITY_ID", "IN_TEMPLATE_ID"})
MAX_BODY_CHARS = 1600
MIN_TTL, MAX_TTL = 5, 259_200
MAX_CONTEXT_ENTRIES = 5
MAX_COUNTRY_PARAMETERS = 10
MAX_DESCRIBE_ITEMS = 5  # PhoneNumberIds, OptedOutNumbers


@dataclass(frozen=True)
class SendRequest:
    """A SendTextMessage request that passed validation."""

    destination: str
    origination: str | None
    body: str
    counted: BodyCount
    message_type: str | None
    keyword: str | None
    configuration_set: str | None
    max_price: str | None
    ttl: int | None
    context: Mapping[str, str] | None
    country_parameters: Mapping[str, str] | None
    dry_run: bool
    protect_configuration_id: str | None = None
    message_feedback: bool = False


def parse_send_request(request: Mapping[str, Any]) -> SendRequest:
    """Validate like the service does; every violated rule is listed in Fields."""
    problems: Problems = []
    destination = _destination(request, problems)
    origination = _string(request, "OriginationIdentity", problems)
    _check(problems, "OriginationIdentity", origination, IDENTITY_PATTERN, 256)
    body, counted, body_reason = _body(request, problems)
    message_type = _string(request, "MessageType", problems)
    if message_type is not None and message_type not in MESSAGE_TYPES:
        problems.append(("MessageType", "must be TRANSACTIONAL or PROMOTIONAL"))
    keyword = _string(request, "Keyword", problems)
    _check(problems, "Keyword", keyword, KEYWORD_PATTERN, 30)
    configuration_set = _string(request, "ConfigurationSetName", problems)
    _check(problems, "ConfigurationSetName", configuration_set, RESOURCE_NAME_PATTERN, 256)
    max_price = _string(request, "MaxPrice", problems)
    _check(problems, "MaxPrice", max_price, MAX_PRICE_PATTERN, 8, min_len=2)
    protect = _string(request, "ProtectConfigurationId", problems)
    _check(problems, "ProtectConfigurationId", protect, RESOURCE_NAME_PATTERN, 256)
    ttl = _ttl(request, problems)
    context = _check_map(
        problems, "Context", request.get("Context"), MAX_CONTEXT_ENTRIES, _context_entry
    )
    country_parameters = _check_map(
        problems,
        "DestinationCountryParameters",
        request.get("DestinationCountryParameters"),
        MAX_COUNTRY_PARAMETERS,
        _country_parameter_entry,
    )
    for flag in ("DryRun", "MessageFeedbackEnabled"):
        if request.get(flag) is not None and not isinstance(request.get(flag), bool):
            problems.append((flag, "must be a boolean"))

    if problems:
        raise validation_error(body_reason or "INVALID_PARAMETER", problems)
    # guaranteed by the checks above
    assert destination is not None and body is not None and counted is not None
    return SendRequest(
        destination=destination,
        origination=origination,
        body=body,
        counted=counted,
        message_type=message_type,
        keyword=keyword,
        configuration_set=configuration_set,
        max_price=max_price,
        ttl=ttl,
        context=context,
        country_parameters=country_parameters,
        dry_run=request.get("DryRun") is True,
        protect_configuration_id=protect,
        message_feedback=request.get("MessageFeedbackEnabled") is True,
    )


def _destination(request: Mapping[str, Any], problems: Problems) -> str | None:
    destination = _string(request, "DestinationPhoneNumber", problems)
    if destination is None and "DestinationPhoneNumber" not in request:
        raise validation_error("MISSING_PARAMETER", [("DestinationPhoneNumber", "is required")])
    if destination is not None:
        if not 1 <= len(destination) <= 20 or not PHONE_PATTERN.fullmatch(destination):
            problems.append(("DestinationPhoneNumber", "must match \\+?[1-9][0-9]{1,18}"))
        elif not E164.fullmatch(destination):
            problems.append(("DestinationPhoneNumber", "must be in E.164 format (+ and digits)"))
    return destination


def _body(
    request: Mapping[str, Any], problems: Problems
) -> tuple[str | None, BodyCount | None, str | None]:
    """The body, its count, and the Reason it imposes on the answer (None: INVALID_PARAMETER)."""
    body = _string(request, "MessageBody", problems)
    if body is None and "MessageBody" not in request:
        problems.append(("MessageBody", "is required"))
        return None, None, "MISSING_PARAMETER"
    if body is None:
        return None, None, None
    if not body:
        problems.append(("MessageBody", "length must be between 1 and 1600"))
        return body, None, None
    if not body.strip():
        problems.append(("MessageBody", "must not be only whitespace"))
        return body, None, None
    counted = count_body(body)
    too_big = size_problem(body, count=counted)
    if too_big is None and len(body) > MAX_BODY_CHARS:
        too_big = f"length must be at most {MAX_BODY_CHARS} characters"
    if too_big is None:
        return body, counted, None
    # The size Reason only when the body is the request's first problem.
    reason = None if problems else "MAXIMUM_SIZE_EXCEEDED"
    problems.append(("MessageBody", too_big))
    return body, counted, reason


def _ttl(request: Mapping[str, Any], problems: Problems) -> int | None:
    ttl = request.get("TimeToLive")
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL:
        problems.append(("TimeToLive", f"must be an integer between {MIN_TTL} and {MAX_TTL}"))
        return None
    return ttl


def _string(request: Mapping[str, Any], name: str, problems: Problems) -> str | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append((name, "must be a string"))
        return None
    return value


def _check(
    problems: Problems,
    name: str,
    value: str | None,
    pattern: re.Pattern[str],
    max_len: int,
    min_len: int = 1,
) -> None:
    if value is None:
        return
    if not min_len <= len(value) <= max_len:
        problems.append((name, f"length must be between {min_len} and {max_len}"))
    elif not pattern.fullmatch(value):
        problems.append((name, f"must match {pattern.pattern}"))


def _check_map(
    problems: Problems,
    name: str,
    value: Any,
    max_entries: int,
    check_entry: Callable[[str, str], str | None],
) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        problems.append((name, "must be a map of strings to strings"))
        return None
    if len(value) > max_entries:
        problems.append((name, f"must have at most {max_entries} entries"))
    for key, item in value.items():
        problem = check_entry(key, item)
        if problem:
            problems.append((f"{name}.{key}", problem))
    return cast(dict[str, str], value)


def _context_entry(key: str, value: str) -> str | None:
    if not 1 <= len(key) <= 100 or not _NON_SPACE.fullmatch(key):
        return "key must be 1-100 characters without whitespace"
    if not 1 <= len(value) <= 800 or not _TRIMMED.fullmatch(value):
        return "value must be 1-800 characters without leading or trailing whitespace"
    return None


def _country_parameter_entry(key: str, value: str) -> str | None:
    if key not in COUNTRY_PARAMETER_KEYS:
        return f"key must be one of {', '.join(sorted(COUNTRY_PARAMETER_KEYS))}"
    if not 1 <= len(value) <= 64 or not _NON_SPACE.fullmatch(value):
        return "value must be 1-64 characters without whitespace"
    return None


# --- the Describe* operations ---------------------------------------------------------------


def phone_number_ids(request: Mapping[str, Any]) -> list[Any] | None:
    """DescribePhoneNumbers' PhoneNumberIds (None or empty: every number)."""
    ids = request.get("PhoneNumberIds")
    if not ids:
        return None
    if not isinstance(ids, list) or len(ids) > MAX_DESCRIBE_ITEMS:
        raise validation_error("INVALID_PARAMETER", [("PhoneNumberIds", "at most 5 ids")])
    return ids


def opt_out_list_name(request: Mapping[str, Any]) -> str:
    name = request.get("OptOutListName")
    if not isinstance(name, str) or not name:
        raise validation_error("MISSING_PARAMETER", [("OptOutListName", "is required")])
    return name


def opted_out_numbers(request: Mapping[str, Any]) -> list[str] | None:
    """DescribeOptedOutNumbers' OptedOutNumbers (None or empty: the whole list)."""
    wanted = request.get("OptedOutNumbers")
    if not wanted:
        return None
    if not isinstance(wanted, list) or len(wanted) > MAX_DESCRIBE_ITEMS:
        raise validation_error("INVALID_PARAMETER", [("OptedOutNumbers", "at most 5 numbers")])
    for number in wanted:
        if not isinstance(number, str) or not PHONE_PATTERN.fullmatch(number):
            raise validation_error(
                "INVALID_PARAMETER", [("OptedOutNumbers", f"{number} is not valid")]
            )
    return wanted


def paginate(items: list[Any], request: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    """One page of `items` per MaxResults/NextToken (the token is an offset; opaque to clients)."""
    token = request.get("NextToken")
    max_results = request.get("MaxResults") or 100
    if not isinstance(max_results, int) or not 1 <= max_results <= 100:
        raise validation_error("INVALID_PARAMETER", [("MaxResults", "must be between 1 and 100")])
    start = 0
    if token is not None:
        if not isinstance(token, str) or not token.isdigit() or int(token) > len(items):
            raise validation_error("INVALID_NEXT_TOKEN", [("NextToken", "is not valid")])
        start = int(token)
    end = start + max_results
    return items[start:end], (str(end) if end < len(items) else None)


def filters(request: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, set[str]]:
    """The request's Filters as name -> accepted values; names outside `allowed` are refused."""
    raw = request.get("Filters") or []
    names = set(allowed)
    result: dict[str, set[str]] = {}
    if not isinstance(raw, list):
        raise validation_error("INVALID_PARAMETER", [("Filters", "must be a list")])
    for item in raw:
        if not isinstance(item, dict) or item.get("Name") not in names:
            raise validation_error(
                "INVALID_FILTER_VALUES", [("Filters", f"Name must be one of {sorted(names)}")]
            )
        values = item.get("Values")
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and _FILTER_VALUE.fullmatch(v) for v in values)
        ):
            raise validation_error("INVALID_FILTER_VALUES", [("Filters", "Values are not valid")])
        result.setdefault(item["Name"], set()).update(values)
    return result


# --- configuration sets and event destinations ----------------------------------------------

CONFIGURATION_SET_NAME = re.compile(r"[A-Za-z0-9_-]+")  # CreateConfigurationSet: 1-64
EVENT_DESTINATION_NAME = re.compile(r"[A-Za-z0-9_-]+")  # 1-64
ARN_PATTERN = re.compile(r"arn:\S+")
# The service's EventType enum grows (RCS_*, MEDIA_* came later): a shape check, not a frozen list.
EVENT_TYPE = re.compile(r"ALL|(?:TEXT|VOICE|MEDIA|RCS)_[A-Z_]+")
MAX_EVENT_TYPES = 52
MAX_CONFIGURATION_SET_NAMES = 5
DESTINATION_KINDS = ("CloudWatchLogsDestination", "KinesisFirehoseDestination", "SnsDestination")
# The members each kind of destination requires (all ARNs).
DESTINATION_MEMBERS = {
    "CloudWatchLogsDestination": ("IamRoleArn", "LogGroupArn"),
    "KinesisFirehoseDestination": ("IamRoleArn", "DeliveryStreamArn"),
    "SnsDestination": ("TopicArn",),
}


def required_name(
    request: Mapping[str, Any], name: str, pattern: re.Pattern[str], max_len: int
) -> str:
    """A required string member checked against its pattern and length."""
    value = request.get(name)
    if value is None:
        raise validation_error("MISSING_PARAMETER", [(name, "is required")])
    problems: Problems = []
    if not isinstance(value, str):
        problems.append((name, "must be a string"))
    else:
        _check(problems, name, value, pattern, max_len)
    if problems:
        raise validation_error("INVALID_PARAMETER", problems)
    return cast(str, value)


def matching_event_types(request: Mapping[str, Any], required: bool) -> tuple[str, ...] | None:
    types = request.get("MatchingEventTypes")
    if types is None:
        if required:
            raise validation_error("MISSING_PARAMETER", [("MatchingEventTypes", "is required")])
        return None
    if (
        not isinstance(types, list)
        or not 1 <= len(types) <= MAX_EVENT_TYPES
        or not all(isinstance(t, str) and EVENT_TYPE.fullmatch(t) for t in types)
    ):
        raise validation_error(
            "INVALID_PARAMETER",
            [("MatchingEventTypes", f"1-{MAX_EVENT_TYPES} event types such as TEXT_ALL")],
        )
    return tuple(dict.fromkeys(types))


def event_destination_target(
    request: Mapping[str, Any], required: bool
) -> tuple[str, dict[str, str]] | None:
    """The one destination of CreateEventDestination/UpdateEventDestination: (kind, members)."""
    given = [kind for kind in DESTINATION_KINDS if request.get(kind) is not None]
    if not given and not required:
        return None
    if len(given) != 1:
        raise validation_error(
            "PARAMETERS_CANNOT_BE_USED_TOGETHER" if given else "MISSING_PARAMETER",
            [("EventDestination", f"exactly one of {', '.join(DESTINATION_KINDS)}")],
        )
    kind = given[0]
    members = request[kind]
    if not isinstance(members, dict):
        raise validation_error("INVALID_PARAMETER", [(kind, "must be a structure")])
    problems: Problems = []
    for member in DESTINATION_MEMBERS[kind]:
        value = members.get(member)
        if not isinstance(value, str):
            problems.append((f"{kind}.{member}", "is required"))
            continue
        _check(problems, f"{kind}.{member}", value, ARN_PATTERN, 2048, min_len=20)
    if problems:
        raise validation_error("INVALID_ARN", problems)
    return kind, {m: members[m] for m in DESTINATION_MEMBERS[kind]}


def configuration_set_names(request: Mapping[str, Any]) -> list[str] | None:
    """DescribeConfigurationSets' ConfigurationSetNames (names or ARNs; None or empty: all)."""
    names = request.get("ConfigurationSetNames")
    if not names:
        return None
    if (
        not isinstance(names, list)
        or len(names) > MAX_CONFIGURATION_SET_NAMES
        or not all(
            isinstance(n, str) and 1 <= len(n) <= 256 and RESOURCE_NAME_PATTERN.fullmatch(n)
            for n in names
        )
    ):
        raise validation_error(
            "INVALID_PARAMETER",
            [("ConfigurationSetNames", f"at most {MAX_CONFIGURATION_SET_NAMES} names or ARNs")],
        )
    return names
