"""SMS delivery events, from whatever carried them to a `DeliveryEvent` (or a `Rejected`). Pure.

AWS End User Messaging SMS writes one JSON event per status change of a message. It reaches us
wrapped in one of several ways, all accepted here (see docs/aws-facts.md, "Delivery events"):
- an SQS body holding the SNS envelope (`{"Type": "Notification", "Message": "<event JSON>", ...}`),
- an SQS body holding the bare event (the subscription has RawMessageDelivery=true),
- an EventBridge event (`{"source": "aws.sms-voice", "detail": {...event...}}`),
- Firehose output: files of events concatenated or one per line (see campaign.events.sources).

Nothing here raises on bad input: a body that is not an SMS event becomes a `Rejected` with its reason,
which the ingester stores aside and counts (so one bad message never blocks a queue).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

# Why an input was set aside (`events_aside.reason`). The first three are decided here, the last two
# by the ledger, which alone knows its campaigns and MessageIds.
MALFORMED = "malformed"  # not JSON, or JSON that is not an object
MISSING_FIELDS = (
    "missing_fields"  # an object, but not an event (no messageId, eventType, timestamp)
)
OTHER_CHANNEL = "other_channel"  # VOICE_*, RCS_*, ...: an event, but not an SMS one
OTHER_CAMPAIGN = "other_campaign"  # its context names a campaign this ledger does not have
UNKNOWN_MESSAGE = "unknown_message"  # no context of ours and a MessageId this ledger does not know

DELIVERED = "delivered"
UNDELIVERED = "undelivered"
SMS_PREFIX = "TEXT_"
# What the ledger's columns hold (campaign.ledger.tables: events, events_aside).
MESSAGE_ID_CHARS = 128
EVENT_TYPE_CHARS = 64
STATUS_CHARS = 64
INT64_LIMIT = 1 << 63  # eventTimestamp, a BIGINT
INT32_LIMIT = 1 << 31  # totalMessageParts, an INTEGER
RAW_KEPT_CHARS = 4096  # of a rejected body: enough to see what it was, bounded for a flood of junk


EMPTY_CONTEXT: Mapping[str, str] = MappingProxyType({})


class DeliveryEvent(NamedTuple):
    """One SMS event, with the fields the ledger uses (names as AWS spells them in the comments).

    Immutable; a NamedTuple rather than a frozen dataclass because a million are made per file and
    a tuple is built several times faster."""

    message_id: str  # messageId
    event_type: str  # eventType, e.g. TEXT_DELIVERED
    event_ts: int  # eventTimestamp, Unix milliseconds
    is_final: bool  # isFinal
    delivery: str | None  # delivered / undelivered / None (awaiting): delivery_of(type, isFinal)
    status: str | None = None  # messageStatus
    description: str | None = None  # messageStatusDescription
    context: Mapping[str, str] = EMPTY_CONTEXT  # context: what the sender put in
    destination: str | None = None  # destinationPhoneNumber
    origination: str | None = None  # originationPhoneNumber (may be a sender ID)
    parts: int | None = None  # totalMessageParts
    price: float | None = None  # totalMessagePrice, USD
    carrier_fee: float | None = None  # totalCarrierFee, USD
    iso_country: str | None = None  # isoCountryCode (not always present)

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
    digest: str = ""  # sha256 of the whole input: the same junk read twice is counted once

    @property
    def fingerprint(self) -> str:
        """What makes two rejected inputs the same one: the event key when it has one."""
        if self.message_id and self.event_type and self.event_ts is not None:
            return event_key(self.message_id, self.event_type, self.event_ts)
        return f"sha256:{self.digest}"


Parsed = DeliveryEvent | Rejected


def event_key(message_id: str, event_type: str, event_ts: int) -> str:
    """AWS's events are unique on (messageId, eventType, eventTimestamp) (docs/aws-facts.md)."""
    return f"{message_id}|{event_type}|{event_ts}"


def delivery_of(event_type: str, is_final: bool) -> str | None:
    """The mapping of docs/aws-facts.md: TEXT_DELIVERED, or TEXT_SUCCESSFUL with isFinal, is
    delivered; any other type with isFinal is undelivered; the rest is still awaiting. Final-ness
    comes from isFinal, never from the type (TEXT_SUCCESSFUL comes both ways;
    TEXT_CARRIER_UNREACHABLE is a temporary error until a final one says otherwise)."""
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
        return _rejected(MALFORMED, f"not JSON: {_first_line(exc)}", body)
    return parse_document(document, body)


def parse_document(document: Any, raw: str | None = None) -> Parsed:
    """An already decoded JSON value. `raw` is its text when at hand (kept if it is rejected)."""
    if not isinstance(document, dict):
        detail = f"a JSON {_json_kind(document)}, not an object"
        return _rejected(MALFORMED, detail, _text(raw, document))
    if document.get("Type") == "Notification" and "Message" in document:
        message = document["Message"]
        if not isinstance(message, str):
            detail = "SNS envelope whose Message is not a string"
            return _rejected(MALFORMED, detail, _text(raw, document))
        try:
            inner = json.loads(message)
        except (ValueError, RecursionError) as exc:
            detail = f"SNS Message is not JSON: {_first_line(exc)}"
            return _rejected(MALFORMED, detail, _text(raw, document))
        if not isinstance(inner, dict):
            detail = f"SNS Message is a JSON {_json_kind(inner)}, not an object"
            return _rejected(MALFORMED, detail, _text(raw, document))
        return _event(inner, raw, document)
    if "eventType" not in document and isinstance(document.get("detail"), dict):
        return _event(document["detail"], raw, document)  # EventBridge
    return _event(document, raw, document)


def _event(obj: Mapping[str, Any], raw: str | None, outer: Any) -> Parsed:
    # Written for speed (a million events per file): the usual case is checked first, in line.
    message_id = obj.get("messageId")
    event_type = obj.get("eventType")
    event_ts = obj.get("eventTimestamp")
    if type(event_ts) is not int:
        event_ts = _int(event_ts)
    if not (type(message_id) is str and message_id and type(event_type) is str and event_type):
        return _missing(obj, raw, outer)
    if event_ts is None:
        return _missing(obj, raw, outer)
    if (
        len(message_id) > MESSAGE_ID_CHARS
        or len(event_type) > EVENT_TYPE_CHARS
        or not 0 <= event_ts < INT64_LIMIT
    ):  # no AWS event: a key the ledger could not store (it stopped the whole ingest)
        detail = "messageId, eventType or eventTimestamp out of range"
        return _rejected(MALFORMED, detail, _text(raw, outer))
    if not event_type.startswith(SMS_PREFIX):
        detail = f"{event_type} is not an SMS event"
        return _rejected(OTHER_CHANNEL, detail, _text(raw, outer), message_id, event_type, event_ts)
    get = obj.get
    is_final = get("isFinal") is True
    context = get("context")
    if type(context) is dict:
        if not all(type(v) is str for v in context.values()):
            context = {str(k): str(v) for k, v in context.items() if v is not None}
    else:
        context = EMPTY_CONTEXT
    parts = get("totalMessageParts")
    parts = parts if type(parts) is int else _int(parts)
    price = get("totalMessagePrice")
    fee = get("totalCarrierFee")
    status = _str(get("messageStatus"))
    country = _str(get("isoCountryCode"))
    # Optional fields out of what AWS sends, or of what the ledger's columns hold, are dropped:
    # the event still says what became of the message.
    return DeliveryEvent(
        message_id,
        event_type,
        event_ts,
        is_final,
        delivery_of(event_type, is_final),
        status if status is None or len(status) <= STATUS_CHARS else status[:STATUS_CHARS],
        _str(get("messageStatusDescription")),
        context,
        _str(get("destinationPhoneNumber")),
        _str(get("originationPhoneNumber")),
        parts if parts is not None and 0 <= parts < INT32_LIMIT else None,
        _finite(price if type(price) is float else _float(price)),
        _finite(fee if type(fee) is float else _float(fee)),
        country if country is not None and len(country) == 2 else None,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _missing(obj: Mapping[str, Any], raw: str | None, outer: Any) -> Rejected:
    message_id = obj.get("messageId")
    event_type = obj.get("eventType")
    event_ts = _int(obj.get("eventTimestamp"))
    kept_id = message_id if isinstance(message_id, str) and message_id else None
    kept_type = event_type if isinstance(event_type, str) and event_type else None
    kept_id = kept_id if kept_id is None or len(kept_id) <= MESSAGE_ID_CHARS else None
    kept_type = kept_type if kept_type is None or len(kept_type) <= EVENT_TYPE_CHARS else None
    event_ts = event_ts if event_ts is None or 0 <= event_ts < INT64_LIMIT else None
    missing = [
        name
        for name, value in (
            ("messageId", kept_id),
            ("eventType", kept_type),
            ("eventTimestamp", event_ts),
        )
        if value is None
    ]
    detail = f"{_what_it_is(outer)}no {', '.join(missing)}"
    return _rejected(MISSING_FIELDS, detail, _text(raw, outer), kept_id, kept_type, event_ts)


# -- files: Firehose output and JSON Lines ------------------------------------------------------

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def parse_text(text: str) -> list[Parsed]:
    """Every event in `text`: one JSON value per line, or values concatenated with or without
    whitespace between them (Firehose writes `{...}{...}`), or pretty-printed. A value that does not
    decode is rejected up to the end of its line (or to Firehose's `}{` before the next value), and
    reading goes on from there."""
    return parse_chunk(text, final=True)[0]


def parse_chunk(text: str, *, final: bool) -> tuple[list[Parsed], int, bool]:
    """`parse_text` for one chunk of a longer stream: returns the items, how much of `text` they
    used, and whether the last item is an undecodable value that goes on past the chunk (its rest,
    up to `resume_at`, is then no new input: the caller skips it). Unless `final`, a value cut by
    the end of the chunk is left for the next one."""
    items: list[Parsed] = []
    end = len(text)
    pos = 0
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            return items, end, False
        try:
            document, stop = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            if not final and _cut_by_chunk_end(exc, pos, end):
                return items, pos, False
            resume = resume_at(text, pos)
            bad = text[pos:] if resume < 0 else text[pos:resume].rstrip()
            items.append(_rejected(MALFORMED, f"not JSON: {_first_line(exc)}", bad))
            if resume < 0:
                return items, end, not final
            pos = resume
            continue
        items.append(parse_document(document))
        pos = stop


def resume_at(text: str, pos: int) -> int:
    """Where reading may go on after an undecodable value that starts before `pos`: the next line,
    or the next value after Firehose's `}{`; -1 when `text` holds neither."""
    found = [i + 1 for i in (text.find("\n", pos), text.find("}{", pos)) if i >= 0]
    return min(found) if found else -1


MAX_VALUE_CHARS = 256 * 1024  # an SMS event is about 1 KB; a longer undecodable value is malformed


def _cut_by_chunk_end(exc: BaseException, pos: int, end: int) -> bool:
    """Whether a decoding error may only mean that the value goes on in the next chunk: the decoder
    ran into the end of the text (a string still open, or within a few characters of the end: a
    literal like `tru` or a number cut short). A raw newline inside a string is an error of its own
    ("Invalid control character"), so a broken line never looks cut."""
    if not isinstance(exc, json.JSONDecodeError) or end - pos > MAX_VALUE_CHARS:
        return False
    return exc.msg.startswith("Unterminated string") or exc.pos >= end - 8


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
    return value if type(value) is str and value else None


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


def _rejected(
    reason: str,
    detail: str,
    text: str,
    message_id: str | None = None,
    event_type: str | None = None,
    event_ts: int | None = None,
) -> Rejected:
    digest = hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()
    kept = text if len(text) <= RAW_KEPT_CHARS else text[:RAW_KEPT_CHARS] + "..."
    return Rejected(reason, detail, kept, message_id, event_type, event_ts, digest)


def _text(raw: str | None, document: Any) -> str:
    """The input as text: as read when at hand, else re-encoded (sorted keys: the same object read
    twice gets the same digest)."""
    if raw is not None:
        return raw
    try:
        return json.dumps(document, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(document)
