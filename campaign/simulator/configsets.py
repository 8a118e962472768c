"""The account's configuration sets and their event destinations, as the service keeps them.

A message produces delivery events only when it is sent with a ConfigurationSetName, and they go to
that set's enabled event destinations whose MatchingEventTypes take them (docs/aws-facts.md,
"Delivery events"). The simulator delivers to SNS destinations (SNS and SQS come from moto in the
tests and the demo); CloudWatch Logs and Firehose destinations are accepted and described, but
nothing is written to them.

Operations: CreateConfigurationSet, DescribeConfigurationSets, CreateEventDestination and
UpdateEventDestination, enough for `campaign events setup`. Requests are validated by
campaign.simulator.validation; a refusal is an ApiError shaped like the service's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from campaign.simulator.errors import ApiError
from campaign.simulator.events import TopicRoute
from campaign.simulator.validation import (
    CONFIGURATION_SET_NAME,
    EVENT_DESTINATION_NAME,
    RESOURCE_NAME_PATTERN,
    configuration_set_names,
    event_destination_target,
    filters,
    matching_event_types,
    paginate,
    required_name,
)


@dataclass
class _Destination:
    name: str
    enabled: bool
    event_types: tuple[str, ...]
    kind: str  # SnsDestination, CloudWatchLogsDestination, KinesisFirehoseDestination
    target: dict[str, str]

    def describe(self) -> dict[str, Any]:
        return {
            "EventDestinationName": self.name,
            "Enabled": self.enabled,
            "MatchingEventTypes": list(self.event_types),
            self.kind: dict(self.target),
        }


@dataclass
class _ConfigurationSet:
    name: str
    created: float
    destinations: dict[str, _Destination] = field(default_factory=dict)


def set_name_of(name_or_arn: str) -> str:
    """A configuration set is named or given by ARN (`...:configuration-set/NAME`)."""
    return name_or_arn.rsplit(":configuration-set/", 1)[-1]


# DescribeConfigurationSets' filter names -> the values of one configuration set they match.
_FILTERS: Mapping[str, Callable[[_ConfigurationSet], set[str]]] = {
    "event-destination-name": lambda s: set(s.destinations),
    "matching-event-types": lambda s: {t for d in s.destinations.values() for t in d.event_types},
    "default-message-type": lambda s: set(),
    "default-sender-id": lambda s: set(),
    "default-message-feedback-enabled": lambda s: {"false"},
    "protect-configuration-id": lambda s: set(),
}


class ConfigurationSets:
    """The account's configuration sets; thread-safe."""

    def __init__(self, region: str, account_id: str, initial: Iterable[str]) -> None:
        self._region = region
        self._account_id = account_id
        self._lock = threading.Lock()
        started = time.time()
        self._sets = {name: _ConfigurationSet(name, started) for name in initial}

    def arn(self, name: str) -> str:
        return f"arn:aws:sms-voice:{self._region}:{self._account_id}:configuration-set/{name}"

    def exists(self, name_or_arn: str) -> bool:
        with self._lock:
            return set_name_of(name_or_arn) in self._sets

    def sync(self, before: Iterable[str], after: Iterable[str]) -> None:
        """The configured sets changed (Simulator.set_faults): add the new, drop the removed."""
        after = set(after)
        with self._lock:
            for name in set(before) - after:
                self._sets.pop(name, None)
            for name in after:
                self._sets.setdefault(name, _ConfigurationSet(name, time.time()))

    def sns_routes(self, name_or_arn: str | None) -> list[TopicRoute]:
        """The enabled SNS destinations of the set a message was sent with."""
        if name_or_arn is None:
            return []
        with self._lock:
            found = self._sets.get(set_name_of(name_or_arn))
            if found is None:
                return []
            return [
                TopicRoute(d.target["TopicArn"], frozenset(d.event_types))
                for d in found.destinations.values()
                if d.enabled and d.kind == "SnsDestination"
            ]

    # --- operations ------------------------------------------------------------------------

    def create(self, request: Mapping[str, Any]) -> dict[str, Any]:
        name = required_name(request, "ConfigurationSetName", CONFIGURATION_SET_NAME, 64)
        with self._lock:
            if name in self._sets:
                raise ApiError(
                    "ConflictException",
                    f"configuration set {name} already exists",
                    Reason="RESOURCE_ALREADY_EXISTS",
                    ResourceType="configuration-set",
                    ResourceId=name,
                )
            created = self._sets[name] = _ConfigurationSet(name, time.time())
        return {
            "ConfigurationSetArn": self.arn(name),
            "ConfigurationSetName": name,
            "Tags": list(request.get("Tags") or []),
            "CreatedTimestamp": created.created,
        }

    def describe(self, request: Mapping[str, Any]) -> dict[str, Any]:
        wanted = configuration_set_names(request)
        matching = filters(request, _FILTERS)
        with self._lock:
            if wanted:
                chosen = [self._get(name) for name in wanted]
            else:
                chosen = sorted(self._sets.values(), key=lambda s: s.name)
            infos = [
                self._information(s)
                for s in chosen
                if all(_FILTERS[name](s) & values for name, values in matching.items())
            ]
        page, token = paginate(infos, request)
        result: dict[str, Any] = {"ConfigurationSets": page}
        if token is not None:
            result["NextToken"] = token
        return result

    def create_event_destination(self, request: Mapping[str, Any]) -> dict[str, Any]:
        set_name = required_name(request, "ConfigurationSetName", RESOURCE_NAME_PATTERN, 256)
        name = required_name(request, "EventDestinationName", EVENT_DESTINATION_NAME, 64)
        types = matching_event_types(request, required=True)
        target = event_destination_target(request, required=True)
        assert types is not None and target is not None  # required=True
        with self._lock:
            found = self._get(set_name)
            if name in found.destinations:
                raise ApiError(
                    "ConflictException",
                    f"event destination {name} already exists in {found.name}",
                    Reason="RESOURCE_ALREADY_EXISTS",
                    ResourceType="event-destination",
                    ResourceId=name,
                )
            made = found.destinations[name] = _Destination(name, True, types, *target)
            return self._destination_result(found, made)

    def update_event_destination(self, request: Mapping[str, Any]) -> dict[str, Any]:
        set_name = required_name(request, "ConfigurationSetName", RESOURCE_NAME_PATTERN, 256)
        name = required_name(request, "EventDestinationName", EVENT_DESTINATION_NAME, 64)
        types = matching_event_types(request, required=False)
        target = event_destination_target(request, required=False)
        enabled = request.get("Enabled")
        with self._lock:
            found = self._get(set_name)
            destination = found.destinations.get(name)
            if destination is None:
                raise ApiError(
                    "ResourceNotFoundException",
                    f"event destination {name} not found in {found.name}",
                    ResourceType="event-destination",
                    ResourceId=name,
                )
            if isinstance(enabled, bool):
                destination.enabled = enabled
            if types is not None:
                destination.event_types = types
            if target is not None:
                destination.kind, destination.target = target
            return self._destination_result(found, destination)

    # --- helpers (the lock held) -----------------------------------------------------------

    def _get(self, name_or_arn: str) -> _ConfigurationSet:
        found = self._sets.get(set_name_of(name_or_arn))
        if found is None:
            raise ApiError(
                "ResourceNotFoundException",
                f"configuration set {name_or_arn} not found",
                ResourceType="configuration-set",
                ResourceId=name_or_arn,
            )
        return found

    def _information(self, s: _ConfigurationSet) -> dict[str, Any]:
        return {
            "ConfigurationSetArn": self.arn(s.name),
            "ConfigurationSetName": s.name,
            "EventDestinations": [d.describe() for d in s.destinations.values()],
            "DefaultMessageFeedbackEnabled": False,
            "CreatedTimestamp": s.created,
        }

    def _destination_result(self, s: _ConfigurationSet, d: _Destination) -> dict[str, Any]:
        return {
            "ConfigurationSetArn": self.arn(s.name),
            "ConfigurationSetName": s.name,
            "EventDestination": d.describe(),
        }
