"""The boto3 client for AWS End User Messaging SMS, and the SendTextMessage request a claim becomes.

The client comes from a normal boto3 session, so AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_* and the
credential chain all keep working. botocore's own retries are OFF: SendTextMessage has no idempotency
token, so a retry botocore made on its own after a timeout could deliver a message twice. The sender
owns every retry (campaign.sending.retry).
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    SSLError,
)
from botocore.parsers import ResponseParserError

from campaign.domain import Campaign, Claim
from campaign.errors import UserError, mask_url_secrets
from campaign.options import CONTEXT_KEY_CAMPAIGN, CONTEXT_KEY_RECIPIENT

SERVICE = "pinpoint-sms-voice-v2"
E164_RE = re.compile(r"\+[1-9][0-9]{1,18}")


class SmsConfigError(UserError):
    """The client cannot be made (no region, no credentials, unknown profile): one line."""


class WrongEndpoint(SmsConfigError):
    """The endpoint does not speak the SMS API (an unsupported scheme, a failed TLS handshake, an
    answer that is not the service's protocol, such as an HTML page): nothing can be sent there,
    so `send` halts (exit 4) with every recipient still `pending`."""


# The schemes boto3 can call; anything else (ftp://) fails every call before it is sent.
ENDPOINT_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ClientSettings:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    max_connections: int = 10
    connect_timeout: float = 5.0
    read_timeout: float = 20.0


def is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_client(settings: ClientSettings) -> Any:
    """A `pinpoint-sms-voice-v2` client with botocore's retries off.

    Against a loopback endpoint (the local simulator) missing credentials and region get harmless
    placeholders, so a rehearsal needs no AWS account at all."""
    try:
        session = boto3.session.Session(
            profile_name=settings.profile, region_name=configured_region(settings.region)
        )
    except ProfileNotFound as exc:
        raise SmsConfigError(str(exc)) from None
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=max(settings.max_connections, 1),
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        tcp_keepalive=True,
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    endpoint = settings.endpoint_url or _configured_endpoint(session)
    check_endpoint_scheme(endpoint)
    local = is_loopback(endpoint)
    if local and session.region_name is None:
        kwargs["region_name"] = "us-east-1"
    if local and session.get_credentials() is None:
        kwargs["aws_access_key_id"] = "simulator"
        kwargs["aws_secret_access_key"] = "simulator"
    try:
        client = session.client(SERVICE, **kwargs)  # type: ignore[call-overload]
    except NoRegionError:
        raise SmsConfigError(
            "no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)"
        ) from None
    except (BotoCoreError, ValueError) as exc:
        raise SmsConfigError(
            f"cannot create the SMS client: {mask_url_secrets(str(exc))}"
        ) from None
    if not local and session.get_credentials() is None:
        raise SmsConfigError(
            "no AWS credentials found: configure a profile (--profile / AWS_PROFILE) or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; for a rehearsal use --endpoint-url with "
            "`campaign simulator`"
        )
    return client


def check_endpoint_scheme(url: str | None) -> None:
    """An endpoint URL boto3 cannot call (`ftp://...`, no scheme at all) is refused up front."""
    if not url:
        return
    scheme = urlparse(url).scheme.lower()
    if scheme not in ENDPOINT_SCHEMES:
        raise WrongEndpoint(
            f"the endpoint {mask_url_secrets(url)} has "
            + (f"the scheme {scheme}://" if scheme else "no scheme")
            + ": the SMS API is called over http:// or https:// only; fix --endpoint-url "
            "(or AWS_ENDPOINT_URL)"
        )


def protocol_problem(response: Mapping[str, Any]) -> str | None:
    """What shows that an answer (a parsed response, or a ClientError's `response`) does not come
    from the SMS API, or None. The service answers in JSON (`application/x-amz-json-1.0`), errors
    included; botocore names an error it could not parse by its HTTP status."""
    meta = response.get("ResponseMetadata") or {}
    headers = meta.get("HTTPHeaders") or {}
    status = meta.get("HTTPStatusCode")
    content_type = str(headers.get("content-type") or "").split(";")[0].strip().lower()
    code = str((response.get("Error") or {}).get("Code") or "")
    if not code.isdigit() and ("json" in content_type or not content_type):
        return None  # JSON, or nothing that says otherwise
    what = {"text/html": "an HTML page", "application/xhtml+xml": "an HTML page"}.get(
        content_type, f"content of type {content_type}" if content_type else "a body of no type"
    )
    return f"an HTTP {status} answer with {what}"


def foreign_answer(exc: BaseException) -> str | None:
    """What shows that a failed call was answered by something other than an AWS API (a web
    server's HTML page, a body botocore could not parse), or None. botocore names an error whose
    body held no AWS error code by its HTTP status: an AWS answer always has a code."""
    if isinstance(exc, ResponseParserError):
        return "an answer botocore could not parse"
    if (
        isinstance(exc, ClientError)
        and str(exc.response.get("Error", {}).get("Code", "")).isdigit()
    ):
        return protocol_problem(exc.response)
    return None


# What to fix when the SMS endpoint is not the SMS API.
SMS_ENDPOINT_FIX = "--endpoint-url (or AWS_ENDPOINT_URL)"


def not_the_api(client: Any, problem: str, fix: str) -> str:
    """`http://host:port is not the SQS API: it gave an HTTP 501 answer with an HTML page; fix ...`"""
    names = {"pinpoint-sms-voice-v2": "AWS End User Messaging SMS", "sqs": "SQS", "sns": "SNS"}
    service = client.meta.service_model.service_name
    return (
        f"{mask_url_secrets(str(client.meta.endpoint_url))} is not the "
        f"{names.get(service, service)} API: it gave {problem}; fix {fix}"
    )


class NotTheApi(UserError):
    """An endpoint answered with a web page (or another protocol): one line naming it."""


def refuse_html_answers(client: Any, fix: str, doing: str) -> None:
    """Make each call of `client` that gets an HTML page raise NotTheApi (`doing: URL is not the
    SQS API: ...; fix FIX`), whatever its HTTP status: botocore would hand back an empty result for
    a 200 page (then a KeyError) and an error quoting the whole page for another status."""

    def check(http_response: Any, **_: Any) -> None:
        content_type = str(http_response.headers.get("content-type") or "").lower()
        if "html" in content_type:
            problem = f"an HTTP {http_response.status_code} answer with an HTML page"
            raise NotTheApi(f"{doing}: {not_the_api(client, problem, fix)}")

    client.meta.events.register("after-call", check)


SIMULATOR_SERVER = "campaign-simulator"  # the local simulator's Server header
_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:sms-voice:[^:]*:([0-9]{12}):")


@dataclass(frozen=True)
class Target:
    """Where a send goes, for the confirmation: AWS in a region (and the account when an answer
    named it), or another endpoint (the local simulator when it says so), its URL masked."""

    region: str | None
    endpoint_url: str | None  # masked; None: AWS's own endpoint for the region
    account: str | None = None
    simulator: bool = False

    def describe(self) -> str:
        account = f", account {self.account}" if self.account else ""
        if self.simulator:
            return f"the local simulator at {self.endpoint_url} (nothing is delivered{account})"
        if self.endpoint_url is not None:
            return f"the endpoint {self.endpoint_url} (region {self.region or '?'}{account})"
        return f"AWS End User Messaging SMS in {self.region or '?'}{account or ', account ?'}"


def check_endpoint(client: Any, identity: str | None = None) -> Target:
    """Before the first message: one cheap call (DescribeConfigurationSets) proving that the
    endpoint speaks the SMS API, and saying where the send goes. Raises WrongEndpoint for an
    answer that is not the service's protocol or a failed TLS handshake. Any answer from the
    service passes, errors included (AccessDenied: this call needs a permission the send may
    not); so does a connection that fails or times out, which the sender retries and reports as
    it does for any outage. The account comes from an ARN: a configuration set's, or the
    origination `identity` when it is one."""
    url = str(client.meta.endpoint_url)
    where = mask_url_secrets(url)
    answer: Mapping[str, Any] = {}
    try:
        answer = client.describe_configuration_sets(MaxResults=1)
    except ClientError as exc:
        answer = exc.response
    except SSLError as exc:
        raise WrongEndpoint(
            f"the TLS handshake with {where} failed ({ssl_reason(exc)}): is it an https:// URL "
            "for a plain-http port, or is a proxy in the way? Fix --endpoint-url"
        ) from None
    except BotoCoreError:
        pass
    problem = protocol_problem(answer) if answer else None
    if problem is not None:
        raise WrongEndpoint(not_the_api(client, problem, SMS_ENDPOINT_FIX))
    headers = (answer.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    arns = [str(c.get("ConfigurationSetArn") or "") for c in answer.get("ConfigurationSets") or []]
    account = next(
        (m[1] for arn in [*arns, identity or ""] if (m := _ARN_ACCOUNT.match(arn))), None
    )
    aws = (urlparse(url).hostname or "").endswith(".amazonaws.com")
    return Target(
        region=client.meta.region_name,
        endpoint_url=None if aws else where,
        account=account,
        simulator=str(headers.get("server") or "").startswith(SIMULATOR_SERVER),
    )


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception behind it, once each: its args, botocore's kwargs (which keep
    urllib3's error, itself wrapping the ssl module's), __cause__ and __context__."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen or not isinstance(current, BaseException):
            continue
        seen.add(id(current))
        yield current
        stack.extend(current.args)
        stack.extend(getattr(current, "kwargs", {}).values())
        stack.extend((current.__cause__, current.__context__))


def ssl_reason(exc: BaseException) -> str:
    """The ssl module's reason (`WRONG_VERSION_NUMBER`) behind a botocore SSLError."""
    import ssl

    for current in causes(exc):
        if isinstance(current, ssl.SSLError):
            if getattr(current, "reason", None):
                return str(current.reason)
            if named := re.search(r"\[SSL: ([A-Z0-9_]+)\]", str(current)):
                return named[1]
    return type(exc).__name__


def configured_region(region: str | None) -> str | None:
    """--region, else AWS_REGION, else None: boto3 then reads AWS_DEFAULT_REGION and the profile.

    botocore reads only AWS_DEFAULT_REGION, while the AWS CLI v2, the other SDKs and this tool's
    own help name AWS_REGION (which wins over AWS_DEFAULT_REGION where both are read)."""
    return region or os.environ.get("AWS_REGION") or None


def _configured_endpoint(session: Any) -> str | None:
    # The endpoint boto3 will use from the environment/config (AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2,
    # AWS_ENDPOINT_URL), so loopback detection works without --endpoint-url too.
    return os.environ.get("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2") or os.environ.get(
        "AWS_ENDPOINT_URL"
    )


def build_request(campaign: Campaign, claim: Claim, body: str, *, dry_run: bool) -> dict[str, Any]:
    """The SendTextMessage parameters for one recipient, with every option stored on the campaign."""
    context = dict(campaign.context)
    # Two keys of the five tie every delivery event back to the ledger.
    context[CONTEXT_KEY_CAMPAIGN] = campaign.name
    context[CONTEXT_KEY_RECIPIENT] = str(claim.recipient_id)
    request: dict[str, Any] = {
        "DestinationPhoneNumber": claim.phone,
        "OriginationIdentity": campaign.origination_identity,
        "MessageBody": body,
        "MessageType": campaign.message_type,
        "Context": context,
    }
    if campaign.configuration_set:
        request["ConfigurationSetName"] = campaign.configuration_set
    if campaign.max_price:
        request["MaxPrice"] = campaign.max_price
    if campaign.ttl is not None:
        request["TimeToLive"] = campaign.ttl
    if campaign.keyword:
        request["Keyword"] = campaign.keyword
    if campaign.country_parameters:
        request["DestinationCountryParameters"] = dict(campaign.country_parameters)
    if campaign.protect_configuration_id:
        request["ProtectConfigurationId"] = campaign.protect_configuration_id
    if campaign.message_feedback:
        request["MessageFeedbackEnabled"] = True
    if dry_run:
        request["DryRun"] = True
    return request


@dataclass(frozen=True)
class OriginationInfo:
    number_type: str | None
    iso_country: str | None
    note: str | None = None
    rate_limit: float | None = None  # MessagingLimits.RateLimits, when the API gives one


DESCRIBE_MAX_PAGES = 10  # Describe* calls are limited to about 1 request per second


def describe_origination(client: Any, identity: str) -> OriginationInfo:
    """What the API says about the origination identity (for the default MPS). Never raises.

    DescribePhoneNumbers takes ids and ARNs only, so an E.164 number is found by listing the
    account's numbers and matching `PhoneNumber`."""
    is_id = identity.startswith("phone-") or ":phone-number/" in identity
    if not (is_id or E164_RE.fullmatch(identity)):
        if identity.startswith("pool-") or ":pool/" in identity:
            return OriginationInfo(None, None, "a pool: its MPS is the sum of its members'")
        return OriginationInfo("SENDER_ID", None)
    try:
        if is_id:
            numbers = client.describe_phone_numbers(PhoneNumberIds=[identity]).get(
                "PhoneNumbers", []
            )
        else:
            numbers = []
            paginator = client.get_paginator("describe_phone_numbers")
            pages = paginator.paginate(PaginationConfig={"MaxItems": 100 * DESCRIBE_MAX_PAGES})
            for page in pages:
                numbers.extend(
                    n for n in page.get("PhoneNumbers", []) if n.get("PhoneNumber") == identity
                )
                if numbers:
                    break
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        return OriginationInfo(None, None, f"DescribePhoneNumbers said {code}")
    except (BotoCoreError, NoCredentialsError) as exc:
        return OriginationInfo(
            None, None, f"DescribePhoneNumbers failed: {mask_url_secrets(str(exc))}"
        )
    if not numbers:
        return OriginationInfo(None, None, "not among this account's phone numbers")
    first = numbers[0]
    limits = (first.get("MessagingLimits") or {}).get("RateLimits") or {}
    rate = limits.get("SMS")
    return OriginationInfo(
        first.get("NumberType"),
        first.get("IsoCountryCode"),
        rate_limit=float(rate) if isinstance(rate, int | float) and rate > 0 else None,
    )


TOLL_FREE_NPA = frozenset({"800", "833", "844", "855", "866", "877", "888"})


def guess_origination(identity: str) -> OriginationInfo:
    """The identity's type from its form alone (offline; `estimate` makes no API call)."""
    note = "guessed from its form; pass --mps for your account's figure"
    if identity.isdigit() and 3 <= len(identity) <= 8:
        return OriginationInfo("SHORT_CODE", None, note)
    if E164_RE.fullmatch(identity):
        if identity.startswith("+1"):
            kind = "TOLL_FREE" if identity[2:5] in TOLL_FREE_NPA else "TEN_DLC"
            country = "CA" if _nanp_region(identity) == "CA" else "US"
            return OriginationInfo(kind, country, note)
        return OriginationInfo("LONG_CODE", _nanp_region(identity), note)
    if identity.startswith("pool-") or ":pool/" in identity or identity.startswith("phone-"):
        return OriginationInfo(None, None, "an ID or pool: its type is not known offline")
    return OriginationInfo("SENDER_ID", None, note)


def _nanp_region(number: str) -> str | None:
    import phonenumbers

    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return None


# -- the account's opt-out lists (`campaign optouts sync`) -----------------------------------------


class OptOutListError(UserError):
    """The opt-out list cannot be read (not found, access denied, throttled for too long)."""


OPT_OUT_PAGE_SIZE = 100  # DescribeOptedOutNumbers' MaxResults ceiling
OPT_OUT_MAX_WAITS = 8  # throttles in a row before giving up: about 1+2+...+30 s = 2 minutes
OPT_OUT_MAX_WAIT_S = 30.0


def opted_out_numbers(
    client: Any,
    list_name: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_throttle: Callable[[float], None] | None = None,
    on_arn: Callable[[str], None] | None = None,
) -> Iterator[list[str]]:
    """Every number on the opt-out list `list_name`, a page at a time (boto3's paginator over
    DescribeOptedOutNumbers); `on_arn` hears the list's ARN (its region and account) from the
    first page that has it. Describe calls are limited to about one per second: a
    ThrottlingException waits (1 s, doubling, at most 30 s; `on_throttle` hears each wait) and
    goes on from the page it stopped at, so nothing is read twice or skipped. Any other error,
    or too many throttles in a row, is one line (OptOutListError)."""
    refuse_html_answers(client, SMS_ENDPOINT_FIX, f"cannot read opt-out list {list_name!r}")
    paginator = client.get_paginator("describe_opted_out_numbers")
    token: str | None = None
    waits = 0
    while True:
        config: dict[str, Any] = {"PageSize": OPT_OUT_PAGE_SIZE}
        if token is not None:
            config["StartingToken"] = token
        try:
            for page in paginator.paginate(OptOutListName=list_name, PaginationConfig=config):
                numbers = [n["OptedOutNumber"] for n in page.get("OptedOutNumbers", [])]
                token = page.get("NextToken")
                if on_arn is not None and page.get("OptOutListArn"):
                    on_arn(str(page["OptOutListArn"]))
                    on_arn = None
                waits = 0
                yield numbers
            return
        except (ClientError, ResponseParserError) as exc:
            if problem := foreign_answer(exc):  # an HTML page: --endpoint-url is not the SMS API
                raise OptOutListError(
                    f"cannot read opt-out list {list_name!r}: "
                    + not_the_api(client, problem, SMS_ENDPOINT_FIX)
                ) from None
            assert isinstance(exc, ClientError)
            code = exc.response.get("Error", {}).get("Code", "error")
            if code != "ThrottlingException" or waits >= OPT_OUT_MAX_WAITS:
                raise OptOutListError(_opt_out_problem(list_name, code, exc)) from None
        except BotoCoreError as exc:
            detail = " ".join(str(exc).split())  # botocore's parameter errors span lines
            raise OptOutListError(f"cannot read opt-out list {list_name!r}: {detail}") from None
        delay = min(2.0**waits, OPT_OUT_MAX_WAIT_S)
        waits += 1
        if on_throttle is not None:
            on_throttle(delay)
        sleep(delay)


def _opt_out_problem(list_name: str, code: str, exc: ClientError) -> str:
    message = exc.response.get("Error", {}).get("Message") or code
    if code == "ResourceNotFoundException":
        return (
            f"opt-out list {list_name!r} not found in this account and region "
            "(the list every number uses unless told otherwise is 'Default')"
        )
    if code == "ThrottlingException":
        return (
            f"reading opt-out list {list_name!r}: still throttled after {OPT_OUT_MAX_WAITS} waits"
        )
    return f"reading opt-out list {list_name!r}: {code}: {message}"
