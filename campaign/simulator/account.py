"""The simulated AWS account: what the service knows and decides once a request is valid.

Its origination identities (by value, id or ARN), one token bucket per identity (and a separate one
for its dry runs), the opt-out list, the injected faults, the quota that `fail_after` stands for,
and the log of accepted messages (in memory and, optionally, JSON Lines on disk). The operations
take requests already checked by campaign.simulator.validation and return plain results or raise
ApiError; the HTTP layer (server.py) knows nothing of this state.

Delivery events: each accepted message (its record carries the `event` its destination would
produce) goes to the event emitter (campaign.simulator.events) with the SNS destinations of its
configuration set (campaign.simulator.configsets), as at AWS, plus the file or topic the simulator
was told to send every message's events to. Room to grow: opt-out operations (PutOptedOutNumber,
...) change `_opted_out` through `opt_out`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import IO, Any

import phonenumbers

from campaign.simulator.config import (
    FAULT_RATES,
    RUNTIME_SETTINGS,
    SimulatedIdentity,
    SimulatorConfig,
    load_numbers,
)
from campaign.simulator.configsets import ConfigurationSets
from campaign.simulator.errors import ApiError, validation_error
from campaign.simulator.events import (
    DEFAULT_PRICE_PER_PART,
    ErrorCallback,
    EventEmitter,
    EventSettings,
    JsonLinesSink,
    TopicRoute,
)
from campaign.simulator.validation import (
    PHONE_PATTERN,
    SendRequest,
    filters,
    opt_out_list_name,
    opted_out_numbers,
    paginate,
    phone_number_ids,
)

# AWS's own simulator destinations (docs/aws-facts.md): both kinds are accepted by
# SendTextMessage; only the delivery event differs.
SUCCESS_DESTINATIONS = frozenset({"+14254147755", "+447860019066", "+61455944038"})
FAILURE_DESTINATIONS = frozenset({"+14254147167", "+447860019067", "+61455944039"})
EVENT_DELIVERED = "TEXT_DELIVERED"
EVENT_FAILED = "TEXT_UNREACHABLE"


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
    events_emitted: int = 0  # delivery events released to their sinks
    operations: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["operations"] = dict(self.operations)
        return data


@dataclass(frozen=True)
class Acceptance:
    """A SendTextMessage the account accepted, and how its answer is to be (mis)delivered."""

    message_id: str
    delay_s: float = 0.0  # an injected timeout: the answer waits this long
    drop: bool = False  # an injected drop: the connection closes without an answer


class TokenBucket:
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


def configured_error(exc_name: str, reason: str, destination: str) -> ApiError:
    """The configured error of reject_destinations, with the members its shape has."""
    message = f"{reason} for {destination}" if reason else f"rejected {destination}"
    if exc_name == "ValidationException":
        return validation_error(reason, [("DestinationPhoneNumber", message)], message)
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


def country_of(number: str) -> str | None:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None


def resource_type_of(identity: str) -> str:
    """What kind of resource an unknown OriginationIdentity names, for ResourceNotFoundException."""
    if ":sender-id/" in identity or identity.startswith("senderid-"):
        return "sender-id"
    if ":pool/" in identity or identity.startswith("pool-"):
        return "pool"
    if ":phone-number/" in identity or identity.startswith("phone-"):
        return "phone-number"
    return "phone-number" if PHONE_PATTERN.fullmatch(identity) else "sender-id"


def _lower_bool(value: bool) -> str:
    return "true" if value else "false"


# DescribePhoneNumbers' filter names -> the values of one PhoneNumberInformation they match.
_PHONE_NUMBER_FILTERS: Mapping[str, Callable[[Mapping[str, Any]], set[str]]] = {
    "status": lambda info: {info["Status"]},
    "iso-country-code": lambda info: {info["IsoCountryCode"]},
    "message-type": lambda info: {info["MessageType"]},
    "number-capability": lambda info: set(info["NumberCapabilities"]),
    "number-type": lambda info: {info["NumberType"]},
    "two-way-enabled": lambda info: {_lower_bool(info["TwoWayEnabled"])},
    "self-managed-opt-outs-enabled": lambda info: {_lower_bool(info["SelfManagedOptOutsEnabled"])},
    "opt-out-list-name": lambda info: {info["OptOutListName"]},
    "deletion-protection-enabled": lambda info: {_lower_bool(info["DeletionProtectionEnabled"])},
}


def event_settings(config: SimulatorConfig) -> EventSettings:
    """The events' settings; their prices are the account's (`price_per_part`) unless given."""
    settings = config.events
    if not settings.price_per_part and config.price_per_part:
        return dataclasses.replace(settings, price_per_part=dict(config.price_per_part))
    return settings


class Account:
    """The account's state and operations; thread-safe (one lock for the state, one for the log)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._lock = threading.Lock()  # state: config, buckets, random, counters, records
        self._log_lock = threading.Lock()
        self._random = random.Random(config.seed)
        self._buckets: dict[tuple[str, bool], TokenBucket] = {}
        self._records: deque[dict[str, Any]] = deque(maxlen=config.max_records_in_memory)
        self._counters: Counter[str] = Counter()
        self._operations: Counter[str] = Counter()
        self._sent_for_quota = 0  # accepted non-dry-run messages, what fail_after counts
        self._started_at = time.time()
        opted_out = set(config.opted_out)
        if config.opt_out_file is not None:
            opted_out |= load_numbers(config.opt_out_file)
        self._opted_out: dict[str, float] = dict.fromkeys(opted_out, self._started_at)
        self._describe_throttles = 0  # DescribeOptedOutNumbers calls still to refuse (a test's)
        self._by_name: dict[str, SimulatedIdentity] = {}
        for identity in config.identities:
            self._by_name[identity.value] = identity
            self._by_name[identity.resource_id] = identity
            self._by_name[identity.arn(config.region, config.account_id)] = identity
        self._log: IO[str] | None = None
        self._configuration_sets = ConfigurationSets(
            config.region, config.account_id, config.configuration_sets
        )
        self._events: EventEmitter | None = None

    # --- the accepted log on disk --------------------------------------------------------

    def open_log(self) -> None:
        path = self._config.log_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # backslashreplace: a lone surrogate in a body must not kill the log writer
            self._log = path.open("a", encoding="utf-8", errors="backslashreplace")

    def close_log(self) -> None:
        with self._log_lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _write_log(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._log_lock:
            if self._log is not None:
                self._log.write(line)
                self._log.flush()  # a killed run still leaves every accepted message on disk

    # --- delivery events ------------------------------------------------------------------

    def start_events(self, on_error: ErrorCallback | None = None) -> None:
        config = self._config
        sinks = [JsonLinesSink(config.events_file)] if config.events_file is not None else []
        self._events = EventEmitter(
            sinks, event_settings(config), seed=config.seed, on_error=on_error
        )

    def stop_events(self, flush: bool = True) -> None:
        events, self._events = self._events, None
        if events is not None:
            events.close(flush=flush)

    def flush_events(self, timeout: float = 30.0) -> bool:
        """Release every event planned so far, due or not (tests, rehearsals that end)."""
        return self._events.flush(timeout) if self._events is not None else True

    def _emit(self, record: Mapping[str, Any]) -> None:
        events = self._events
        if events is None or record["dry_run"]:
            return
        routes = self._configuration_sets.sns_routes(record["configuration_set"])
        topic = self._config.events_topic_arn
        if topic is not None and topic not in {r.topic_arn for r in routes}:
            routes.append(TopicRoute(topic))
        events.accepted(record, routes)

    # --- configuration sets -----------------------------------------------------------------

    def create_configuration_set(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return self._configuration_sets.create(request)

    def describe_configuration_sets(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return self._configuration_sets.describe(request)

    def create_event_destination(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return self._configuration_sets.create_event_destination(request)

    def update_event_destination(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return self._configuration_sets.update_event_destination(request)

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
                events_emitted=self._events.emitted if self._events is not None else 0,
                operations=MappingProxyType(dict(self._operations)),
            )

    def set_faults(self, **changes: Any) -> None:
        """Change fault rates, fail_after, mps, latency... while serving (validated as config)."""
        unknown = set(changes) - RUNTIME_SETTINGS
        if unknown:
            raise TypeError(f"cannot change at run time: {', '.join(sorted(unknown))}")
        with self._lock:
            old, new = self._config, dataclasses.replace(self._config, **changes)
            if new.mps != old.mps or new.dry_run_mps != old.dry_run_mps:
                self._buckets.clear()  # new rates: start from a full bucket at the new rate
            self._config = new
        if new.configuration_sets != old.configuration_sets:
            self._configuration_sets.sync(old.configuration_sets, new.configuration_sets)
        if self._events is not None:
            self._events.settings = event_settings(new)

    def opt_out(self, number: str) -> None:
        with self._lock:
            self._opted_out.setdefault(number, time.time())

    def opted_out(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._opted_out)

    def throttle_describes(self, calls: int) -> None:
        """Answer the next `calls` DescribeOptedOutNumbers with ThrottlingException."""
        with self._lock:
            self._describe_throttles = calls

    # --- per request ---------------------------------------------------------------------

    def begin_request(self, operation: str) -> float:
        """Count one request; returns the latency (seconds) its answer is to be given."""
        with self._lock:
            self._counters["requests"] += 1
            self._operations[operation] += 1
            config = self._config
            jitter = self._random.uniform(0, config.jitter_ms) if config.jitter_ms else 0.0
            return (config.latency_ms + jitter) / 1000

    def count_error(self, error: ApiError) -> None:
        with self._lock:
            if error.name == "ThrottlingException":
                self._counters["throttled"] += 1
            elif error.status >= 500:
                self._counters["errors"] += 1
            else:
                self._counters["rejected"] += 1

    # --- SendTextMessage -----------------------------------------------------------------

    def send_text_message(self, request: SendRequest) -> Acceptance:
        """Accept one valid message, or raise the error the service would answer."""
        with self._lock:
            config = self._config
            opted_out = request.destination in self._opted_out
        country = country_of(request.destination)
        identity = self._resolve_identity(request, country)
        self._check_destination(request, config, opted_out)
        self._check_price(request, request.counted.parts, country)
        with self._lock:
            record, acceptance = self._accept_locked(request, identity, country)
        self._write_log(record)
        self._emit(record)  # accepted is accepted, even if the answer is then lost
        return acceptance

    def _resolve_identity(self, request: SendRequest, country: str | None) -> str:
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
        resource_type = resource_type_of(name)
        raise ApiError(
            "ResourceNotFoundException",
            f"{resource_type} {name} not found",
            ResourceType=resource_type,
            ResourceId=name,
        )

    def _check_destination(
        self, request: SendRequest, config: SimulatorConfig, opted_out: bool
    ) -> None:
        """The configuration set, then per-destination refusals: configured ones, opt-outs."""
        destination = request.destination
        if request.configuration_set is not None and not self._configuration_sets.exists(
            request.configuration_set
        ):
            raise ApiError(
                "ResourceNotFoundException",
                f"configuration set {request.configuration_set} not found",
                ResourceType="configuration-set",
                ResourceId=request.configuration_set,
            )
        rejection = config.reject_destinations.get(destination)
        if rejection is not None:
            raise configured_error(rejection[0], rejection[1], destination)
        if opted_out:
            raise ApiError(
                "ConflictException",
                f"{destination} is opted out",
                Reason="DESTINATION_PHONE_NUMBER_OPTED_OUT",
                ResourceType="opt-out-list",
                ResourceId=config.opt_out_list_name,
            )

    def _check_price(self, request: SendRequest, parts: int, country: str | None) -> None:
        # Every message has a price, as on AWS: the configured table's, else the example figure
        # the delivery events report, so a MaxPrice under it is refused like the service does.
        table = self._config.price_per_part or {"*": DEFAULT_PRICE_PER_PART}
        if request.max_price is None:
            return
        price = table.get(country or "", table.get("*"))
        if price is None:
            return
        cost = Decimal(str(price)) * parts
        if cost > Decimal(request.max_price):
            raise validation_error(
                "PRICE_OVER_THRESHOLD",
                [("MaxPrice", f"message costs {cost} USD, over MaxPrice {request.max_price}")],
            )

    def _accept_locked(
        self, request: SendRequest, identity: str, country: str | None
    ) -> tuple[dict[str, Any], Acceptance]:
        """Quota, injected faults, the identity's bucket; then the record. Holds the lock."""
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
        draws = [self._random.random() for _ in FAULT_RATES]
        if draws[0] < config.throttle_rate:
            raise ApiError("ThrottlingException", "Rate exceeded (injected)")
        if draws[1] < config.error_rate:
            raise ApiError("InternalServerException", "internal error (injected)", status=500)
        self._take_tokens(identity, request)
        message_id = str(uuid.uuid4())
        record = self._record(request, message_id, identity, country)
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
        delay = config.timeout_delay_s if timeout else 0.0
        return record, Acceptance(message_id, delay_s=delay, drop=drop)

    def _take_tokens(self, identity: str, request: SendRequest) -> None:
        key = (identity, request.dry_run)
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._mps_for(identity, request.dry_run))
        if not bucket.take(request.counted.parts, now):
            raise ApiError(
                "ThrottlingException",
                f"Rate exceeded: {identity} is limited to {bucket.rate:g} message parts per second",
            )

    def _mps_for(self, identity: str, dry_run: bool) -> float:
        config = self._config
        known = self._by_name.get(identity)
        mps = known.mps if known is not None and known.mps is not None else config.mps
        return min(config.dry_run_mps, mps) if dry_run else mps

    def _record(
        self, request: SendRequest, message_id: str, identity: str, country: str | None
    ) -> dict[str, Any]:
        if request.dry_run:
            event = None  # a dry run is validated only: nothing is delivered
        elif request.destination in FAILURE_DESTINATIONS:
            event = EVENT_FAILED
        else:
            event = EVENT_DELIVERED
        counted = request.counted
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

    # --- DescribePhoneNumbers, DescribeOptedOutNumbers -----------------------------------

    def describe_phone_numbers(self, request: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            config = self._config
        numbers = [i for i in config.identities if not i.is_sender_id]
        ids = phone_number_ids(request)
        if ids:
            numbers = self._numbers_by_id(numbers, ids, config)
        wanted = filters(request, _PHONE_NUMBER_FILTERS)
        infos = [
            info
            for info in (self._phone_number_info(i) for i in numbers)
            if all(_PHONE_NUMBER_FILTERS[name](info) & values for name, values in wanted.items())
        ]
        page, token = paginate(infos, request)
        result: dict[str, Any] = {"PhoneNumbers": page}
        if token is not None:
            result["NextToken"] = token
        return result

    @staticmethod
    def _numbers_by_id(
        numbers: list[SimulatedIdentity], ids: list[Any], config: SimulatorConfig
    ) -> list[SimulatedIdentity]:
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
        return selected

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

    def describe_opted_out_numbers(self, request: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            config = self._config
            opted_out = dict(self._opted_out)
            if self._describe_throttles > 0:
                self._describe_throttles -= 1
                raise ApiError("ThrottlingException", "Rate exceeded (injected)")
        name = opt_out_list_name(request)
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
        wanted = opted_out_numbers(request)
        if wanted:
            # Numbers asked for that are not opted out are simply absent from the answer.
            numbers = [n for n in numbers if n in set(wanted)]
        wanted_filters = filters(request, ("end-user-opted-out",))
        if (
            "end-user-opted-out" in wanted_filters
            and "true" not in wanted_filters["end-user-opted-out"]
        ):
            numbers = []  # every number here counts as opted out by its end user
        page, token = paginate(numbers, request)
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
