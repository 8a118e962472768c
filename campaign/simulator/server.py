"""A local endpoint that speaks the real wire protocol of AWS End User Messaging SMS.

boto3 talks to it exactly as it talks to AWS (JSON 1.0 over HTTP/1.1, ``X-Amz-Target`` dispatch,
modeled error bodies), so tests, the demo, the benchmarks and users' rehearsals all exercise
botocore's real code path. It implements SendTextMessage (validated like the service, paced in
message parts per second per origination identity), DescribePhoneNumbers and
DescribeOptedOutNumbers, plus fault injection for the cases a sender must survive.

Nothing is ever delivered: accepted messages go to memory and, optionally, a JSON Lines log.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import ipaddress
import json
import random
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, MappingProxyType
from typing import IO, Any, cast

import phonenumbers

from campaign.message import BodyCount, count_body, size_problem

__all__ = [
    "DEFAULT_IDENTITIES",
    "FAILURE_DESTINATIONS",
    "SUCCESS_DESTINATIONS",
    "SimulatedIdentity",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "load_numbers",
    "run_simulator",
]

TARGET_PREFIX = "PinpointSMSVoiceV2."
ERROR_NAMESPACE = "com.amazonaws.pinpointsmsvoicev2#"
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"

# AWS's own simulator destinations (aws-facts.md): both kinds are accepted by SendTextMessage;
# only the delivery event differs.
SUCCESS_DESTINATIONS = frozenset({"+14254147755", "+447860019066", "+61455944038"})
FAILURE_DESTINATIONS = frozenset({"+14254147167", "+447860019067", "+61455944039"})
EVENT_DELIVERED = "TEXT_DELIVERED"
EVENT_FAILED = "TEXT_UNREACHABLE"

SENDER_ID = "SENDER_ID"  # our NumberType stand-in for alphanumeric sender ids
NUMBER_TYPES = frozenset(
    {"SHORT_CODE", "LONG_CODE", "TOLL_FREE", "TEN_DLC", "SIMULATOR", SENDER_ID}
)
MESSAGE_TYPES = frozenset({"TRANSACTIONAL", "PROMOTIONAL"})

# Exceptions SendTextMessage can raise (service model), usable in reject_destinations.
SEND_EXCEPTIONS = frozenset(
    {
        "ServiceQuotaExceededException",
        "ThrottlingException",
        "AccessDeniedException",
        "ResourceNotFoundException",
        "ValidationException",
        "ConflictException",
        "InternalServerException",
    }
)

# Request constraints from the service model (botocore checks only required/type/min). The
# model's patterns are unanchored; the service evidently applies them to the whole value, and
# destinations must be E.164, i.e. with the leading "+".
_E164 = re.compile(r"\+[1-9][0-9]{1,18}")
_PHONE_PATTERN = re.compile(r"\+?[1-9][0-9]{1,18}")
_IDENTITY = re.compile(r"[A-Za-z0-9_:/\+-]+")
_KEYWORD = re.compile(r"[ \S]+")
_RESOURCE_NAME = re.compile(r"[A-Za-z0-9_:/-]+")
_MAX_PRICE = re.compile(r"[0-9]{0,2}\.[0-9]{1,5}")
_NON_SPACE = re.compile(r"\S+")
_TRIMMED = re.compile(r"(?!\s)^[\s\S]+(?<!\s)")
_FILTER_VALUE = re.compile(r"[/\.:A-Za-z0-9+_-]+")
COUNTRY_PARAMETER_KEYS = frozenset({"IN_ENTITY_ID", "IN_TEMPLATE_ID"})
MAX_BODY_CHARS = 1600
MIN_TTL, MAX_TTL = 5, 259_200
MAX_CONTEXT_ENTRIES = 5


@dataclass(frozen=True)
class SimulatedIdentity:
    """An origination identity the simulated account owns: a phone number or a sender id."""

    value: str  # E.164 number, short code digits, or sender id text
    number_type: str  # a NumberType of the service model, or SENDER_ID
    iso_country_code: str
    message_type: str = "TRANSACTIONAL"
    mps: float | None = None  # this identity's own MPS; None = SimulatorConfig.mps

    def __post_init__(self) -> None:
        if self.number_type not in NUMBER_TYPES:
            raise ValueError(f"unknown number type {self.number_type!r}")
        if self.message_type not in MESSAGE_TYPES:
            raise ValueError(f"unknown message type {self.message_type!r}")
        if self.mps is not None and self.mps <= 0:
            raise ValueError("identity mps must be positive")

    @property
    def is_sender_id(self) -> bool:
        return self.number_type == SENDER_ID

    @property
    def resource_id(self) -> str:
        # Stable ids so tests and users can rely on them across runs, shaped like AWS's.
        digest = hashlib.sha256(self.value.encode()).hexdigest()[:32]
        return f"senderid-{digest}" if self.is_sender_id else f"phone-{digest}"

    def arn(self, region: str, account_id: str) -> str:
        prefix = f"arn:aws:sms-voice:{region}:{account_id}"
        if self.is_sender_id:
            return f"{prefix}:sender-id/{self.value}/{self.iso_country_code}"
        return f"{prefix}:phone-number/{self.resource_id}"


DEFAULT_IDENTITIES: tuple[SimulatedIdentity, ...] = (
    SimulatedIdentity("+12065550100", "TEN_DLC", "US"),
    SimulatedIdentity("+18335550123", "TOLL_FREE", "US"),
    SimulatedIdentity("+447700900123", "LONG_CODE", "GB"),
    SimulatedIdentity("55500", "SHORT_CODE", "US"),
    SimulatedIdentity("CAMPAIGN", SENDER_ID, "GB"),
)

_FAULT_RATES = ("throttle_rate", "error_rate", "drop_rate", "timeout_rate")
# What set_faults may change while serving; the rest (host, port, log, identities) is fixed.
_RUNTIME_SETTINGS = frozenset(
    {
        *_FAULT_RATES,
        "timeout_delay_s",
        "fail_after",
        "fail_reason",
        "mps",
        "dry_run_mps",
        "latency_ms",
        "jitter_ms",
        "reject_destinations",
        "price_per_part",
        "accept_any_identity",
        "configuration_sets",
        "verbose",
    }
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything the simulator does, fixed at start; fault settings can change via set_faults."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port; read the result from Simulator.url
    mps: float = 20  # message parts per second per origination identity
    dry_run_mps: float = 5  # AWS caps DryRun at 5 MPS (or the identity's lower limit)
    latency_ms: float = 0
    jitter_ms: float = 0  # uniform 0..jitter_ms added to latency_ms
    identities: tuple[SimulatedIdentity, ...] = DEFAULT_IDENTITIES
    accept_any_identity: bool = False
    configuration_sets: frozenset[str] = frozenset({"default"})
    opted_out: frozenset[str] = frozenset()
    opt_out_file: Path | None = None  # more opted-out numbers, one per line
    opt_out_list_name: str = "Default"
    throttle_rate: float = 0.0  # extra ThrottlingException, nothing sent
    error_rate: float = 0.0  # HTTP 500 InternalServerException, nothing sent
    drop_rate: float = 0.0  # accepted and logged, then the connection closes without a response
    timeout_rate: float = 0.0  # accepted and logged, then the response waits timeout_delay_s
    timeout_delay_s: float = 30.0
    fail_after: int | None = None  # after N accepted non-dry-run messages, every send fails
    fail_reason: str = "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"
    # destination -> (exception name, Reason) for per-number errors in tests
    reject_destinations: Mapping[str, tuple[str, str]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # ISO country (or "*") -> USD per part; with MaxPrice, parts x price > MaxPrice is rejected
    price_per_part: Mapping[str, float] | None = None
    seed: int | None = None
    log_path: Path | None = None  # JSON Lines, one object per accepted message
    max_records_in_memory: int | None = None  # bound Simulator.accepted() for long rehearsals
    request_queue_size: int = 1024  # listen backlog: the sender opens ~150 connections at once
    verbose: bool = False  # log each request to stderr
    region: str = "us-east-1"
    account_id: str = "111122223333"

    def __post_init__(self) -> None:
        if not _is_loopback(self.host):
            raise ValueError(f"the simulator binds to loopback only, not {self.host!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.mps <= 0 or self.dry_run_mps <= 0:
            raise ValueError("mps and dry_run_mps must be positive")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.timeout_delay_s < 0:
            raise ValueError("latency_ms, jitter_ms and timeout_delay_s must not be negative")
        for name in _FAULT_RATES:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if self.fail_after is not None and self.fail_after < 0:
            raise ValueError("fail_after must not be negative")
        for number, (exc_name, _reason) in self.reject_destinations.items():
            if exc_name not in SEND_EXCEPTIONS:
                raise ValueError(f"reject_destinations[{number!r}]: unknown exception {exc_name}")
        if self.max_records_in_memory is not None and self.max_records_in_memory < 0:
            raise ValueError("max_records_in_memory must not be negative")


@dataclass(frozen=True)
class SimulatorStats:
    """Counters since start; a consistent snapshot taken under the simulator's lock."""

    requests: int = 0
    accepted: int = 0  # dry runs included
    dry_run: int = 0
    throttled: int = 0
    errors: int = 0  # HTTP 5xx answers
    rejected: int = 0  # 4xx answers other than throttling
    dropped: int = 0
    timed_out: int = 0
    operations: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["operations"] = dict(self.operations)
        return data


def load_numbers(path: Path) -> frozenset[str]:
    """Numbers from a file of one per line; blank lines and '#' comments are skipped."""
    numbers = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            numbers.add(text)
    return frozenset(numbers)


class ApiError(Exception):
    """An error response of the service: botocore maps `name` to client.exceptions.<name>."""

    def __init__(self, name: str, message: str, *, status: int = 400, **members: Any) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.status = status
        self.members = {k: v for k, v in members.items() if v is not None}

    def payload(self, request_id: str) -> dict[str, Any]:
        # botocore reads the code from __type and the message from "message" or "Message";
        # the modeled members (Message, Reason, Fields, ...) land at the top of error.response.
        body: dict[str, Any] = {
            "__type": ERROR_NAMESPACE + self.name,
            "message": self.message,
            "Message": self.message,
            **self.members,
        }
        if self.name == "InternalServerException":
            body.setdefault("RequestId", request_id)
        return body


def _validation(reason: str, fields: list[tuple[str, str]], message: str | None = None) -> ApiError:
    text = message or "; ".join(f"{name}: {msg}" for name, msg in fields) or reason
    return ApiError(
        "ValidationException",
        text,
        Reason=reason,
        Fields=[{"Name": name, "Message": msg} for name, msg in fields],
    )


def _error_for(exc_name: str, reason: str, destination: str) -> ApiError:
    """The configured error of reject_destinations, with the members its shape has."""
    message = f"{reason} for {destination}" if reason else f"rejected {destination}"
    if exc_name == "ValidationException":
        return _validation(reason, [("DestinationPhoneNumber", message)], message)
    if exc_name == "ConflictException":
        return ApiError(
            exc_name, message, Reason=reason, ResourceType="phone-number", ResourceId=destination
        )
    if exc_name == "ResourceNotFoundException":
        return ApiError(exc_name, message, ResourceType="phone-number", ResourceId=destination)
    if exc_name == "InternalServerException":
        return ApiError(exc_name, message, status=500)
    if exc_name == "ThrottlingException":
        return ApiError(exc_name, message)
    return ApiError(exc_name, message, Reason=reason or None)


def _country_of(number: str) -> str | None:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None


class _TokenBucket:
    """One identity's parts-per-second budget; starts full, about one second's worth like AWS."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens: float | None = None  # None = full, whatever the first message needs
        self.updated = 0.0

    def take(self, parts: int, now: float) -> bool:
        # Capacity max(rate, parts): a message bigger than one second's budget is not throttled
        # forever, it waits until parts/rate seconds have accrued.
        capacity = max(self.rate, float(parts))
        if self.tokens is None:
            self.tokens = capacity
        else:
            self.tokens = min(capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if parts > self.tokens:
            return False  # throttled requests consume nothing
        self.tokens -= parts
        return True


@dataclass(frozen=True)
class _Reply:
    status: int
    payload: Mapping[str, Any]
    request_id: str
    delay_s: float = 0.0
    drop: bool = False  # close the connection without answering


def _string(request: Mapping[str, Any], name: str, problems: list[tuple[str, str]]) -> str | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append((name, "must be a string"))
        return None
    return value


def _check(
    problems: list[tuple[str, str]],
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
    problems: list[tuple[str, str]],
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


@dataclass(frozen=True)
class _SendRequest:
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


def _parse_send(request: Mapping[str, Any]) -> _SendRequest:
    """Validate like the service does; every violated rule is listed in Fields."""
    problems: list[tuple[str, str]] = []
    reason = "INVALID_PARAMETER"

    destination = _string(request, "DestinationPhoneNumber", problems)
    if destination is None and "DestinationPhoneNumber" not in request:
        raise _validation("MISSING_PARAMETER", [("DestinationPhoneNumber", "is required")])
    if destination is not None:
        if not 1 <= len(destination) <= 20 or not _PHONE_PATTERN.fullmatch(destination):
            problems.append(("DestinationPhoneNumber", "must match \\+?[1-9][0-9]{1,18}"))
        elif not _E164.fullmatch(destination):
            problems.append(("DestinationPhoneNumber", "must be in E.164 format (+ and digits)"))

    origination = _string(request, "OriginationIdentity", problems)
    _check(problems, "OriginationIdentity", origination, _IDENTITY, 256)

    body = _string(request, "MessageBody", problems)
    counted = None
    if body is None and "MessageBody" not in request:
        problems.append(("MessageBody", "is required"))
        reason = "MISSING_PARAMETER"
    elif body is not None:
        if not body:
            problems.append(("MessageBody", "length must be between 1 and 1600"))
        elif not body.strip():
            problems.append(("MessageBody", "must not be only whitespace"))
        else:
            counted = count_body(body)
            too_big = size_problem(body, count=counted)
            if too_big is None and len(body) > MAX_BODY_CHARS:
                too_big = f"length must be at most {MAX_BODY_CHARS} characters"
            if too_big is not None:
                if not problems:
                    reason = "MAXIMUM_SIZE_EXCEEDED"
                problems.append(("MessageBody", too_big))

    message_type = _string(request, "MessageType", problems)
    if message_type is not None and message_type not in MESSAGE_TYPES:
        problems.append(("MessageType", "must be TRANSACTIONAL or PROMOTIONAL"))

    keyword = _string(request, "Keyword", problems)
    _check(problems, "Keyword", keyword, _KEYWORD, 30)
    configuration_set = _string(request, "ConfigurationSetName", problems)
    _check(problems, "ConfigurationSetName", configuration_set, _RESOURCE_NAME, 256)
    max_price = _string(request, "MaxPrice", problems)
    _check(problems, "MaxPrice", max_price, _MAX_PRICE, 8, min_len=2)
    protect = _string(request, "ProtectConfigurationId", problems)
    _check(problems, "ProtectConfigurationId", protect, _RESOURCE_NAME, 256)

    ttl = request.get("TimeToLive")
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL <= ttl <= MAX_TTL
    ):
        problems.append(("TimeToLive", f"must be an integer between {MIN_TTL} and {MAX_TTL}"))
        ttl = None

    context = _check_map(
        problems, "Context", request.get("Context"), MAX_CONTEXT_ENTRIES, _context_entry
    )
    country_parameters = _check_map(
        problems,
        "DestinationCountryParameters",
        request.get("DestinationCountryParameters"),
        10,
        _country_parameter_entry,
    )
    for flag in ("DryRun", "MessageFeedbackEnabled"):
        if request.get(flag) is not None and not isinstance(request.get(flag), bool):
            problems.append((flag, "must be a boolean"))

    if problems:
        raise _validation(reason, problems)
    # guaranteed by the checks above
    assert destination is not None and body is not None and counted is not None
    return _SendRequest(
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
        protect_configuration_id=_optional_str(request.get("ProtectConfigurationId")),
        message_feedback=request.get("MessageFeedbackEnabled") is True,
    )


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _resource_type_of(identity: str) -> str:
    """What kind of resource an unknown OriginationIdentity names, for ResourceNotFoundException."""
    if ":sender-id/" in identity or identity.startswith("senderid-"):
        return "sender-id"
    if ":pool/" in identity or identity.startswith("pool-"):
        return "pool"
    if ":phone-number/" in identity or identity.startswith("phone-"):
        return "phone-number"
    return "phone-number" if _PHONE_PATTERN.fullmatch(identity) else "sender-id"


def _paginate(items: list[Any], request: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    token = request.get("NextToken")
    max_results = request.get("MaxResults") or 100
    if not isinstance(max_results, int) or not 1 <= max_results <= 100:
        raise _validation("INVALID_PARAMETER", [("MaxResults", "must be between 1 and 100")])
    start = 0
    if token is not None:
        if not isinstance(token, str) or not token.isdigit() or int(token) > len(items):
            raise _validation("INVALID_NEXT_TOKEN", [("NextToken", "is not valid")])
        start = int(token)
    end = start + max_results
    return items[start:end], (str(end) if end < len(items) else None)


def _filters(request: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, set[str]]:
    raw = request.get("Filters") or []
    names = set(allowed)
    result: dict[str, set[str]] = {}
    if not isinstance(raw, list):
        raise _validation("INVALID_PARAMETER", [("Filters", "must be a list")])
    for item in raw:
        if not isinstance(item, dict) or item.get("Name") not in names:
            raise _validation(
                "INVALID_FILTER_VALUES", [("Filters", f"Name must be one of {sorted(names)}")]
            )
        values = item.get("Values")
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and _FILTER_VALUE.fullmatch(v) for v in values)
        ):
            raise _validation("INVALID_FILTER_VALUES", [("Filters", "Values are not valid")])
        result.setdefault(item["Name"], set()).update(values)
    return result


def _lower_bool(value: bool) -> str:
    return "true" if value else "false"


class Simulator:
    """The simulated service: state, pacing, fault injection, and the HTTP server around it."""

    def __init__(self, config: SimulatorConfig) -> None:
        if not _is_loopback(config.host):  # also checked by the config; never serve the network
            raise ValueError(f"the simulator binds to loopback only, not {config.host!r}")
        self._config = config
        self._lock = threading.Lock()  # state: config, buckets, random, counters, records
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._random = random.Random(config.seed)
        self._buckets: dict[tuple[str, bool], _TokenBucket] = {}
        self._records: deque[dict[str, Any]] = deque(maxlen=config.max_records_in_memory)
        self._counters: Counter[str] = Counter()
        self._operations: Counter[str] = Counter()
        self._sent_for_quota = 0  # accepted non-dry-run messages, what fail_after counts
        self._started_at = time.time()
        opted_out = set(config.opted_out)
        if config.opt_out_file is not None:
            opted_out |= load_numbers(config.opt_out_file)
        self._opted_out: dict[str, float] = dict.fromkeys(opted_out, self._started_at)
        self._by_name: dict[str, SimulatedIdentity] = {}
        for identity in config.identities:
            self._by_name[identity.value] = identity
            self._by_name[identity.resource_id] = identity
            self._by_name[identity.arn(config.region, config.account_id)] = identity
        self._server: _Server | None = None
        self._url: str | None = None
        self._thread: threading.Thread | None = None
        self._log: IO[str] | None = None
        self._connections: set[socket.socket] = set()

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._url is not None:
            raise RuntimeError("a simulator starts once; make a new one")
        config = self._config
        server_class = _Server6 if ":" in config.host else _Server
        self._server = server_class((config.host, config.port), _Handler, self)  # may raise
        host, port = str(self._server.server_address[0]), int(self._server.server_address[1])
        self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if config.log_path is not None:
            config.log_path.parent.mkdir(parents=True, exist_ok=True)
            # backslashreplace: a lone surrogate in a body must not kill the log writer
            self._log = config.log_path.open("a", encoding="utf-8", errors="backslashreplace")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="campaign-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Where the simulator listens (still known after stop, for messages)."""
        if self._url is None:
            raise RuntimeError("simulator not started")
        return self._url

    def stop(self) -> None:
        """Stop serving and close every open connection; handler threads waiting end at once."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            # Keep-alive handler threads block reading the next request; wake them with EOF.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._log_lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> Simulator:
        return self.start() if self._url is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- inspection and control ----------------------------------------------------------

    @property
    def config(self) -> SimulatorConfig:
        return self._config  # replaced whole by set_faults, never mutated: no lock needed

    def accepted(self, dry_run: bool | None = None) -> list[dict[str, Any]]:
        """Copies of the accepted-message records, oldest first; filter by dry_run if given."""
        with self._lock:
            records = [r for r in self._records if dry_run is None or r["dry_run"] is dry_run]
        return copy.deepcopy(records)

    def stats(self) -> SimulatorStats:
        with self._lock:
            c = self._counters
            return SimulatorStats(
                requests=c["requests"],
                accepted=c["accepted"],
                dry_run=c["dry_run"],
                throttled=c["throttled"],
                errors=c["errors"],
                rejected=c["rejected"],
                dropped=c["dropped"],
                timed_out=c["timed_out"],
                operations=MappingProxyType(dict(self._operations)),
            )

    def set_faults(self, **changes: Any) -> None:
        """Change fault rates, fail_after, mps, latency... while serving (validated as config)."""
        unknown = set(changes) - _RUNTIME_SETTINGS
        if unknown:
            raise TypeError(f"cannot change at run time: {', '.join(sorted(unknown))}")
        with self._lock:
            new = dataclasses.replace(self._config, **changes)
            if new.mps != self._config.mps or new.dry_run_mps != self._config.dry_run_mps:
                self._buckets.clear()  # new rates: start from a full bucket at the new rate
            self._config = new

    def opt_out(self, number: str) -> None:
        with self._lock:
            self._opted_out.setdefault(number, time.time())

    def opted_out(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._opted_out)

    # --- request handling (called from the HTTP handler threads) -------------------------

    def _register(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if not add:
                self._connections.discard(conn)
                return
            self._connections.add(conn)
        if self._stopping.is_set():  # accepted just as stop() swept the connections
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _wait(self, seconds: float) -> None:
        # Interruptible sleep: stop() must not wait for a 30 s simulated timeout.
        if seconds > 0:
            self._stopping.wait(seconds)

    def handle(self, target: str | None, raw: bytes) -> _Reply:
        """Answer one API call: `target` is the X-Amz-Target header, `raw` the JSON body."""
        request_id = str(uuid.uuid4())
        operation = (
            target[len(TARGET_PREFIX) :] if target and target.startswith(TARGET_PREFIX) else None
        )
        with self._lock:
            self._counters["requests"] += 1
            self._operations[operation or "<unknown>"] += 1
            latency = self._latency_locked()
        try:
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                raise _validation("CANNOT_PARSE", [], "request body is not valid JSON") from None
            if not isinstance(request, dict):
                raise _validation("CANNOT_PARSE", [], "request body must be a JSON object")
            if operation == "SendTextMessage":
                reply = self._send_text_message(request, request_id)
            elif operation == "DescribePhoneNumbers":
                reply = _Reply(200, self._describe_phone_numbers(request), request_id)
            elif operation == "DescribeOptedOutNumbers":
                reply = _Reply(200, self._describe_opted_out_numbers(request), request_id)
            else:
                raise ApiError(
                    "UnknownOperationException", f"unknown or unsupported operation: {target}"
                )
        except Exception as unexpected:
            if not isinstance(unexpected, ApiError):
                # A bug here must still answer: a silent close would look like a lost response.
                traceback.print_exc()
                unexpected = ApiError("InternalServerException", "simulator bug", status=500)
            error = unexpected
            with self._lock:
                if error.name == "ThrottlingException":
                    self._counters["throttled"] += 1
                elif error.status >= 500:
                    self._counters["errors"] += 1
                else:
                    self._counters["rejected"] += 1
            return _Reply(error.status, error.payload(request_id), request_id, delay_s=latency)
        return dataclasses.replace(reply, delay_s=reply.delay_s + latency)

    def _latency_locked(self) -> float:
        config = self._config
        jitter = self._random.uniform(0, config.jitter_ms) if config.jitter_ms else 0.0
        return (config.latency_ms + jitter) / 1000

    def _resolve_identity(self, request: _SendRequest, country: str | None) -> str:
        """The identity key to pace and log under; raises like the service for unknown ones."""
        config = self._config
        name = request.origination
        if name is None:
            # The service picks one of the account's numbers for the destination country.
            for identity in config.identities:
                if not identity.is_sender_id and identity.iso_country_code == country:
                    return identity.value
            raise ApiError(
                "ConflictException",
                f"no origination identity can send to {request.destination}",
                Reason="NO_ORIGINATION_IDENTITIES_FOUND",
                ResourceType="phone-number",
                ResourceId=request.destination,
            )
        known = self._by_name.get(name)
        if known is not None:
            return known.value
        if config.accept_any_identity:
            return name
        resource_type = _resource_type_of(name)
        raise ApiError(
            "ResourceNotFoundException",
            f"{resource_type} {name} not found",
            ResourceType=resource_type,
            ResourceId=name,
        )

    def _mps_for(self, identity: str, dry_run: bool) -> float:
        config = self._config
        known = self._by_name.get(identity)
        mps = known.mps if known is not None and known.mps is not None else config.mps
        return min(config.dry_run_mps, mps) if dry_run else mps

    def _send_text_message(self, raw: Mapping[str, Any], request_id: str) -> _Reply:
        request = _parse_send(raw)
        with self._lock:
            config = self._config
            opted_out = request.destination in self._opted_out
        destination = request.destination
        country = _country_of(destination)
        identity = self._resolve_identity(request, country)
        # A configuration set may be named or given by ARN (".../configuration-set/NAME").
        set_name = (request.configuration_set or "").rsplit(":configuration-set/", 1)[-1]
        if request.configuration_set is not None and set_name not in config.configuration_sets:
            raise ApiError(
                "ResourceNotFoundException",
                f"configuration set {request.configuration_set} not found",
                ResourceType="configuration-set",
                ResourceId=request.configuration_set,
            )
        rejection = config.reject_destinations.get(destination)
        if rejection is not None:
            raise _error_for(rejection[0], rejection[1], destination)
        if opted_out:
            raise ApiError(
                "ConflictException",
                f"{destination} is opted out",
                Reason="DESTINATION_PHONE_NUMBER_OPTED_OUT",
                ResourceType="opt-out-list",
                ResourceId=config.opt_out_list_name,
            )
        counted = request.counted
        self._check_price(request, counted.parts, country)

        with self._lock:
            config = self._config
            if (
                not request.dry_run
                and config.fail_after is not None
                and self._sent_for_quota >= config.fail_after
            ):
                raise ApiError(
                    "ServiceQuotaExceededException",
                    f"service quota exceeded: {config.fail_reason}",
                    Reason=config.fail_reason,
                )
            # Always four draws per request, so a seed replays the same fault sequence.
            draws = [self._random.random() for _ in _FAULT_RATES]
            if draws[0] < config.throttle_rate:
                raise ApiError("ThrottlingException", "Rate exceeded (injected)")
            if draws[1] < config.error_rate:
                raise ApiError("InternalServerException", "internal error (injected)", status=500)
            key = (identity, request.dry_run)
            now = time.monotonic()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _TokenBucket(self._mps_for(identity, request.dry_run))
            if not bucket.take(counted.parts, now):
                raise ApiError(
                    "ThrottlingException",
                    f"Rate exceeded: {identity} is limited to {bucket.rate:g} message parts "
                    "per second",
                )
            message_id = str(uuid.uuid4())
            record = self._record(request, message_id, identity, country, counted)
            self._records.append(record)
            self._counters["accepted"] += 1
            if request.dry_run:
                self._counters["dry_run"] += 1
            else:
                self._sent_for_quota += 1
            drop = draws[2] < config.drop_rate
            timeout = not drop and draws[3] < config.timeout_rate
            if drop:
                self._counters["dropped"] += 1
            if timeout:
                self._counters["timed_out"] += 1
        self._write_log(record)
        delay = config.timeout_delay_s if timeout else 0.0
        return _Reply(200, {"MessageId": message_id}, request_id, delay_s=delay, drop=drop)

    def _check_price(self, request: _SendRequest, parts: int, country: str | None) -> None:
        table = self._config.price_per_part
        if request.max_price is None or not table:
            return
        price = table.get(country or "", table.get("*"))
        if price is None:
            return
        cost = Decimal(str(price)) * parts
        if cost > Decimal(request.max_price):
            raise _validation(
                "PRICE_OVER_THRESHOLD",
                [("MaxPrice", f"message costs {cost} USD, over MaxPrice {request.max_price}")],
            )

    def _record(
        self,
        request: _SendRequest,
        message_id: str,
        identity: str,
        country: str | None,
        counted: BodyCount,
    ) -> dict[str, Any]:
        if request.dry_run:
            event = None  # a dry run is validated only: nothing is delivered
        elif request.destination in FAILURE_DESTINATIONS:
            event = EVENT_FAILED
        else:
            event = EVENT_DELIVERED
        return {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "message_id": message_id,
            "destination": request.destination,
            "country": country,
            "origination": identity,
            "body": request.body,
            "parts": counted.parts,
            "encoding": counted.encoding,
            "message_type": request.message_type,
            "dry_run": request.dry_run,
            "context": dict(request.context) if request.context is not None else None,
            "max_price": request.max_price,
            "ttl": request.ttl,
            "configuration_set": request.configuration_set,
            "keyword": request.keyword,
            "country_parameters": (
                dict(request.country_parameters) if request.country_parameters else None
            ),
            "protect_configuration_id": request.protect_configuration_id,
            "message_feedback": request.message_feedback,
            "event": event,
        }

    def _write_log(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._log_lock:
            if self._log is not None:
                self._log.write(line)
                self._log.flush()  # a killed run still leaves every accepted message on disk

    def _phone_number_info(self, identity: SimulatedIdentity) -> dict[str, Any]:
        config = self._config
        return {
            "PhoneNumberArn": identity.arn(config.region, config.account_id),
            "PhoneNumberId": identity.resource_id,
            "PhoneNumber": identity.value,
            "Status": "ACTIVE",
            "IsoCountryCode": identity.iso_country_code,
            "MessageType": identity.message_type,
            "NumberCapabilities": ["SMS"],
            "NumberType": identity.number_type,
            "MonthlyLeasingPrice": "0.00",
            "TwoWayEnabled": False,
            "SelfManagedOptOutsEnabled": False,
            "OptOutListName": config.opt_out_list_name,
            "InternationalSendingEnabled": False,
            "DeletionProtectionEnabled": False,
            "MessagingLimits": {
                "RateLimits": {"SMS": max(1, round(self._mps_for(identity.value, False)))}
            },
            "CreatedTimestamp": self._started_at,
        }

    def _describe_phone_numbers(self, request: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            config = self._config
        numbers = [i for i in config.identities if not i.is_sender_id]
        ids = request.get("PhoneNumberIds")
        if ids:
            if not isinstance(ids, list) or len(ids) > 5:
                raise _validation("INVALID_PARAMETER", [("PhoneNumberIds", "at most 5 ids")])
            by_id = {}
            for identity in numbers:
                by_id[identity.resource_id] = identity
                by_id[identity.arn(config.region, config.account_id)] = identity
            selected = []
            for wanted in ids:
                # Like AWS, ids or ARNs only: an E.164 number here is not found.
                found = by_id.get(wanted) if isinstance(wanted, str) else None
                if found is None:
                    raise ApiError(
                        "ResourceNotFoundException",
                        f"phone number {wanted} not found",
                        ResourceType="phone-number",
                        ResourceId=str(wanted),
                    )
                selected.append(found)
            numbers = selected
        filters = _filters(
            request,
            (
                "status",
                "iso-country-code",
                "message-type",
                "number-capability",
                "number-type",
                "two-way-enabled",
                "self-managed-opt-outs-enabled",
                "opt-out-list-name",
                "deletion-protection-enabled",
            ),
        )
        infos = [self._phone_number_info(i) for i in numbers]
        attribute = {
            "status": lambda info: {info["Status"]},
            "iso-country-code": lambda info: {info["IsoCountryCode"]},
            "message-type": lambda info: {info["MessageType"]},
            "number-capability": lambda info: set(info["NumberCapabilities"]),
            "number-type": lambda info: {info["NumberType"]},
            "two-way-enabled": lambda info: {_lower_bool(info["TwoWayEnabled"])},
            "self-managed-opt-outs-enabled": lambda info: {
                _lower_bool(info["SelfManagedOptOutsEnabled"])
            },
            "opt-out-list-name": lambda info: {info["OptOutListName"]},
            "deletion-protection-enabled": lambda info: {
                _lower_bool(info["DeletionProtectionEnabled"])
            },
        }
        infos = [
            info
            for info in infos
            if all(attribute[name](info) & values for name, values in filters.items())
        ]
        page, token = _paginate(infos, request)
        result: dict[str, Any] = {"PhoneNumbers": page}
        if token is not None:
            result["NextToken"] = token
        return result

    def _describe_opted_out_numbers(self, request: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            config = self._config
            opted_out = dict(self._opted_out)
        name = request.get("OptOutListName")
        if not isinstance(name, str) or not name:
            raise _validation("MISSING_PARAMETER", [("OptOutListName", "is required")])
        arn = f"arn:aws:sms-voice:{config.region}:{config.account_id}:opt-out-list/"
        arn += config.opt_out_list_name
        if name not in (config.opt_out_list_name, arn):
            raise ApiError(
                "ResourceNotFoundException",
                f"opt-out list {name} not found",
                ResourceType="opt-out-list",
                ResourceId=name,
            )
        numbers = sorted(opted_out)
        wanted = request.get("OptedOutNumbers")
        if wanted:
            if not isinstance(wanted, list) or len(wanted) > 5:
                raise _validation("INVALID_PARAMETER", [("OptedOutNumbers", "at most 5 numbers")])
            for number in wanted:
                if not isinstance(number, str) or not _PHONE_PATTERN.fullmatch(number):
                    raise _validation(
                        "INVALID_PARAMETER", [("OptedOutNumbers", f"{number} is not valid")]
                    )
            # Numbers asked for that are not opted out are simply absent from the answer.
            numbers = [n for n in numbers if n in set(wanted)]
        filters = _filters(request, ("end-user-opted-out",))
        if "end-user-opted-out" in filters and "true" not in filters["end-user-opted-out"]:
            numbers = []  # every number here counts as opted out by its end user
        page, token = _paginate(numbers, request)
        result: dict[str, Any] = {
            "OptOutListArn": arn,
            "OptOutListName": config.opt_out_list_name,
            "OptedOutNumbers": [
                {"OptedOutNumber": n, "OptedOutTimestamp": opted_out[n], "EndUserOptedOut": True}
                for n in page
            ],
        }
        if token is not None:
            result["NextToken"] = token
        return result


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck connection never keeps the process alive
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        simulator: Simulator,
    ) -> None:
        self.simulator = simulator
        # Listen backlog: the sender opens ~150 connections at once. Set before bind/listen.
        self.request_queue_size = simulator.config.request_queue_size
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanishes mid-request (a killed sender) is routine, not worth a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError) and not self.simulator.config.verbose:
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server_version = "campaign-simulator"

    def version_string(self) -> str:
        return self.server_version

    @property
    def simulator(self) -> Simulator:
        return cast(_Server, self.server).simulator

    def setup(self) -> None:
        super().setup()
        self.simulator._register(self.connection, add=True)

    def finish(self) -> None:
        self.simulator._register(self.connection, add=False)
        with contextlib.suppress(OSError):  # the client went away first
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if self.simulator.config.verbose:
            super().log_message(format, *args)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True  # cannot find the next request without a length
            self._send(411, {"message": "Content-Length required"}, str(uuid.uuid4()))
            return
        raw = self.rfile.read(int(length))
        reply = self.simulator.handle(self.headers.get("X-Amz-Target"), raw)
        if reply.drop:
            # The request was accepted but the answer never comes: "outcome unknown".
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.simulator._wait(reply.delay_s)
        try:
            self._send(reply.status, reply.payload, reply.request_id)
        except OSError:
            self.close_connection = True  # e.g. the client's read timeout already fired

    def do_GET(self) -> None:
        # A cheap health check for scripts waiting on `campaign simulator` to come up.
        payload = {"service": "pinpoint-sms-voice-v2 simulator", **self.simulator.stats().as_dict()}
        self._send(200, payload, str(uuid.uuid4()), content_type="application/json")

    def _send(
        self,
        status: int,
        payload: Mapping[str, Any],
        request_id: str,
        content_type: str = JSON_CONTENT_TYPE,
    ) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", request_id)
        error_type = payload.get("__type")
        if isinstance(error_type, str):
            self.send_header("x-amzn-ErrorType", error_type.rsplit("#", 1)[-1])
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def run_simulator(
    config: SimulatorConfig, *, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly; on_ready(url) runs once listening."""
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous: Any = None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    simulator = Simulator(config)
    if in_main_thread:  # signal handlers can only be installed from the main thread
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        simulator.start()  # may raise OSError (port in use): the handler is restored below
        if on_ready is not None:
            on_ready(simulator.url)
        while not stop.wait(0.2):  # short waits keep Ctrl-C responsive
            pass
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
