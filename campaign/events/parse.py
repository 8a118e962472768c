"""SMS delivery events, from whatever carried them to a `DeliveryEvent` (or a `Rejected`). Pure.

AWS End User Messaging SMS writes one JSON event per status change of a message. It reaches us
wrapped in one of several ways, all accepted here (see ../shared/aws-facts.md, "Delivery events"):
- an SQS body holding the SNS envelope (`{"Type": "Notification", "Message": "<event JSON>", ...}`),
- an SQS body holding the bare event (the subscription has RawMessageDelivery=true),
- an EventBridge event (`{"source": "aws.sms-voice", "detail": {...event...}}`),
- Firehose output: files of events concatenated or one per line (see campaign.events.sources).

Nothing here raises on bad input: a body that is not an SMS event becomes a `Rejected` with its reason,
which the ingester stores aside and counts (so one bad message never blocks a queue).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Why an input was set aside (`events_aside.reason`). The first three are decided here, the last two
# by the ledger, which alone knows its campaigns and MessageIds.
MALFORMED = "malformed"  # not JSON, or JSON that is not an object
MISSING_FIELDS = "missing_fields"  # an object, but not an event (no messageId, eventType, timestamp)
OTHER_CHANNEL = "other_channel"  # VOICE_*, RCS_*, ...: an event, but not an SMS one
OTHER_CAMPAIGN = "other_campaign"  # its context names a campaign this ledger does not have
UNKNOWN_MESSAGE = "unknown_message"  # no context of ours and a MessageId this ledger does not know
ASIDE_REASONS = (MALFORMED, MISSING_FIELDS, OTHER_CHANNEL, OTHER_CAMPAIGN, UNKNOWN_MESSAGE)

DELIVERED = "delivered"
UNDELIVERED = "undelivered"
SMS_PREFIX = "TEXT_"
RAW_KEPT_CHARS = 4096  # of a rejected body: enough to see what it was, bounded for a flood of junk


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One SMS event, with the fields the ledger uses (names as AWS spells them in the comments)."""

    message_id: str  # messageId
    event_type: str  # eventType, e.g. TEXT_DELIVERED
    event_ts: int  # eventTimestamp, Unix milliseconds
    is_final: bool  # isFinal
    status: str | None = None  # messageStatus
    description: str | None = None  # messageStatusDescription
    context: Mapping[str, str] = field(default_factory=dict)  # context: what the sender put in
    destination: str | None = None  # destinationPhoneNumber
    origination: str | None = None  # originationPhoneNumber (may be a sender ID)
    parts: int | None = None  # totalMessageParts
    price: float | None = None  # totalMessagePrice, USD
    carrier_fee: float | None = None  # totalCarrierFee, USD
    iso_country: str | None = None  # isoCountryCode (not always present)

    @property
    def delivery(self) -> str | None:
        """`delivered`, `undelivered`, or None (still awaiting) — what this event says."""
        return delivery_of(self.event_type, self.is_final)

    @property
    def charged(self) -> float | None:
        """What AWS charged for the message: totalMessagePrice + totalCarrierFee (USD)."""
        if self.price is None and self.carrier_fee is None:
            return None
        return (self.price or 0.0) + (self.carrier_fee or 0.0)

    @property
    def reason(self) -> str:
        """The event as a reason line: `TEXT_BLOCKED: Blocked by the carrier`."""
        return f"{self.event_type}: {self.description}" if self.description else self.event_type


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input that is not an SMS event we can use, and why."""

    reason: str  # one of MALFORMED, MISSING_FIELDS, OTHER_CHANNEL
    detail: str
    raw: str  # the input, cut to RAW_KEPT_CHARS
    message_id: str | None = None
    event_type: str | None = None
    event_ts: int | None = None


Parsed = DeliveryEvent | Rejected


def delivery_of(event_type: str, is_final: bool) -> str | None:
    """The mapping of aws-facts.md: TEXT_DELIVERED, or TEXT_SUCCESSFUL with isFinal, is delivered;
    any other type with isFinal is undelivered; the rest is still awaiting. Final-ness comes from
    isFinal, never from the type (TEXT_SUCCESSFUL comes both ways; TEXT_CARRIER_UNREACHABLE is a
    temporary error until a final one says otherwise)."""
    if event_type == "TEXT_DELIVERED" or (is_final and event_type == "TEXT_SUCCESSFUL"):
        return DELIVERED
    if is_final:
        return UNDELIVERED
    return None


def parse_body(body: str) -> Parsed:
    """One SQS message body (SNS envelope, bare event, or EventBridge event)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return Rejected(MALFORMED, f"not JSON: {_first_line(exc)}", _cut(body))
    return parse_document(document, body)


def parse_document(document: Any, raw: str | None = None) -> Parsed:
    """An already decoded JSON value. `raw` is its text when at hand (kept if it is rejected)."""
    if not isinstance(document, dict):
        return Rejected(MALFORMED, f"a JSON {_json_kind(document)}, not an object", _raw(raw, document))
    if document.get("Type") == "Notification" and "Message" in document:
        message = document["Message"]
        if not isinstance(message, str):
            return Rejected(MALFORMED, "SNS envelope whose Message is not a string", _raw(raw, document))
        try:
            inner = json.loads(message)
        except (ValueError, RecursionError) as exc:
            detail = f"SNS Message is not JSON: {_first_line(exc)}"
            return Rejected(MALFORMED, detail, _raw(raw, document))
        if not isinstance(inner, dict):
            detail = f"SNS Message is a JSON {_json_kind(inner)}, not an object"
            return Rejected(MALFORMED, detail, _raw(raw, document))
        return _event(inner, raw, document)
    if "eventType" not in document and isinstance(document.get("detail"), dict):
        return _event(document["detail"], raw, document)  # EventBridge
    return _event(document, raw, document)


def _event(obj: Mapping[str, Any], raw: str | None, outer: Any) -> Parsed:
    message_id = obj.get("messageId")
    event_type = obj.get("eventType")
    event_ts = _int(obj.get("eventTimestamp"))
    missing = [
        name
        for name, ok in (
            ("messageId", isinstance(message_id, str) and message_id != ""),
            ("eventType", isinstance(event_type, str) and event_type != ""),
            ("eventTimestamp", event_ts is not None),
        )
        if not ok
    ]
    kept_id = message_id if isinstance(message_id, str) and message_id else None
    kept_type = event_type if isinstance(event_type, str) and event_type else None
    if missing:
        what = _what_it_is(outer)
        return Rejected(
            MISSING_FIELDS,
            f"{what}no {', '.join(missing)}",
            _raw(raw, outer),
            kept_id,
            kept_type,
            event_ts,
        )
    assert isinstance(message_id, str) and isinstance(event_type, str) and event_ts is not None
    if not event_type.startswith(SMS_PREFIX):
        return Rejected(
            OTHER_CHANNEL,
            f"{event_type} is not an SMS event",
            _raw(raw, outer),
            message_id,
            event_type,
            event_ts,
        )
    context = obj.get("context")
    return DeliveryEvent(
        message_id=message_id,
        event_type=event_type,
        event_ts=event_ts,
        is_final=obj.get("isFinal") is True,
        status=_str(obj.get("messageStatus")),
        description=_str(obj.get("messageStatusDescription")),
        context=(
            {str(k): str(v) for k, v in context.items() if v is not None}
            if isinstance(context, dict)
            else {}
        ),
        destination=_str(obj.get("destinationPhoneNumber")),
        origination=_str(obj.get("originationPhoneNumber")),
        parts=_int(obj.get("totalMessageParts")),
        price=_float(obj.get("totalMessagePrice")),
        carrier_fee=_float(obj.get("totalCarrierFee")),
        iso_country=_str(obj.get("isoCountryCode")),
    )


# -- files: Firehose output and JSON Lines ------------------------------------------------------

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def parse_text(text: str) -> Iterator[Parsed]:
    """Every event in `text`: one JSON value per line, or values concatenated with or without
    newlines between them (Firehose writes `{...}{...}`). A value that does not decode is rejected
    up to the end of its line, and reading goes on from the next line."""
    end = len(text)
    pos = 0
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            return
        try:
            document, stop = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            line_end = text.find("\n", pos)
            line_end = end if line_end < 0 else line_end
            yield Rejected(MALFORMED, f"not JSON: {_first_line(exc)}", _cut(text[pos:line_end]))
            pos = line_end + 1
            continue
        yield parse_document(document)
        pos = stop


# -- helpers ------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def _what_it_is(outer: Any) -> str:
    if isinstance(outer, dict) and isinstance(outer.get("Type"), str):
        return f"an SNS {outer['Type']}, not an event: "
    return ""


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _cut(text: str) -> str:
    return text if len(text) <= RAW_KEPT_CHARS else text[:RAW_KEPT_CHARS] + "..."


def _raw(raw: str | None, document: Any) -> str:
    if raw is None:
        try:
            raw = json.dumps(document, ensure_ascii=False)
        except (TypeError, ValueError):
            raw = repr(document)
    return _cut(raw)
