"""What to do with each outcome of a SendTextMessage call: a pure policy, tested as a table.

`classify` maps the call's result (the response dict, or the exception it raised) to a `Decision`;
`retry_delay` says how long to wait before trying the same recipient again, or None to stop.

The line that matters is *could the message have been sent?* SendTextMessage has no idempotency
token, so a call is retried only when the service provably did not act on it: an error response
(throttle, 5xx with a parsed error) or a connection that failed before the request was written.
Anything after the request went out that is not a parsed answer (a read timeout, a dropped
connection, an unparsed 5xx from a proxy, an exception nobody expected) is UNKNOWN.

RETRY and HALT both mean "not sent": the recipient goes back to `pending`. HALT means no other
recipient can succeed either (credentials, permissions, spend limit, a missing or inactive
origination identity or configuration set): the sender stops claiming and exits 4, and
`Outcome.reason` tells the user what to fix. An error that concerns the origination only for some
destination countries (INVALID_IDENTITY_FOR_DESTINATION_COUNTRY, NO_ORIGINATION_IDENTITIES_FOUND
from a pool without a number for that country, SENDER_ID_NOT_REGISTERED, which is registered per
country) is FAILED for that recipient, so the rest of the campaign still goes out.
"""

from __future__ import annotations

import enum
import random
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore import exceptions as bce

from campaign.aws.sms import causes, protocol_problem, ssl_reason
from campaign.errors import mask_url_secrets
from campaign.sending.pacing import backoff_delay


class Decision(enum.Enum):
    SENT = "sent"  # accepted; MessageId stored
    RETRY = "retry"  # not sent; try the same recipient again (see retry_delay)
    FAILED = "failed"  # permanent per-recipient error
    OPTED_OUT = "opted_out"  # the destination is on the opt-out list
    UNKNOWN = "unknown"  # may have been sent; never re-sent unless the user asks
    HALT = "halt"  # not sent, and nobody can be until the user fixes the account or origination


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    reason: str | None  # "<Code>: <Reason>" as stored in the ledger; for HALT, what to fix
    throttled: bool = False  # a ThrottlingException: the pacer slows down
    message_id: str | None = None


# Bounded retries for 5xx and failed connections: 5 such calls (throttled calls between them
# not counted; ~0.2+0.4+0.8+1.6 s of mean backoff). After that retry_delay returns None and the sender leaves the recipient `pending`
# (provably not sent, so safe) for the next run, and reports how many it left.
MAX_TRANSIENT_ATTEMPTS = 5
# Throttles are retried forever (the pacer slows down meanwhile); this only caps each wait.
THROTTLE_BACKOFF_CAP = 20.0
TRANSIENT_BACKOFF_CAP = 10.0
_MAX_REASON = 500

THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    }
)
OPTED_OUT_REASON = "DESTINATION_PHONE_NUMBER_OPTED_OUT"

# ConflictException reasons about the origination itself, the same for every recipient.
HALT_CONFLICT_REASONS: Mapping[str, str] = {
    "RESOURCE_NOT_ACTIVE": (
        "the origination identity or configuration set is not active: check its status in the "
        "AWS End User Messaging SMS console"
    ),
    "MESSAGE_TYPE_MISMATCH": (
        "the origination identity does not support this message type: change the campaign's "
        "--message-type or origination identity"
    ),
    "KEYWORD_MISMATCH": (
        "the keyword is not registered on the origination identity: fix --keyword or add it "
        "to the identity"
    ),
    "NUMBER_CAPABILITIES_MISMATCH": (
        "the origination number cannot send SMS: use an SMS-capable origination identity"
    ),
}
# ValidationException reasons about the request as a whole rather than one recipient.
HALT_VALIDATION_REASONS: Mapping[str, str] = {
    "CHANNEL_NOT_ENABLED": "SMS is not enabled on the origination identity or account",
    "RESOURCE_NOT_ACCESSIBLE": (
        "the origination identity or configuration set is not accessible to this account "
        "(shared resources need their full ARN)"
    ),
    "INVALID_ARN": "an ARN in the campaign's settings is malformed",
    "PARAMETERS_CANNOT_BE_USED_TOGETHER": (
        "the campaign's settings combine parameters the service does not accept together"
    ),
}
# ValidationException reasons that depend on this recipient (destination, rendered body, price
# for its country): FAILED, whatever Fields they name.
RECIPIENT_VALIDATION_REASONS = frozenset(
    {
        "CANNOT_PARSE",
        "COUNTRY_CODE_MISMATCH",
        "COUNTRY_NOT_ENABLED",
        "DESTINATION_COUNTRY_BLOCKED",
        "INTERNATIONAL_SENDING_NOT_SUPPORTED",
        "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY",
        "MAXIMUM_SIZE_EXCEEDED",
        "PRICE_OVER_THRESHOLD",
        "SENDER_ID_NOT_REGISTERED",
        "SENDER_ID_NOT_SUPPORTED",
        "SENDER_ID_REQUIRES_REGISTRATION",
    }
)
# Request members that are the same for every recipient of a campaign: a validation error that
# names only these would fail everyone, so it halts instead (nothing lost, fix and resume).
CAMPAIGN_WIDE_FIELDS = frozenset(
    name.lower()
    for name in (
        "OriginationIdentity",
        "ConfigurationSetName",
        "MessageType",
        "Keyword",
        "MaxPrice",
        "TimeToLive",
        "Context",
        "DestinationCountryParameters",
        "ProtectConfigurationId",
        "MessageFeedbackEnabled",
        "DryRun",
    )
)
# Generic AWS errors about who is calling, raised before the operation runs.
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
    }
)
# Client-side problems raised before any request is made: no recipient can be sent.
_CONFIG_ERRORS: tuple[type[BaseException], ...] = (
    bce.NoCredentialsError,
    bce.PartialCredentialsError,
    bce.CredentialRetrievalError,
    bce.TokenRetrievalError,
    bce.NoAuthTokenError,
    bce.NoRegionError,
    bce.ProfileNotFound,
)
_RESUME = "then run the same command to resume"
_WRONG_ENDPOINT = (
    "the endpoint does not speak the AWS End User Messaging SMS API (a wrong --endpoint-url, or a "
    "proxy?): nothing was sent; fix it"
)
# The ssl module's reasons for a handshake that failed: no request was written.
TLS_HANDSHAKE_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNSUPPORTED_PROTOCOL",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "NO_PROTOCOLS_AVAILABLE",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "TLSV1_ALERT_INTERNAL_ERROR",
        "TLSV1_UNRECOGNIZED_NAME",
        "TLSV1_ALERT_UNRECOGNIZED_NAME",
    }
)

# Error responses saying the request never fully reached the service (botocore's own transient
# list): not sent, retried like a 5xx.
TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)

_QUOTA_HELP: Mapping[str, str] = {
    "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT": (
        "the account's monthly SMS spend limit is reached: raise it in the AWS console "
        "(AWS End User Messaging SMS > Account settings; above the default, request it in "
        "Service Quotas)"
    ),
}
_QUOTA_DEFAULT = (
    "a service quota is exceeded ({reason}): raise it in the AWS console (Service Quotas)"
)
_ACCESS_HELP: Mapping[str, str] = {
    "ACCOUNT_DISABLED": "the AWS account is disabled for SMS: contact AWS Support",
    "INSUFFICIENT_ACCOUNT_REPUTATION": (
        "AWS stopped this account's sending because of its reputation: contact AWS Support"
    ),
}
_ACCESS_DEFAULT = (
    "access denied: the credentials in use may not call sms-voice:SendTextMessage with this "
    "origination identity; grant the permission"
)
_PARAMETER_NAME = re.compile(r'parameter(?: in input:)?\s+"?([A-Za-z]+)')


def classify(result: Mapping[str, Any] | BaseException) -> Outcome:
    """Map a SendTextMessage result (response dict or raised exception) to an Outcome."""
    if isinstance(result, Mapping):
        message_id = result.get("MessageId")
        if message_id:
            return Outcome(Decision.SENT, None, message_id=str(message_id))
        if problem := protocol_problem(result):
            # An HTML page (a web server, a captive portal): not the service, so nothing was sent.
            return _halt(_WRONG_ENDPOINT, problem)
        # A 2xx without a MessageId: accepted, perhaps, but nothing to prove it.
        return Outcome(Decision.UNKNOWN, "the service answered without a MessageId")
    if isinstance(result, bce.ClientError):
        return _classify_client_error(result)
    # Order matters: SSLError and ConnectTimeoutError are both subclasses of botocore's
    # ConnectionError (and of requests' Timeout/OSError, like ReadTimeoutError), so test the
    # specific botocore classes before the families, and never by the requests/OSError bases.
    if isinstance(result, bce.SSLError):
        if _is_certificate_error(result):
            return Outcome(
                Decision.HALT,
                _explain(
                    result,
                    "TLS certificate verification failed: check --endpoint-url, the proxy and "
                    "AWS_CA_BUNDLE",
                ),
            )
        if ssl_reason(result) in TLS_HANDSHAKE_REASONS:
            # The handshake failed, so the request was never written (https:// on an http port).
            return Outcome(
                Decision.HALT,
                _explain(
                    result,
                    "the TLS handshake failed (an https:// URL for a plain-http port, or a proxy "
                    "in the way?): fix --endpoint-url",
                ),
            )
        # urllib3 also reports TLS failures while reading the response as SSLError.
        return Outcome(Decision.UNKNOWN, _exception_text(result))
    if isinstance(result, bce.ConnectionError):
        # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError: the connection
        # (or the proxy's) was never established, so the request was never written.
        return Outcome(Decision.RETRY, _exception_text(result))
    if isinstance(result, bce.HTTPClientError) and _is_unsupported_scheme(result):
        # urllib3 refused the URL before opening any connection (ftp://...).
        return Outcome(Decision.HALT, _explain(result, _WRONG_ENDPOINT))
    if isinstance(result, bce.HTTPClientError):
        # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError, and anything else
        # urllib3 raised mid-exchange (a ProtocolError is wrapped as ConnectionClosedError).
        return Outcome(Decision.UNKNOWN, _exception_text(result))
    if isinstance(result, _CONFIG_ERRORS):
        return Outcome(Decision.HALT, _explain(result, "AWS credentials or region are missing"))
    if isinstance(result, bce.ParamValidationError):
        # botocore checked the request before sending it: certainly not sent.
        report = str(result.kwargs.get("report", result))
        text = _clip(f"ParamValidationError: {report}")
        if _mentions_only_campaign_fields(report):
            return Outcome(
                Decision.HALT, f"a campaign setting is invalid: fix it, {_RESUME} [{text}]"
            )
        return Outcome(Decision.FAILED, text)
    return Outcome(Decision.UNKNOWN, _exception_text(result))


def retry_delay(
    outcome: Outcome,
    attempt: int,
    *,
    errors: int | None = None,
    rng: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before trying the same recipient again, or None to stop trying.

    `attempt` is how many calls this run already made for this recipient (1 after the first);
    `errors` how many of them failed with a service error or a failed connection, throttles not
    counted (default: `attempt`). Throttled: always a delay (a throttled recipient is never
    dropped), growing to THROTTLE_BACKOFF_CAP. Other RETRY outcomes: until MAX_TRANSIENT_ATTEMPTS
    such errors, then None: the sender leaves the recipient `pending` (not sent, so safe) and
    reports it; the next run tries again. Throttles never count toward that cap: under throttling
    that does not depend on the rate (a steady share of every call), counting them would give up
    on recipients whose only trouble was bad luck with the throttles. Every other decision is
    final for this run: None.
    """
    if outcome.decision is not Decision.RETRY:
        return None
    if outcome.throttled:
        return backoff_delay(attempt, cap=THROTTLE_BACKOFF_CAP, rng=rng)
    errors = attempt if errors is None else errors
    if errors >= MAX_TRANSIENT_ATTEMPTS:
        return None
    return backoff_delay(errors, cap=TRANSIENT_BACKOFF_CAP, rng=rng)


def _classify_client_error(err: bce.ClientError) -> Outcome:
    response: Mapping[str, Any] = err.response
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    reason = str(response.get("Reason") or "") or None
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    if not isinstance(status, int) and code.isdigit():
        status = int(code)  # an unparsed body: botocore uses the HTTP status as the code
    parsed = bool(code) and not code.isdigit()
    fields = _field_names(response.get("Fields"))
    text = _error_text(code, reason, response.get("Fields"), message)

    if code in THROTTLE_CODES or status == 429:
        return Outcome(Decision.RETRY, text, throttled=True)
    if isinstance(status, int) and status >= 500:
        if parsed:
            return Outcome(Decision.RETRY, text)  # the service answered: it did not send
        # A bare 5xx (a proxy's 502/504 page): the service may have acted on the request.
        return Outcome(Decision.UNKNOWN, f"HTTP {status} without a service error: {text}")
    if code in TRANSIENT_CODES:
        return Outcome(Decision.RETRY, text)
    if not parsed:
        # The body is not the service's (often a whole HTML page): name it, never quote it.
        return _halt(_WRONG_ENDPOINT, protocol_problem(response) or f"an HTTP {status} answer")
    if code == "ConflictException":
        if reason == OPTED_OUT_REASON:
            return Outcome(Decision.OPTED_OUT, f"ConflictException: {OPTED_OUT_REASON}")
        if help_text := HALT_CONFLICT_REASONS.get(reason or ""):
            return _halt(help_text, text)
        return Outcome(Decision.FAILED, text)
    if code == "ValidationException":
        if reason in RECIPIENT_VALIDATION_REASONS:
            return Outcome(Decision.FAILED, text)
        if help_text := HALT_VALIDATION_REASONS.get(reason or ""):
            return _halt(help_text, text)
        if fields and all(name in CAMPAIGN_WIDE_FIELDS for name in fields):
            return _halt("the service rejected a campaign setting: fix it", text)
        return Outcome(Decision.FAILED, text)
    if code == "ServiceQuotaExceededException":
        return _halt(_QUOTA_HELP.get(reason or "", _QUOTA_DEFAULT.format(reason=reason)), text)
    if code in ("AccessDeniedException", "AccessDenied", "NotAuthorized"):
        return _halt(_ACCESS_HELP.get(reason or "", _ACCESS_DEFAULT), text)
    if code == "ResourceNotFoundException":
        return _halt(_not_found_help(response), text)
    if code in CREDENTIAL_CODES:
        return _halt("the AWS credentials were rejected: refresh or fix them", text)
    # Not in the service model. An error response means nothing was sent; FAILED would be final
    # for every recipient if it repeats, so stop and show it instead: nothing is lost.
    return _halt("unexpected error from the service", text)


def _halt(what_to_fix: str, error_text: str) -> Outcome:
    return Outcome(Decision.HALT, f"{what_to_fix}, {_RESUME} [{error_text}]")


def _not_found_help(response: Mapping[str, Any]) -> str:
    kind = str(response.get("ResourceType") or "resource")
    ident = response.get("ResourceId")
    named = f"{kind} {ident!r}" if ident else f"a {kind}"
    option = {
        "configuration-set": "--configuration-set",
        "protect-configuration": "--protect-configuration-id",
    }.get(kind, "--origination-identity")
    return f"{named} was not found: check the campaign's {option} and the --region"


def _field_names(fields: Any) -> list[str]:
    if not isinstance(fields, list):
        return []
    names = [str(f.get("Name") or "") for f in fields if isinstance(f, Mapping)]
    # "Context.key" concerns the member "Context".
    return [name.split(".")[0].split("[")[0].lower() for name in names if name]


def _error_text(code: str, reason: str | None, fields: Any, message: str) -> str:
    text = f"{code}: {reason}" if reason else code
    if isinstance(fields, list):
        described = [
            f"{f.get('Name')}: {f['Message']}" if f.get("Message") else str(f.get("Name"))
            for f in fields
            if isinstance(f, Mapping) and f.get("Name")
        ]
        if described:
            text += f" ({'; '.join(described)})"
    if message:
        text += f" - {message}"
    return _clip(text)


def _explain(exc: BaseException, what_to_fix: str) -> str:
    return f"{what_to_fix}, {_RESUME} [{_exception_text(exc)}]"


def _exception_text(exc: BaseException) -> str:
    detail = str(exc)
    return _clip(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)


def _clip(text: str) -> str:
    text = mask_url_secrets(text)  # botocore quotes the endpoint URL, userinfo and all
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _mentions_only_campaign_fields(report: str) -> bool:
    if "Unknown parameter" in report:
        return True  # the request builder is wrong: the same for every recipient
    names = {name.lower() for name in _PARAMETER_NAME.findall(report)}
    return bool(names) and names <= CAMPAIGN_WIDE_FIELDS


def _is_unsupported_scheme(exc: bce.HTTPClientError) -> bool:
    from urllib3.exceptions import URLSchemeUnknown

    return isinstance(exc.kwargs.get("error"), URLSchemeUnknown) or "URL scheme" in str(exc)


def _is_certificate_error(exc: BaseException) -> bool:
    return any(isinstance(c, ssl.SSLCertVerificationError) for c in causes(exc))
