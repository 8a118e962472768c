"""Delivery events for the messages the simulator accepts, shaped like AWS's (docs/aws-facts.md).

For each accepted message: TEXT_SUCCESSFUL (accepted by the carrier, not final), then a final event:
TEXT_DELIVERED, or for a configurable share an undelivered type with a realistic mix (carrier
unreachable, blocked, spam, TTL expired...). AWS's failure simulator numbers always end undelivered.
Like SNS and SQS, the stream can repeat events and deliver them out of order; the event timestamps
stay true (they are what an ingester must order by), only the arrival changes.

`plan_events` is pure (a record and a random generator in, events with their arrival delays out);
`EventEmitter` releases them when due to sinks: a JSON Lines file and/or an SNS topic (whether SQS
then sees the SNS envelope or the raw event is the subscription's business: RawMessageDelivery).
The account (campaign.simulator.account) hands it each accepted message with the SNS topics of its
configuration set (campaign.simulator.configsets); `campaign simulator` adds a file or a topic for
every message.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

# (eventType, messageStatusDescription, relative weight) of the undelivered finals.
UNDELIVERED_TYPES: tuple[tuple[str, str, int], ...] = (
    ("TEXT_CARRIER_UNREACHABLE", "The carrier could not be reached", 30),
    (
        "TEXT_UNREACHABLE",
        "The destination phone is unreachable (switched off or out of coverage)",
        25,
    ),
    ("TEXT_BLOCKED", "Blocked by the carrier", 15),
    ("TEXT_SPAM", "Filtered by the carrier as spam", 10),
    ("TEXT_TTL_EXPIRED", "Not delivered within its TimeToLive", 10),
    ("TEXT_INVALID", "The destination is not a valid mobile number", 5),
    ("TEXT_UNKNOWN", "No final status from the carrier within 72 hours", 5),
)
SUCCESSFUL_DESCRIPTION = "Message has been accepted by phone carrier"
DELIVERED_DESCRIPTION = "Message has been delivered to the handset"
# The simulator marks AWS's failure simulator numbers with this type (server.EVENT_FAILED).
SIMULATOR_FAILED = "TEXT_UNREACHABLE"
DEFAULT_PRICE_PER_PART = 0.00581  # USD; example figure, like samples/prices.csv
DEFAULT_CARRIER_FEE_PER_PART = 0.00266


@dataclass(frozen=True)
class EventSettings:
    undelivered_share: float = 0.05  # of accepted messages (failure numbers come on top)
    duplicate_share: float = 0.0  # of events, delivered a second time
    reorder_share: float = 0.0  # of messages whose final event arrives before TEXT_SUCCESSFUL
    carrier_delay_s: float = 0.2  # from acceptance to TEXT_SUCCESSFUL (mean; exponential)
    handset_delay_s: float = 1.0  # from TEXT_SUCCESSFUL to the final event (mean; exponential)
    price_per_part: Mapping[str, float] = field(default_factory=dict)  # ISO country or "*" -> USD
    carrier_fee_per_part: float = DEFAULT_CARRIER_FEE_PER_PART

    def __post_init__(self) -> None:
        for name in ("undelivered_share", "duplicate_share", "reorder_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.carrier_delay_s < 0 or self.handset_delay_s < 0:
            raise ValueError("event delays cannot be negative")

    def price_for(self, country: str | None) -> float:
        table = self.price_per_part
        return float(table.get(country or "", table.get("*", DEFAULT_PRICE_PER_PART)))


@dataclass(frozen=True, order=True)
class PlannedEvent:
    arrives_after_s: float  # after the message was accepted
    event: dict[str, Any] = field(compare=False)


def plan_events(
    record: Mapping[str, Any],
    settings: EventSettings,
    rng: random.Random,
    accepted_ms: int | None = None,
) -> list[PlannedEvent]:
    """The events one accepted message produces, in arrival order. `record` is the simulator's
    record of the message (message_id, destination, origination, country, parts, encoding,
    message_type, context, dry_run, event). Dry runs produce none."""
    if record.get("dry_run"):
        return []
    accepted_ms = int(time.time() * 1000) if accepted_ms is None else accepted_ms
    carrier_s = rng.expovariate(1 / settings.carrier_delay_s) if settings.carrier_delay_s else 0.0
    handset_s = rng.expovariate(1 / settings.handset_delay_s) if settings.handset_delay_s else 0.0
    handset_s = max(handset_s, 0.001)  # the final event is strictly later than TEXT_SUCCESSFUL
    final_type, final_description = _final_outcome(record, settings, rng)
    common = _common_fields(record, settings, accepted_ms)
    successful = _event(
        common, "TEXT_SUCCESSFUL", SUCCESSFUL_DESCRIPTION, False, accepted_ms, carrier_s
    )
    final = _event(common, final_type, final_description, True, accepted_ms, carrier_s + handset_s)
    planned = [PlannedEvent(carrier_s, successful), PlannedEvent(carrier_s + handset_s, final)]
    if rng.random() < settings.reorder_share:
        # The final one overtakes: it arrives first, the TEXT_SUCCESSFUL a little later.
        planned = [PlannedEvent(carrier_s, final), PlannedEvent(carrier_s + handset_s, successful)]
    for original in list(planned):
        if rng.random() < settings.duplicate_share:
            later = original.arrives_after_s + rng.uniform(0.0, max(settings.handset_delay_s, 0.01))
            planned.append(PlannedEvent(later, dict(original.event)))
    return sorted(planned)


def _final_outcome(
    record: Mapping[str, Any], settings: EventSettings, rng: random.Random
) -> tuple[str, str]:
    if record.get("event") == SIMULATOR_FAILED:
        return SIMULATOR_FAILED, "The destination phone is unreachable (a failure simulator number)"
    if rng.random() < settings.undelivered_share:
        types = [t for t, _, _ in UNDELIVERED_TYPES]
        weights = [w for _, _, w in UNDELIVERED_TYPES]
        chosen = rng.choices(range(len(types)), weights)[0]
        return UNDELIVERED_TYPES[chosen][0], UNDELIVERED_TYPES[chosen][1]
    return "TEXT_DELIVERED", DELIVERED_DESCRIPTION


def _common_fields(
    record: Mapping[str, Any], settings: EventSettings, accepted_ms: int
) -> dict[str, Any]:
    parts = int(record.get("parts") or 1)
    country = record.get("country")
    common: dict[str, Any] = {
        "eventVersion": "1.0",
        "originationPhoneNumber": record.get("origination"),
        "destinationPhoneNumber": record.get("destination"),
        # The simulator's identities and test numbers are domestic pairs; nothing reads this flag.
        "isInternationalSend": False,
        "messageId": record["message_id"],
        "messageRequestTimestamp": accepted_ms,
        "messageEncoding": "UCS2" if record.get("encoding") == "UCS-2" else "GSM",
        "messageType": record.get("message_type") or "PROMOTIONAL",
        "context": dict(record.get("context") or {}),
        "totalMessageParts": parts,
        "totalMessagePrice": round(parts * settings.price_for(country), 5),
        "totalCarrierFee": round(parts * settings.carrier_fee_per_part, 5),
    }
    if country:
        common["isoCountryCode"] = country
    return common


def _event(
    common: Mapping[str, Any],
    event_type: str,
    description: str,
    is_final: bool,
    accepted_ms: int,
    after_s: float,
) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTimestamp": accepted_ms + max(int(after_s * 1000), 1),
        "isFinal": is_final,
        **common,
        "messageStatus": event_type.removeprefix("TEXT_"),
        "messageStatusDescription": description,
    }


# -- sinks ----------------------------------------------------------------------------------------


class EventSink(Protocol):
    def write(self, events: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """Appends one event per line (what `campaign events ingest --file` reads)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, events: Sequence[Mapping[str, Any]]) -> None:
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
        with self._lock:
            self._fh.write(text)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class SnsSink:
    """Publishes each event to an SNS topic, ten per PublishBatch (as AWS's SNS destination does,
    one event per notification)."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def write(self, events: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(events), 10):
            entries = [
                {"Id": str(i), "Message": json.dumps(e, separators=(",", ":"))}
                for i, e in enumerate(events[start : start + 10])
            ]
            response = self.client.publish_batch(
                TopicArn=self.topic_arn, PublishBatchRequestEntries=entries
            )
            failed = response.get("Failed") or []
            if failed:
                raise RuntimeError(f"SNS refused {len(failed)} events: {failed[0]}")

    def close(self) -> None:
        pass


# -- the emitter ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicRoute:
    """An SNS topic a message's events go to (an event destination of its configuration set), for
    the event types it matches (`TEXT_ALL`, `ALL` or single types)."""

    topic_arn: str
    event_types: frozenset[str] = frozenset({"ALL"})

    def takes(self, event_type: str) -> bool:
        channel = event_type.split("_", 1)[0]
        types = self.event_types
        return "ALL" in types or f"{channel}_ALL" in types or event_type in types


def sns_topic_sink(topic_arn: str) -> SnsSink:
    """A sink publishing to `topic_arn` through an SNS client made like the tool's own
    (`AWS_ENDPOINT_URL_SNS` reaches a local moto server); the region is the topic's."""
    from campaign.aws.sqs import make_client  # boto3 only once a message has an SNS destination

    parts = topic_arn.split(":")
    region = parts[3] if len(parts) > 5 and parts[3] else None
    return SnsSink(make_client("sns", region=region), topic_arn)


ErrorCallback = Callable[[str, BaseException], None]


class EventEmitter:
    """Plans the events of each accepted message and releases them to the sinks when due, from a
    thread of its own (the simulator's request threads never wait for a sink).

    `sinks` get every event; `accepted(record, routes)` adds SNS topics for one message's events
    (its configuration set's destinations), each made once by `topic_sink`."""

    def __init__(
        self,
        sinks: Sequence[EventSink],
        settings: EventSettings | None = None,
        *,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        topic_sink: Callable[[str], EventSink] = sns_topic_sink,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.settings = settings or EventSettings()
        self._rng = random.Random(seed)
        self._clock = clock
        self._wall_ms = wall_ms
        self._topic_sink = topic_sink
        self._topic_sinks: dict[str, EventSink] = {}
        self._on_error = on_error
        self._reported: set[tuple[str, str]] = set()
        self._heap: list[tuple[float, int, dict[str, Any], tuple[str, ...]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._flushing = False
        self.planned = 0
        self.emitted = 0
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="simulator-events", daemon=True)
        self._thread.start()

    def accepted(self, record: Mapping[str, Any], routes: Sequence[TopicRoute] = ()) -> None:
        """Call once per accepted message (the simulator's record of it), with the SNS topics its
        configuration set sends events to. With no sink and no route, nothing is planned."""
        if not self.sinks and not routes:
            return
        start = self._clock()
        with self._cond:
            planned = plan_events(record, self.settings, self._rng, self._wall_ms())
            for p in planned:
                topics = tuple(r.topic_arn for r in routes if r.takes(p.event["eventType"]))
                if not self.sinks and not topics:
                    continue
                heapq.heappush(
                    self._heap, (start + p.arrives_after_s, next(self._seq), p.event, topics)
                )
                self.planned += 1
            if planned:
                self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Release everything planned so far now, due or not; True once it is out."""
        with self._cond:
            target = self.planned
            self._flushing = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self.emitted >= target, timeout)

    def close(self, flush: bool = True) -> None:
        """Stop; with `flush`, everything planned is released at once, due or not."""
        with self._cond:
            self._closing = True
            if not flush:
                self._heap.clear()
            self._cond.notify_all()
        self._thread.join(timeout=30)
        for sink in [*self.sinks, *self._topic_sinks.values()]:
            sink.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while (
                    not self._closing
                    and not self._flushing
                    and (not self._heap or self._heap[0][0] > self._clock())
                ):
                    timeout = self._heap[0][0] - self._clock() if self._heap else None
                    self._cond.wait(timeout)
                everything = self._closing or self._flushing
                due_by = float("inf") if everything else self._clock()
                ready = []
                while self._heap and self._heap[0][0] <= due_by:
                    _, _, event, topics = heapq.heappop(self._heap)
                    ready.append((event, topics))
                self._flushing = False
                closing = self._closing
            if ready:
                self._release(ready)
            with self._cond:
                self.emitted += len(ready)
                self._cond.notify_all()
            if closing:
                return

    def _release(self, ready: list[tuple[dict[str, Any], tuple[str, ...]]]) -> None:
        events = [event for event, _ in ready]
        for sink in self.sinks:
            self._write(sink, events, "events file")
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for event, topics in ready:
            for topic in topics:
                by_topic.setdefault(topic, []).append(event)
        for topic, topic_events in by_topic.items():
            if topic not in self._topic_sinks:
                try:
                    self._topic_sinks[topic] = self._topic_sink(topic)
                except Exception as exc:  # e.g. no SNS endpoint or credentials: say it, go on
                    self._error(f"SNS topic {topic}", exc)
                    continue
            self._write(self._topic_sinks[topic], topic_events, f"SNS topic {topic}")

    def _write(self, sink: EventSink, events: list[dict[str, Any]], where: str) -> None:
        try:
            sink.write(events)
        except Exception as exc:  # a sink that fails must not stop the simulator
            self._error(where, exc)

    def _error(self, where: str, exc: BaseException) -> None:
        self.errors.append(exc)
        key = (where, type(exc).__name__)
        if self._on_error is not None and key not in self._reported:
            self._reported.add(key)  # once per sink and kind of error, not once per event
            self._on_error(where, exc)
