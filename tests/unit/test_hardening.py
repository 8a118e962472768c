"""Issue 13's pure pieces, as tables: masking URL passwords in texts, the stop note."""

from __future__ import annotations

import signal

import pytest

from campaign.cli.signals import stop_note
from campaign.errors import mask_url_secrets

MASKS = [
    # botocore's messages quote the endpoint URL
    (
        'Could not connect to the endpoint URL: "http://admin:pw@127.0.0.1:4599/"',
        'Could not connect to the endpoint URL: "http://admin:***@127.0.0.1:4599/"',
    ),
    # a lone userinfo is usually a token: masked whole
    ("https://tok3n@sms.example.com/x", "https://***@sms.example.com/x"),
    # an unescaped @ in the password: up to the last @ before the host
    ("http://a:p@ss@host:1/", "http://a:***@host:1/"),
    ("ftp://u:@h", "ftp://u:***@h"),
    # two URLs in one text
    ("http://a:1@x and https://b:2@y", "http://a:***@x and https://b:***@y"),
    # no userinfo: unchanged
    ("mail admin@example.com", "mail admin@example.com"),
    ("http://host/path@x", "http://host/path@x"),
    ("http://host?q=a@b", "http://host?q=a@b"),
    ("http://host:4599/", "http://host:4599/"),
]


@pytest.mark.parametrize(("text", "masked"), MASKS)
def test_mask_url_secrets(text: str, masked: str) -> None:
    assert mask_url_secrets(text) == masked


def test_stop_note_names_the_signal() -> None:
    assert stop_note(signal.SIGINT, "x") == "Stopping: x (Ctrl-C again to quit at once)"
    assert "got SIGTERM" in stop_note(signal.SIGTERM, "x")
    assert "got SIGHUP" in stop_note(signal.SIGHUP, "x")


def test_an_internal_error_line_masks_a_quoted_password() -> None:
    from campaign.cli.errors import unexpected_error_line

    exc = ValueError("invalid interpolation syntax in 'postgresql+psycopg://u:p%40ss@db/x' at 28")
    line = unexpected_error_line(exc)
    assert "postgresql+psycopg://u:***@db/x" in line and "p%40ss" not in line
