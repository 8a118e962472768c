"""The retry policy as a table: what each SendTextMessage result means for the recipient.

Rows build the exceptions botocore really raises; a few tests at the end get them from boto3's
real code path against a tiny local endpoint, to check the facts the table assumes (Reason at the
top level of `error.response`, which class a timeout or a dropped connection becomes).
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import pytest
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ProxyConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)

from campaign.sending.retry import (
    MAX_TRANSIENT_ATTEMPTS,
    THROTTLE_BACKOFF_CAP,
    TRANSIENT_BACKOFF_CAP,
    Decision,
    Outcome,
    classify,
    retry_delay,
)
from tests.helpers import serving

URL = "https://sms-voice.us-east-1.amazonaws.com/"


def client_error(
    code: str,
    *,
    status: int = 400,
    reason: str | None = None,
    message: str = "",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ClientError:
    """A ClientError shaped as botocore builds it: modeled members at the top level."""
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    if headers is not None:
        response["ResponseMetadata"]["HTTPHeaders"] = headers
    if reason is not None:
        response["Reason"] = reason
    response.update(extra)
    return ClientError(response, "SendTextMessage")  # type: ignore[arg-type]


HTML = {"content-type": "text/html; charset=utf-8"}


def ssl_error(inner: ssl.SSLError) -> SSLError:
    # As botocore's httpsession wraps it: urllib3's SSLError around the ssl module's error.
    return SSLError(endpoint_url=URL, error=urllib3.exceptions.SSLError(inner))


def param_error(report: str) -> ParamValidationError:
    return ParamValidationError(report=report)


@dataclass(frozen=True)
class Row:
    result: dict[str, Any] | BaseException
    decision: Decision
    # Exact reason; for HALT rows, a phrase the explanation must contain.
    reason: str | None
    throttled: bool = False


OPTED_OUT = "DESTINATION_PHONE_NUMBER_OPTED_OUT"

TABLE: dict[str, Row] = {
    # --- accepted --------------------------------------------------------------------------------
    "message id": Row({"MessageId": "m-1"}, Decision.SENT, None),
    # a 2xx without a MessageId proves nothing: never assume either way
    "no message id": Row(
        {"ResponseMetadata": {}}, Decision.UNKNOWN, "the service answered without a MessageId"
    ),
    # --- throttled: not sent, the pacer slows down, the same recipient is retried ----------------
    "throttling": Row(
        client_error("ThrottlingException", message="Rate exceeded"),
        Decision.RETRY,
        "ThrottlingException - Rate exceeded",
        throttled=True,
    ),
    # an unparsed 429 (say, from a proxy) is a throttle too
    "bare 429": Row(client_error("429", status=429), Decision.RETRY, "429", throttled=True),
    # --- the service answered with a 5xx error: not sent, retried (bounded) ----------------------
    "internal server error": Row(
        client_error("InternalServerException", status=500, message="oops"),
        Decision.RETRY,
        "InternalServerException - oops",
    ),
    "service unavailable": Row(
        client_error("ServiceUnavailableException", status=503),
        Decision.RETRY,
        "ServiceUnavailableException",
    ),
    # the service never got the whole request: botocore's own transient list
    "request timeout": Row(
        client_error("RequestTimeoutException"), Decision.RETRY, "RequestTimeoutException"
    ),
    # --- a 5xx that is NOT a service error (a proxy's HTML page): it may have reached AWS ---------
    "bare 502": Row(
        client_error("502", status=502, message="Bad Gateway"),
        Decision.UNKNOWN,
        "HTTP 502 without a service error: 502 - Bad Gateway",
    ),
    "bare 504": Row(
        client_error("504", status=504), Decision.UNKNOWN, "HTTP 504 without a service error: 504"
    ),
    # --- the connection failed before the request was written: retried --------------------------
    "endpoint unreachable": Row(
        EndpointConnectionError(endpoint_url=URL),
        Decision.RETRY,
        f'EndpointConnectionError: Could not connect to the endpoint URL: "{URL}"',
    ),
    # ConnectTimeoutError is a requests Timeout like ReadTimeoutError, but happens before sending
    "connect timeout": Row(
        ConnectTimeoutError(endpoint_url=URL),
        Decision.RETRY,
        f'ConnectTimeoutError: Connect timeout on endpoint URL: "{URL}"',
    ),
    "proxy unreachable": Row(
        ProxyConnectionError(proxy_url="http://proxy:3128"),
        Decision.RETRY,
        'ProxyConnectionError: Failed to connect to proxy URL: "http://proxy:3128"',
    ),
    # --- after the request went out, with no answer: the message may be sent ---------------------
    "read timeout": Row(
        ReadTimeoutError(endpoint_url=URL),
        Decision.UNKNOWN,
        f'ReadTimeoutError: Read timeout on endpoint URL: "{URL}"',
    ),
    "connection closed": Row(
        ConnectionClosedError(endpoint_url=URL),
        Decision.UNKNOWN,
        "ConnectionClosedError: Connection was closed before we received a valid response "
        f'from endpoint URL: "{URL}".',
    ),
    "response stream broken": Row(
        ResponseStreamingError(error="reset"),
        Decision.UNKNOWN,
        "ResponseStreamingError: An error occurred while reading from response stream: reset",
    ),
    "generic http client error": Row(
        HTTPClientError(error=urllib3.exceptions.ProtocolError("Connection aborted.")),
        Decision.UNKNOWN,
        "HTTPClientError: An HTTP Client raised an unhandled exception: Connection aborted.",
    ),
    "raw urllib3 protocol error": Row(
        urllib3.exceptions.ProtocolError("Connection aborted."),
        Decision.UNKNOWN,
        "ProtocolError: Connection aborted.",
    ),
    # SSLError subclasses botocore's ConnectionError, but urllib3 raises it mid-exchange too
    "tls error": Row(
        ssl_error(ssl.SSLError(1, "bad record mac")),
        Decision.UNKNOWN,
        f"SSLError: SSL validation failed for {URL} bad record mac",
    ),
    "anything unexpected": Row(RuntimeError("boom"), Decision.UNKNOWN, "RuntimeError: boom"),
    "interrupted mid-call": Row(KeyboardInterrupt(), Decision.UNKNOWN, "KeyboardInterrupt"),
    # --- per-recipient answers: final for this recipient, the campaign goes on --------------------
    "opted out": Row(
        client_error("ConflictException", reason=OPTED_OUT, message="opted out"),
        Decision.OPTED_OUT,
        f"ConflictException: {OPTED_OUT}",
    ),
    "sandbox, unverified destination": Row(
        client_error("ConflictException", reason="DESTINATION_PHONE_NUMBER_NOT_VERIFIED"),
        Decision.FAILED,
        "ConflictException: DESTINATION_PHONE_NUMBER_NOT_VERIFIED",
    ),
    # a pool without a number for this destination's country: the other countries still go out
    "pool cannot reach the country": Row(
        client_error("ConflictException", reason="NO_ORIGINATION_IDENTITIES_FOUND"),
        Decision.FAILED,
        "ConflictException: NO_ORIGINATION_IDENTITIES_FOUND",
    ),
    "country blocked by protect configuration": Row(
        client_error(
            "ConflictException", reason="DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION"
        ),
        Decision.FAILED,
        "ConflictException: DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION",
    ),
    "bad destination number": Row(
        client_error(
            "ValidationException",
            reason="INVALID_PARAMETER",
            message="Invalid destination",
            Fields=[{"Name": "DestinationPhoneNumber", "Message": "not a number"}],
        ),
        Decision.FAILED,
        "ValidationException: INVALID_PARAMETER (DestinationPhoneNumber: not a number) - Invalid destination",
    ),
    # MaxPrice is campaign-wide, but the price it is compared with is per destination country
    "over max price": Row(
        client_error(
            "ValidationException", reason="PRICE_OVER_THRESHOLD", Fields=[{"Name": "MaxPrice"}]
        ),
        Decision.FAILED,
        "ValidationException: PRICE_OVER_THRESHOLD (MaxPrice)",
    ),
    "identity cannot reach the country": Row(
        client_error("ValidationException", reason="INVALID_IDENTITY_FOR_DESTINATION_COUNTRY"),
        Decision.FAILED,
        "ValidationException: INVALID_IDENTITY_FOR_DESTINATION_COUNTRY",
    ),
    # sender IDs are registered per destination country
    "sender id not registered": Row(
        client_error("ValidationException", reason="SENDER_ID_NOT_REGISTERED"),
        Decision.FAILED,
        "ValidationException: SENDER_ID_NOT_REGISTERED",
    ),
    "body too long": Row(
        client_error("ValidationException", reason="MAXIMUM_SIZE_EXCEEDED"),
        Decision.FAILED,
        "ValidationException: MAXIMUM_SIZE_EXCEEDED",
    ),
    "validation without reason": Row(
        client_error("ValidationException", message="1 validation error"),
        Decision.FAILED,
        "ValidationException - 1 validation error",
    ),
    # botocore refused this recipient's request before sending it
    "client-side check of the destination": Row(
        param_error(
            "Invalid length for parameter DestinationPhoneNumber, value: 0, valid min length: 1"
        ),
        Decision.FAILED,
        "ParamValidationError: Invalid length for parameter DestinationPhoneNumber, value: 0, "
        "valid min length: 1",
    ),
    # --- account or origination problems: nobody can be sent; stop, keep them pending -------------
    "monthly spend limit": Row(
        client_error(
            "ServiceQuotaExceededException", reason="MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"
        ),
        Decision.HALT,
        "monthly SMS spend limit is reached",
    ),
    "other quota": Row(
        client_error("ServiceQuotaExceededException", reason="DAILY_DESTINATION_CALL_LIMIT"),
        Decision.HALT,
        "a service quota is exceeded (DAILY_DESTINATION_CALL_LIMIT)",
    ),
    "iam denies the call": Row(
        client_error("AccessDeniedException", message="not authorized"),
        Decision.HALT,
        "may not call sms-voice:SendTextMessage",
    ),
    "account disabled": Row(
        client_error("AccessDeniedException", reason="ACCOUNT_DISABLED"),
        Decision.HALT,
        "the AWS account is disabled for SMS",
    ),
    "unknown configuration set": Row(
        client_error(
            "ResourceNotFoundException", ResourceType="configuration-set", ResourceId="cs-1"
        ),
        Decision.HALT,
        "configuration-set 'cs-1' was not found: check the campaign's --configuration-set",
    ),
    "unknown origination number": Row(
        client_error("ResourceNotFoundException", ResourceType="phone-number", ResourceId="+1555"),
        Decision.HALT,
        "phone-number '+1555' was not found: check the campaign's --origination-identity",
    ),
    "origination not active": Row(
        client_error("ConflictException", reason="RESOURCE_NOT_ACTIVE"),
        Decision.HALT,
        "is not active",
    ),
    "message type not allowed on the identity": Row(
        client_error("ConflictException", reason="MESSAGE_TYPE_MISMATCH"),
        Decision.HALT,
        "does not support this message type",
    ),
    # a validation error that names only campaign-wide members would fail every recipient
    "origination identity rejected": Row(
        client_error(
            "ValidationException",
            reason="INVALID_PARAMETER",
            Fields=[{"Name": "OriginationIdentity", "Message": "bad"}],
        ),
        Decision.HALT,
        "the service rejected a campaign setting",
    ),
    "shared identity without its ARN": Row(
        client_error("ValidationException", reason="RESOURCE_NOT_ACCESSIBLE"),
        Decision.HALT,
        "not accessible to this account",
    ),
    "credentials rejected": Row(
        client_error("UnrecognizedClientException", message="The security token is invalid"),
        Decision.HALT,
        "the AWS credentials were rejected",
    ),
    "token expired": Row(
        client_error("ExpiredTokenException"), Decision.HALT, "credentials were rejected"
    ),
    # a 4xx that is not the service's JSON (a proxy refusing us): nothing was sent
    "bare 403": Row(
        client_error("403", status=403), Decision.HALT, "does not speak the AWS End User Messaging"
    ),
    # a web server's page (issue 13 item 4): named, never quoted, and nothing was sent
    "html 404": Row(
        client_error(
            "404", status=404, message="<html><body>Not Found</body></html>", headers=HTML
        ),
        Decision.HALT,
        "nothing was sent; fix it, then run the same command to resume [an HTTP 404 answer with "
        "an HTML page]",
    ),
    "html 200": Row(
        {"ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": HTML}},
        Decision.HALT,
        "[an HTTP 200 answer with an HTML page]",
    ),
    # https:// on a plain-http port: the handshake failed, the request was never written
    "tls handshake failed": Row(
        ssl_error(
            ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
        ),
        Decision.HALT,
        "the TLS handshake failed",
    ),
    "unsupported scheme": Row(
        HTTPClientError(error=urllib3.exceptions.URLSchemeUnknown("ftp")),
        Decision.HALT,
        "does not speak the AWS End User Messaging SMS API",
    ),
    # not in the service model: halting keeps everyone pending instead of failing them all
    "unmodeled error": Row(
        client_error("BrandNewException"), Decision.HALT, "unexpected error from the service"
    ),
    "no credentials": Row(
        NoCredentialsError(), Decision.HALT, "AWS credentials or region are missing"
    ),
    "no region": Row(NoRegionError(), Decision.HALT, "AWS credentials or region are missing"),
    "client-side check of a campaign setting": Row(
        param_error(
            "Invalid length for parameter OriginationIdentity, value: 0, valid min length: 1"
        ),
        Decision.HALT,
        "a campaign setting is invalid",
    ),
    "untrusted certificate": Row(
        ssl_error(ssl.SSLCertVerificationError(1, "certificate verify failed")),
        Decision.HALT,
        "TLS certificate verification failed",
    ),
}


@pytest.mark.parametrize("row", TABLE.values(), ids=TABLE.keys())
def test_retry_policy_table(row: Row) -> None:
    outcome = classify(row.result)
    assert outcome.decision is row.decision
    assert outcome.throttled is row.throttled
    if row.decision is Decision.HALT:
        assert row.reason is not None and outcome.reason is not None
        assert row.reason in outcome.reason
        # every halt says what to do next and keeps the service's own words for support
        assert "then run the same command to resume [" in outcome.reason
    else:
        assert outcome.reason == row.reason


def test_sent_keeps_the_message_id() -> None:
    assert classify({"MessageId": "abc-123"}) == Outcome(Decision.SENT, None, message_id="abc-123")


def test_halt_reason_names_the_service_error() -> None:
    outcome = classify(
        client_error("ServiceQuotaExceededException", reason="MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT")
    )
    assert outcome.reason is not None
    assert outcome.reason.endswith(
        "[ServiceQuotaExceededException: MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT]"
    )


def test_long_service_messages_are_clipped() -> None:
    outcome = classify(client_error("ValidationException", message="x" * 5000))
    assert outcome.reason is not None and len(outcome.reason) == 500


def test_error_factory_subclasses_classify_like_client_error() -> None:
    client = boto3.client(
        "pinpoint-sms-voice-v2",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    response: Any = {
        "Error": {"Code": "ConflictException", "Message": "opted out"},
        "ResponseMetadata": {"HTTPStatusCode": 400},
        "Reason": OPTED_OUT,
    }
    error = client.exceptions.ConflictException(response, "SendTextMessage")
    assert classify(error).decision is Decision.OPTED_OUT


# --- retry_delay ------------------------------------------------------------------------------------

THROTTLED = Outcome(Decision.RETRY, "ThrottlingException", throttled=True)
SERVER_ERROR = Outcome(Decision.RETRY, "InternalServerException")


@pytest.mark.parametrize(
    "decision",
    [Decision.SENT, Decision.FAILED, Decision.OPTED_OUT, Decision.UNKNOWN, Decision.HALT],
)
def test_final_decisions_are_not_retried(decision: Decision) -> None:
    assert retry_delay(Outcome(decision, None), 1) is None


def test_throttled_recipient_is_never_dropped() -> None:
    for attempt in [1, 2, 5, 10, 100, 10_000]:
        delay = retry_delay(THROTTLED, attempt, rng=lambda: 1.0)
        assert delay is not None and 0 < delay <= THROTTLE_BACKOFF_CAP


def test_throttle_backoff_grows_to_its_cap() -> None:
    delays = [retry_delay(THROTTLED, attempt, rng=lambda: 1.0) for attempt in range(1, 12)]
    assert delays[:4] == pytest.approx([0.2, 0.4, 0.8, 1.6])
    assert delays == sorted(delays)  # type: ignore[type-var]
    assert delays[-1] == THROTTLE_BACKOFF_CAP


def test_backoff_is_jittered_between_zero_and_the_exponential() -> None:
    assert retry_delay(THROTTLED, 3, rng=lambda: 0.0) == 0.0
    assert retry_delay(THROTTLED, 3, rng=lambda: 0.5) == pytest.approx(0.4)


def test_server_errors_are_retried_a_bounded_number_of_times() -> None:
    for attempt in range(1, MAX_TRANSIENT_ATTEMPTS):
        delay = retry_delay(SERVER_ERROR, attempt, rng=lambda: 1.0)
        assert delay is not None and 0 < delay <= TRANSIENT_BACKOFF_CAP
    # after that the sender leaves the recipient pending (not sent) for the next run
    assert retry_delay(SERVER_ERROR, MAX_TRANSIENT_ATTEMPTS) is None
    assert retry_delay(SERVER_ERROR, MAX_TRANSIENT_ATTEMPTS + 10) is None


def test_throttles_never_count_toward_the_bound_on_errors() -> None:
    # Issue 8: 10 calls throttled, then a 500: the first error of this recipient, so retried.
    assert retry_delay(SERVER_ERROR, 11, errors=1) is not None
    assert retry_delay(SERVER_ERROR, 11, errors=MAX_TRANSIENT_ATTEMPTS - 1) is not None
    assert retry_delay(SERVER_ERROR, 11, errors=MAX_TRANSIENT_ATTEMPTS) is None
    # the backoff grows with the errors, not with the throttles before them
    assert retry_delay(SERVER_ERROR, 11, errors=1, rng=lambda: 1.0) == pytest.approx(0.2)


def test_connection_errors_use_the_same_bound() -> None:
    outcome = classify(EndpointConnectionError(endpoint_url=URL))
    assert retry_delay(outcome, MAX_TRANSIENT_ATTEMPTS - 1) is not None
    assert retry_delay(outcome, MAX_TRANSIENT_ATTEMPTS) is None


# --- the same results through boto3's real code path --------------------------------------------


class _Endpoint(BaseHTTPRequestHandler):
    """Answers SendTextMessage according to the destination number."""

    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        destination = body["DestinationPhoneNumber"]
        if destination == "+15550000001":
            self._send(200, {"MessageId": "sim-1"})
        elif destination == "+15550000002":
            self._send(
                400,
                {
                    "__type": "com.amazonaws.pinpointsmsvoicev2#ConflictException",
                    "Message": "The destination phone number is opted out.",
                    "Reason": OPTED_OUT,
                    "ResourceType": "opted-out-number",
                    "ResourceId": destination,
                },
            )
        elif destination == "+15550000003":
            self._send(400, {"__type": "ThrottlingException", "Message": "Rate exceeded"})
        elif destination == "+15550000004":
            self._send(500, {"__type": "InternalServerException", "Message": "oops"})
        elif destination == "+15550000005":
            self._send(502, b"<html>Bad Gateway</html>")
        elif destination == "+15550000006":
            time.sleep(1.0)  # longer than the client's read timeout
        elif destination == "+15550000007":
            self.close_connection = True  # read the request, answer nothing
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, status: int, payload: dict[str, Any] | bytes) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with serving(_Endpoint) as url:
        yield url


def _send(endpoint_url: str, destination: str) -> dict[str, Any] | BaseException:
    client = boto3.client(
        "pinpoint-sms-voice-v2",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=0.3, connect_timeout=0.3),
    )
    try:
        return dict(
            client.send_text_message(
                DestinationPhoneNumber=destination,
                OriginationIdentity="+15559990000",
                MessageBody="hi",
            )
        )
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("destination", "decision", "throttled"),
    [
        ("+15550000001", Decision.SENT, False),
        ("+15550000002", Decision.OPTED_OUT, False),  # Reason arrives at the top level
        ("+15550000003", Decision.RETRY, True),
        ("+15550000004", Decision.RETRY, False),
        ("+15550000005", Decision.UNKNOWN, False),  # an HTML 502 is not a service answer
        ("+15550000006", Decision.UNKNOWN, False),  # ReadTimeoutError
        ("+15550000007", Decision.UNKNOWN, False),  # ConnectionClosedError
    ],
)
def test_real_botocore_results(
    endpoint: str, destination: str, decision: Decision, throttled: bool
) -> None:
    before = _Endpoint.calls
    outcome = classify(_send(endpoint, destination))
    assert (outcome.decision, outcome.throttled) == (decision, throttled)
    assert _Endpoint.calls - before == 1  # one call, no botocore retry behind our back


def test_real_refused_connection_is_retried() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _send(f"http://127.0.0.1:{port}", "+15550000001")
    assert isinstance(result, EndpointConnectionError)
    assert classify(result).decision is Decision.RETRY
