"""Issue 13 item 4: a wrong endpoint delivers nothing, so it must not burn the campaign into
`unknown`. An HTML page (a web server), https:// on a plain-http port, ftp://: `send` halts before
the first claim (one call proves the endpoint speaks the API) or after the first such answer, exits
4 with one line, and every recipient stays `pending`."""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign.simulator.server import Simulator, SimulatorConfig
from tests.helpers import Cli, serving, write_csv

pytestmark = pytest.mark.slow

PAGE = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
N = 30


class _Html(http.server.BaseHTTPRequestHandler):
    """A web server: an HTML page for every POST. With `answer_describe`, DescribeConfigurationSets
    gets a JSON answer, as a proxy that passes some paths through might."""

    answer_describe = False
    sends = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target") or ""
        if self.answer_describe and target.endswith("DescribeConfigurationSets"):
            body, kind = b'{"ConfigurationSets": []}', "application/x-amz-json-1.0"
        else:
            type(self).sends += target.endswith("SendTextMessage")
            body, kind = PAGE, "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    with serving(type("Html", (_Html,), {})) as url:
        yield url


@pytest.fixture
def half_proxy() -> Iterator[tuple[str, type[_Html]]]:
    handler = type("HalfProxy", (_Html,), {"answer_describe": True, "sends": 0})
    with serving(handler) as url:
        yield url, handler


def _campaign(run: Cli, tmp_path: Path) -> None:
    # A configuration set, so the only line on stderr is the one that explains the halt.
    run(
        "create",
        "c1",
        "-o",
        "+12065550100",
        "-m",
        "Hi {name}",
        "--configuration-set",
        "default",
        "--no-window",
    )
    lines = ["name,phone"] + [f"Sam{i},+1206555{i:04d}" for i in range(N)]
    run("import", "c1", str(write_csv(tmp_path / "c1.csv", "\n".join(lines) + "\n")))


def _send_halts(run: Cli, endpoint: str) -> str:
    result = run("--endpoint-url", endpoint, "send", "c1", "--yes", "--mps", "50", code=4)
    counts = run.json("status", "c1", "--json")["counts"]
    assert counts["pending"] == N and counts["unknown"] == 0 and counts["sending"] == 0
    assert "<html" not in result.stderr.lower() and "<html" not in result.stdout.lower()
    return str(result.stderr)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def test_a_web_server_is_refused_before_any_claim(
    run: Cli, tmp_path: Path, web_server: str
) -> None:
    _campaign(run, tmp_path)
    line = _one_line(_send_halts(run, web_server))
    assert f"{web_server} is not the AWS End User Messaging SMS API" in line
    assert "an HTML page" in line and "every recipient is still pending" in line
    assert run.json("status", "c1", "--json")["last_run"] is None  # halted before any run


def test_an_html_answer_to_a_send_halts_after_the_first(
    run: Cli, tmp_path: Path, half_proxy: tuple[str, type[_Html]]
) -> None:
    url, handler = half_proxy
    _campaign(run, tmp_path)
    err = _send_halts(run, url)
    assert "does not speak the AWS End User Messaging SMS API" in err
    assert "an HTTP 200 answer with an HTML page" in err
    # Halted at the first answer: only the calls already in flight went out, not the list.
    assert 1 <= handler.sends < N


def test_https_on_an_http_port_is_refused(run: Cli, tmp_path: Path) -> None:
    _campaign(run, tmp_path)
    with Simulator(SimulatorConfig()) as sim:
        line = _one_line(_send_halts(run, sim.url.replace("http://", "https://")))
        assert sim.stats().operations.get("SendTextMessage", 0) == 0
    assert "TLS handshake" in line and "WRONG_VERSION_NUMBER" in line


def test_an_unsupported_scheme_is_refused(run: Cli, tmp_path: Path) -> None:
    _campaign(run, tmp_path)
    line = _one_line(_send_halts(run, "ftp://user:pw@127.0.0.1:21/"))
    assert "the scheme ftp://" in line and "user:***@" in line and ":pw@" not in line
