"""Parsing delivery events: every wrapping AWS uses, every way a body can be wrong. Pure tables."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from campaign.events.parse import (
    DELIVERED,
    MALFORMED,
    MISSING_FIELDS,
    OTHER_CHANNEL,
    UNDELIVERED,
    DeliveryEvent,
    Rejected,
    delivery_of,
    parse_body,
    parse_document,
    parse_text,
)
from campaign.events.sources import EventFileError, _read_stream, event_files, read_events

# AWS's own example event (docs/aws-facts.md), verbatim.
AWS_EXAMPLE = {
    "eventType": "TEXT_SUCCESSFUL",
    "eventVersion": "1.0",
    "eventTimestamp": 1686975103470,
    "isFinal": True,
    "originationPhoneNumber": "+12065550152",
    "destinationPhoneNumber": "+14255550156",
    "isInternationalSend": False,
    "mcc": "310",
    "mnc": "800",
    "messageId": "862a8790-60c0-4430-9b2b-658bdexample",
    "messageRequestTimestamp": 1686975103170,
    "messageEncoding": "GSM",
    "messageType": "PROMOTIONAL",
    "messageStatus": "SUCCESSFUL",
    "messageStatusDescription": "Message has been accepted by phone carrier",
    "context": {"account": "bar"},
    "totalMessageParts": 1,
    "totalMessagePrice": 0.09582,
    "totalCarrierFee": 0.0,
}

# eventType, isFinal -> delivery (None: still awaiting). Final-ness comes from isFinal, not the type.
DELIVERY_TABLE = [
    ("TEXT_QUEUED", False, None),
    ("TEXT_PENDING", False, None),
    ("TEXT_SUCCESSFUL", False, None),  # accepted by the carrier, more to come
    ("TEXT_SUCCESSFUL", True, DELIVERED),  # a carrier without handset receipts: this is the end
    ("TEXT_DELIVERED", True, DELIVERED),
    ("TEXT_DELIVERED", False, DELIVERED),  # a handset receipt is a receipt, whatever the flag
    ("TEXT_CARRIER_UNREACHABLE", False, None),  # temporary: the carrier retries
    ("TEXT_CARRIER_UNREACHABLE", True, UNDELIVERED),
    ("TEXT_INVALID", True, UNDELIVERED),
    ("TEXT_INVALID_MESSAGE", True, UNDELIVERED),
    ("TEXT_UNREACHABLE", True, UNDELIVERED),
    ("TEXT_BLOCKED", True, UNDELIVERED),
    ("TEXT_CARRIER_BLOCKED", True, UNDELIVERED),
    ("TEXT_SPAM", True, UNDELIVERED),
    ("TEXT_UNKNOWN", True, UNDELIVERED),
    ("TEXT_TTL_EXPIRED", True, UNDELIVERED),
    ("TEXT_PROTECT_BLOCKED", True, UNDELIVERED),
    ("TEXT_SOMETHING_NEW", True, UNDELIVERED),  # the enum grows: a final unknown type is a failure
    ("TEXT_SOMETHING_NEW", False, None),
]


@pytest.mark.parametrize(("event_type", "is_final", "expected"), DELIVERY_TABLE)
def test_delivery_of(event_type: str, is_final: bool, expected: str | None) -> None:
    assert delivery_of(event_type, is_final) == expected
    parsed = parse_body(json.dumps({**AWS_EXAMPLE, "eventType": event_type, "isFinal": is_final}))
    assert isinstance(parsed, DeliveryEvent)
    assert parsed.delivery == expected


def test_aws_example_event_parses_with_every_field() -> None:
    parsed = parse_body(json.dumps(AWS_EXAMPLE))
    assert parsed == DeliveryEvent(
        message_id="862a8790-60c0-4430-9b2b-658bdexample",
        event_type="TEXT_SUCCESSFUL",
        event_ts=1686975103470,
        is_final=True,
        delivery="delivered",
        status="SUCCESSFUL",
        description="Message has been accepted by phone carrier",
        context={"account": "bar"},
        destination="+14255550156",
        origination="+12065550152",
        parts=1,
        price=0.09582,
        carrier_fee=0.0,
        iso_country=None,
    )
    assert parsed.charged == pytest.approx(0.09582)
    assert parsed.reason == "TEXT_SUCCESSFUL: Message has been accepted by phone carrier"


def _sns(message: Any) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "5e9d-sns",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:sms-events",
            "Message": message,
            "Timestamp": "2026-11-28T10:00:00.000Z",
        }
    )


def _eventbridge(detail: Any) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "eb-1",
            "detail-type": "Text Message Delivery Status Updated",
            "source": "aws.sms-voice",
            "detail": detail,
        }
    )


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(AWS_EXAMPLE),  # raw (RawMessageDelivery=true)
        _sns(json.dumps(AWS_EXAMPLE)),  # the SNS envelope
        _eventbridge(AWS_EXAMPLE),  # EventBridge
        "  \n" + json.dumps(AWS_EXAMPLE, indent=2) + "\n",  # pretty-printed, with whitespace
    ],
    ids=["raw", "sns-envelope", "eventbridge", "pretty"],
)
def test_every_wrapping_gives_the_same_event(body: str) -> None:
    assert parse_body(body) == parse_body(json.dumps(AWS_EXAMPLE))


# body -> (reason, words the detail must contain)
REJECTED_TABLE: list[tuple[str, str, str, str]] = [
    ("not-json", "{not json", MALFORMED, "not JSON"),
    ("empty", "", MALFORMED, "not JSON"),
    ("truncated", json.dumps(AWS_EXAMPLE)[:40], MALFORMED, "not JSON"),
    ("array", "[1, 2]", MALFORMED, "array"),
    ("string", '"TEXT_DELIVERED"', MALFORMED, "string"),
    ("null", "null", MALFORMED, "null"),
    ("sns-not-json", _sns("hello"), MALFORMED, "SNS Message is not JSON"),
    ("sns-not-string", _sns({"a": 1}).replace('"Message": {"a": 1}', '"Message": 5'), MALFORMED, "not a string"),
    ("sns-array", _sns("[1]"), MALFORMED, "array"),
    ("sns-subscription", json.dumps({"Type": "SubscriptionConfirmation", "Message": "confirm"}), MISSING_FIELDS, "SubscriptionConfirmation"),
    ("no-message-id", json.dumps({**AWS_EXAMPLE, "messageId": None}), MISSING_FIELDS, "messageId"),
    ("no-type", json.dumps({k: v for k, v in AWS_EXAMPLE.items() if k != "eventType"}), MISSING_FIELDS, "eventType"),
    ("bad-timestamp", json.dumps({**AWS_EXAMPLE, "eventTimestamp": "yesterday"}), MISSING_FIELDS, "eventTimestamp"),
    ("bool-timestamp", json.dumps({**AWS_EXAMPLE, "eventTimestamp": True}), MISSING_FIELDS, "eventTimestamp"),
    ("empty-object", "{}", MISSING_FIELDS, "messageId, eventType, eventTimestamp"),
    ("voice", json.dumps({**AWS_EXAMPLE, "eventType": "VOICE_COMPLETED"}), OTHER_CHANNEL, "VOICE_COMPLETED"),
    ("rcs", _sns(json.dumps({**AWS_EXAMPLE, "eventType": "RCS_DELIVERED"})), OTHER_CHANNEL, "RCS_DELIVERED"),
    ("media", json.dumps({**AWS_EXAMPLE, "eventType": "MEDIA_DELIVERED"}), OTHER_CHANNEL, "MEDIA"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "reason", "words"), [t[1:] for t in REJECTED_TABLE], ids=[t[0] for t in REJECTED_TABLE]
)
def test_what_is_not_an_sms_event_is_rejected_with_its_reason(
    body: str, reason: str, words: str
) -> None:
    parsed = parse_body(body)
    assert isinstance(parsed, Rejected)
    assert parsed.reason == reason
    assert words in parsed.detail
    assert parsed.raw == body[: len(parsed.raw)]  # the input is kept to look at
    assert len(parsed.digest) == 64


def test_a_rejected_event_keeps_its_key_and_fingerprint() -> None:
    parsed = parse_body(json.dumps({**AWS_EXAMPLE, "eventType": "VOICE_COMPLETED"}))
    assert isinstance(parsed, Rejected)
    assert (
        parsed.fingerprint == "862a8790-60c0-4430-9b2b-658bdexample|VOICE_COMPLETED|1686975103470"
    )
    junk = parse_body("junk")
    assert isinstance(junk, Rejected)
    assert junk.fingerprint == f"sha256:{junk.digest}"
    assert parse_body("junk") == junk  # the same junk twice: the same fingerprint


def test_a_huge_rejected_body_is_kept_cut() -> None:
    parsed = parse_body("x" * 100_000)
    assert isinstance(parsed, Rejected)
    assert len(parsed.raw) < 5_000


def test_lenient_field_types() -> None:
    parsed = parse_body(
        json.dumps(
            {
                **AWS_EXAMPLE,
                "eventTimestamp": "1686975103470",  # a numeric string
                "isFinal": "true",  # not the boolean true: not final
                "totalMessagePrice": "0.5",
                "totalCarrierFee": None,
                "totalMessageParts": "x",
                "context": ["not", "a", "map"],
                "isoCountryCode": "US",
            }
        )
    )
    assert isinstance(parsed, DeliveryEvent)
    assert parsed.event_ts == 1686975103470
    assert parsed.is_final is False
    assert (parsed.price, parsed.carrier_fee, parsed.parts) == (0.5, None, None)
    assert parsed.charged == 0.5
    assert parsed.context == {}
    assert parsed.iso_country == "US"


# -- files ----------------------------------------------------------------------------------------


def _event(i: int, event_type: str = "TEXT_DELIVERED") -> dict[str, Any]:
    return {**AWS_EXAMPLE, "messageId": f"m{i}", "eventType": event_type}


def test_json_lines_concatenated_and_pretty_all_read() -> None:
    jsonl = "\n".join(json.dumps(_event(i)) for i in range(3)) + "\n"
    firehose = "".join(json.dumps(_event(i)) for i in range(3))  # no separator at all
    pretty = "\n".join(json.dumps(_event(i), indent=2) for i in range(3))
    for text in (jsonl, firehose, pretty, jsonl.replace("\n", "\r\n")):
        assert [p.message_id for p in parse_text(text)] == ["m0", "m1", "m2"]


def test_a_bad_line_is_rejected_and_reading_goes_on() -> None:
    text = "\n".join(
        [json.dumps(_event(0)), '{"eventType": "TEXT_DEL', "garbage", json.dumps(_event(1))]
    )
    parsed = parse_text(text)
    assert [type(p).__name__ for p in parsed] == [
        "DeliveryEvent",
        "Rejected",
        "Rejected",
        "DeliveryEvent",
    ]
    assert parsed[1].raw == '{"eventType": "TEXT_DEL'  # type: ignore[union-attr]


@pytest.mark.parametrize("separator", ["\n", "", "\n\n  "], ids=["lines", "concatenated", "spaced"])
def test_values_cut_by_any_chunk_boundary_are_read_whole(separator: str) -> None:
    # Every chunk size from 1 character up: every possible place for a cut inside a value.
    values = [
        _event(0),
        {**_event(1), "messageStatusDescription": 'quote " brace }{ \\ é ✓'},
        _event(2),
    ]
    text = separator.join(json.dumps(v, ensure_ascii=False) for v in values)
    for size in range(1, len(text) + 2, 7 if separator else 1):
        parsed = list(_read_stream(io.StringIO(text), size))
        assert [getattr(p, "message_id", p) for p in parsed] == ["m0", "m1", "m2"], size


def test_files_gzip_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "firehose" / "2026" / "11"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text("".join(json.dumps(_event(i)) + "\n" for i in range(2)))
    with gzip.open(folder / "b", "wt") as fh:  # gzip told by its bytes, not its name
        fh.write("".join(json.dumps(_event(i)) for i in range(2, 4)))
    (folder / ".hidden").write_text("not read")
    files = event_files([tmp_path / "firehose"])
    assert [f.name for f in files] == ["a.jsonl", "b"]
    ids = [p.message_id for f in files for p in read_events(f)]
    assert ids == ["m0", "m1", "m2", "m3"]
    with pytest.raises(EventFileError, match="no such file"):
        event_files([tmp_path / "missing"])


def test_a_truncated_gzip_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(
        gzip.compress(b"".join(json.dumps(_event(i)).encode() for i in range(50)))[:-30]
    )
    with pytest.raises(EventFileError, match=r"cut\.gz"):
        list(read_events(path))


@pytest.mark.parametrize("damage", ["flipped bytes", "bad header"])
def test_a_damaged_gzip_file_is_one_clear_error(tmp_path: Path, damage: str) -> None:
    """Not only a cut file: corrupt deflate data raises zlib.error, a bad header BadGzipFile."""
    data = bytearray(gzip.compress(b"".join(json.dumps(_event(i)).encode() for i in range(50))))
    if damage == "flipped bytes":
        for i in range(40, 80):
            data[i] ^= 0x5A
    else:
        data[2] = 0x07  # the compression method
    path = tmp_path / "damaged.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(EventFileError, match=r"damaged\.gz: a damaged gzip file .*move it aside"):
        list(read_events(path))


def _kinds(parsed: list[Any]) -> list[str]:
    return [getattr(p, "message_id", None) or f"rejected:{p.reason}" for p in parsed]


@pytest.mark.parametrize(
    "bad",
    [
        "x" * 300_000,  # junk longer than a chunk and than any value kept whole
        '"' + "z" * 300_000,  # a string never closed
        json.dumps({**_event(9), "pad": "y" * 1_100_000}),  # longer than a chunk: not an event
    ],
    ids=["junk", "open-string", "huge-value"],
)
def test_a_line_longer_than_a_chunk_is_one_rejected_input(bad: str) -> None:
    """It was one rejected input per chunk it spanned, the later ones counted as `already
    recorded` when their text repeated."""
    text = json.dumps(_event(0)) + "\n" + bad + "\n" + json.dumps(_event(1)) + "\n"
    for size in (4096, 100_000, 1 << 20):
        parsed = list(_read_stream(io.StringIO(text), size))
        assert _kinds(parsed) == ["m0", "rejected:malformed", "m1"], size


def test_values_after_a_broken_one_in_firehose_output_are_read() -> None:
    """Firehose writes values back to back, with no newline: a broken one is rejected up to the
    `}{` before the next value, not to the end of the file."""
    values = [json.dumps(_event(i)) for i in range(6)]
    text = "".join(values[:3]) + '{"eventType": broken}' + "".join(values[3:])
    assert _kinds(parse_text(text)) == ["m0", "m1", "m2", "rejected:malformed", "m3", "m4", "m5"]
    for size in range(64, len(text) + 2, 13):  # the `}{` after it cut by every chunk boundary
        parsed = list(_read_stream(io.StringIO(text), size))
        assert _kinds(parsed) == ["m0", "m1", "m2", "rejected:malformed", "m3", "m4", "m5"], size
    long_broken = "".join(values[:1]) + '{"x": ' + "1" * 5000 + "}" + "".join(values[1:])
    for size in (100, 997, 4096):  # a broken value longer than the chunk, then `}{`
        parsed = list(_read_stream(io.StringIO(long_broken), size))
        assert _kinds(parsed) == ["m0", "rejected:malformed", "m1", "m2", "m3", "m4", "m5"], size


@pytest.mark.parametrize("compressed", [False, True], ids=["jsonl", "gzip"])
def test_a_pipe_given_by_name_is_read_once_whole(tmp_path: Path, compressed: bool) -> None:
    """`--file <(zcat ...)` names a pipe: it was refused as "no such file or folder", and the
    gzip probe read its first bytes before it was opened again."""
    import os
    import threading

    data = "".join(json.dumps(_event(i)) + "\n" for i in range(3)).encode()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as fh:
            fh.write(gzip.compress(data) if compressed else data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    [found] = event_files([fifo])
    assert [p.message_id for p in read_events(found)] == ["m0", "m1", "m2"]
    writer.join(5)
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "folder" / "pipe")  # in a folder, a pipe is skipped: it could block
    assert event_files([tmp_path / "folder"]) == []


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"messageId": "m" * 129}, MALFORMED),
        ({"eventType": "TEXT_" + "X" * 60}, MALFORMED),
        ({"eventTimestamp": 10**30}, MALFORMED),
        ({"eventTimestamp": 1.5e20}, MALFORMED),
        ({"eventTimestamp": -5}, MALFORMED),
        ({"messageId": "m" * 300, "eventType": None}, MISSING_FIELDS),
    ],
)
def test_keys_the_ledger_cannot_store_are_rejected(fields: dict[str, Any], reason: str) -> None:
    """An oversized key stopped the whole ingest (SQLite: an OverflowError; PostgreSQL: value too
    long for varchar(128)); on a queue that message would have blocked every batch it was in."""
    parsed = parse_document({**AWS_EXAMPLE, **fields})
    assert isinstance(parsed, Rejected) and parsed.reason == reason
    assert parsed.message_id is None or len(parsed.message_id) <= 128
    assert parsed.event_ts is None or 0 <= parsed.event_ts < 1 << 63
    assert len(parsed.fingerprint) <= 255


def test_optional_fields_out_of_range_are_dropped_not_the_event() -> None:
    parsed = parse_document(
        {
            **AWS_EXAMPLE,
            "messageStatus": "S" * 100,
            "totalMessageParts": 10**20,
            "totalMessagePrice": "NaN",
            "totalCarrierFee": float("inf"),
            "isoCountryCode": "USA",
        }
    )
    assert isinstance(parsed, DeliveryEvent)
    assert parsed.status == "S" * 64
    assert (parsed.parts, parsed.price, parsed.carrier_fee, parsed.iso_country) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("utf-8", "\ufeff"), ("utf-16", ""), ("utf-16-be", "\ufeff")],
    ids=["utf-8-bom", "utf-16-le", "utf-16-be"],
)
def test_a_byte_order_mark_or_utf16_loses_no_event(
    tmp_path: Path, encoding: str, prefix: str
) -> None:
    """A BOM made the first event malformed; a UTF-16 file (PowerShell's `>`) was all malformed."""
    path = tmp_path / "events.jsonl"
    text = prefix + "".join(json.dumps(_event(i)) + "\n" for i in range(3))
    path.write_bytes(text.encode(encoding))
    assert [getattr(p, "message_id", p) for p in read_events(path)] == ["m0", "m1", "m2"]
    zipped = tmp_path / "events.jsonl.gz"
    zipped.write_bytes(gzip.compress(("\ufeff" + text.lstrip("\ufeff")).encode("utf-8")))
    assert [getattr(p, "message_id", p) for p in read_events(zipped)] == ["m0", "m1", "m2"]
