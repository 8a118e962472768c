"""boto3 clients for SQS and SNS, where delivery events arrive (SNS topic -> SQS queue).

Made through a normal boto3 session, like the SMS client (campaign.aws.sms), so AWS_PROFILE,
AWS_REGION, the credential chain and the per-service endpoint variables (`AWS_ENDPOINT_URL_SQS`,
`AWS_ENDPOINT_URL_SNS`, or `AWS_ENDPOINT_URL`) keep working; the tests reach moto's server that way.
The SMS `--endpoint-url` does not apply here: it names the SMS endpoint only.

Unlike SendTextMessage, receiving and deleting are safe to repeat, so botocore's standard retries
stay on.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, NoRegionError, ProfileNotFound

from campaign.aws.sms import SmsConfigError, is_loopback

# https://sqs.us-east-1.amazonaws.com/123456789012/name (also the legacy us-east-1.queue form)
_AWS_QUEUE_HOST = re.compile(
    r"(?:sqs[.-](?P<a>[a-z0-9-]+)|(?P<b>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$"
)
LOCAL_REGION = "us-east-1"  # what a local endpoint (moto) gets when no region is configured


class AwsConfigError(SmsConfigError):
    """The SQS or SNS client cannot be made: one line."""


def queue_region(queue_url: str) -> str | None:
    """The region an AWS queue URL names (None for another host, e.g. a local moto server)."""
    match = _AWS_QUEUE_HOST.search(urlparse(queue_url).hostname or "")
    if match is None:
        return None
    return match.group("a") or match.group("b")


def configured_endpoint(service: str) -> str | None:
    """The endpoint boto3 takes from the environment for `service` (`sqs`, `sns`), if any."""
    return os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get(
        "AWS_ENDPOINT_URL"
    )


def make_client(
    service: str,
    *,
    profile: str | None = None,
    region: str | None = None,
    queue_url: str | None = None,
    max_connections: int = 10,
) -> Any:
    """An `sqs` or `sns` client. With `queue_url`: the region comes from the URL when none is
    configured, and a queue URL that is not AWS's (a local moto server) is also the endpoint when
    the environment names none (SQS's JSON protocol posts to the endpoint, not to the queue URL)."""
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise AwsConfigError(str(exc)) from None
    kwargs: dict[str, Any] = {
        "config": Config(
            retries={"mode": "standard"},
            max_pool_connections=max(max_connections, 1),
            # Long polling holds a receive for up to 20 s: the read timeout must outlast it.
            read_timeout=60,
            tcp_keepalive=True,
        )
    }
    endpoint = configured_endpoint(service)
    if queue_url and endpoint is None and queue_region(queue_url) is None:
        parsed = urlparse(queue_url)
        if parsed.scheme in ("http", "https") and parsed.netloc:
            endpoint = kwargs["endpoint_url"] = f"{parsed.scheme}://{parsed.netloc}"
    local = is_loopback(endpoint)
    if session.region_name is None:
        guessed = queue_region(queue_url) if queue_url else None
        if guessed is None and local:
            guessed = LOCAL_REGION
        if guessed is not None:
            kwargs["region_name"] = guessed
    if local and session.get_credentials() is None:
        kwargs["aws_access_key_id"] = "local"
        kwargs["aws_secret_access_key"] = "local"
    try:
        client = session.client(service, **kwargs)  # type: ignore[call-overload]
    except NoRegionError:
        raise AwsConfigError(
            "no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)"
        ) from None
    except (BotoCoreError, ValueError) as exc:
        raise AwsConfigError(f"cannot create the {service.upper()} client: {exc}") from None
    if not local and session.get_credentials() is None:
        raise AwsConfigError(
            "no AWS credentials found: configure a profile (--profile / AWS_PROFILE) or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    return client


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
