"""An endpoint that is not AWS's (a web server's HTML page, a service that speaks another protocol)
in `events setup`, `events ingest --queue-url` and `optouts sync`: one `Error:` line naming the
endpoint and what to fix, never the page itself over a dozen lines or an internal error."""

from __future__ import annotations

import http.server
from collections.abc import Iterator

import pytest

from campaign.simulator.server import Simulator
from tests.events.conftest import Moto
from tests.helpers import Cli, serving

PAGE = b"<!DOCTYPE html>\n<html>\n<body>\n<h1>Error response</h1>\n</body>\n</html>\n"


@pytest.fixture(params=[200, 501])
def web_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A web server answering every POST with an HTML page (status 200 or 501)."""
    status = request.param

    class Html(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Html) as url:
        yield url


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert "internal error" not in lines[0] and "<html" not in lines[0].lower()
    return lines[0]


def test_setup_with_a_web_server_as_the_sms_endpoint(run: Cli, moto: Moto, web_server: str) -> None:
    result = run(
        "--endpoint-url", web_server, "events", "setup", "--configuration-set", "m", code=1
    )
    line = one_error_line(result.stderr)
    assert f"{web_server} is not the AWS End User Messaging SMS API" in line
    assert "fix --endpoint-url" in line


def test_setup_with_the_sms_simulator_as_the_sns_endpoint(
    run: Cli, moto: Moto, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", simulator.url)  # JSON where SNS answers XML
    result = run(
        "--endpoint-url", simulator.url, "events", "setup", "--configuration-set", "m", code=1
    )
    line = one_error_line(result.stderr)
    assert f"{simulator.url} is not the SNS API" in line
    assert "AWS_ENDPOINT_URL_SNS" in line


def test_setup_with_a_web_server_as_the_sqs_endpoint(
    run: Cli, moto: Moto, simulator: Simulator, web_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", web_server)
    result = run(
        "--endpoint-url", simulator.url, "events", "setup", "--configuration-set", "m", code=1
    )
    line = one_error_line(result.stderr)
    assert f"{web_server} is not the SQS API" in line
    assert "AWS_ENDPOINT_URL_SQS" in line


def test_ingest_from_a_web_server(run: Cli, web_server: str) -> None:
    queue = f"{web_server}/123456789012/events"
    result = run("events", "ingest", "--queue-url", queue, "--until-empty", code=1)
    line = one_error_line(result.stderr)
    assert f"cannot read queue {queue}: {web_server} is not the SQS API" in line


def test_optouts_sync_from_a_web_server(run: Cli, web_server: str) -> None:
    result = run("--endpoint-url", web_server, "optouts", "sync", code=1)
    line = one_error_line(result.stderr)
    assert f"{web_server} is not the AWS End User Messaging SMS API" in line
    assert run.json("suppress", "list", "--json") == []
