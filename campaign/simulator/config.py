"""What a simulator is told at start: its account's identities, rates, opt-outs and faults.

`SimulatorConfig` is frozen; `Simulator.set_faults` replaces it whole with the settings listed in
RUNTIME_SETTINGS changed, so readers never need a lock to see a consistent one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from campaign.simulator.errors import SEND_EXCEPTIONS
from campaign.simulator.events import EventSettings
from campaign.simulator.validation import MESSAGE_TYPES

SENDER_ID = "SENDER_ID"  # our NumberType stand-in for alphanumeric sender ids
NUMBER_TYPES = frozenset(
    {"SHORT_CODE", "LONG_CODE", "TOLL_FREE", "TEN_DLC", "SIMULATOR", SENDER_ID}
)


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

FAULT_RATES = ("throttle_rate", "error_rate", "drop_rate", "timeout_rate")
# What set_faults may change while serving; the rest (host, port, log, identities) is fixed.
RUNTIME_SETTINGS = frozenset(
    {
        *FAULT_RATES,
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
        "events",
        "verbose",
    }
)


_SNS_TOPIC_ARN = re.compile(r"arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")


def is_loopback(host: str) -> bool:
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
    # The account's configuration sets at start (more come from CreateConfigurationSet). A message
    # sent with one produces delivery events for its SNS event destinations, as at AWS.
    configuration_sets: frozenset[str] = frozenset({"default"})
    events: EventSettings = field(default_factory=EventSettings)  # shares, delays, prices
    events_file: Path | None = None  # every accepted message's events, configuration set or not
    events_topic_arn: str | None = None  # likewise, published to this SNS topic
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
        if not is_loopback(self.host):
            raise ValueError(f"the simulator binds to loopback only, not {self.host!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.mps <= 0 or self.dry_run_mps <= 0:
            raise ValueError("mps and dry_run_mps must be positive")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.timeout_delay_s < 0:
            raise ValueError("latency_ms, jitter_ms and timeout_delay_s must not be negative")
        if self.events_topic_arn is not None and not _SNS_TOPIC_ARN.fullmatch(
            self.events_topic_arn
        ):
            raise ValueError(f"not an SNS topic ARN: {self.events_topic_arn!r}")
        self._check_faults()

    def _check_faults(self) -> None:
        for name in FAULT_RATES:
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


def load_numbers(path: Path) -> frozenset[str]:
    """Numbers from a file of one per line; blank lines and '#' comments are skipped."""
    numbers = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            numbers.add(text)
    return frozenset(numbers)
