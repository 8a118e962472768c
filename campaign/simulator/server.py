"""The simulator's HTTP server and wire protocol: what makes boto3 believe it talks to AWS.

boto3 talks to it exactly as it talks to AWS End User Messaging SMS (JSON 1.0 over HTTP/1.1,
``POST /`` with ``X-Amz-Target: PinpointSMSVoiceV2.<Operation>``, error bodies whose ``__type``
names the exception), so tests, the demo, the benchmarks and users' rehearsals all exercise
botocore's real code path (docs/aws-facts.md, "Wire protocol").

This module routes each operation to the account model (account.py) after validating the request
(validation.py), turns an ApiError into the service's error body, and carries out the injected
delivery faults that only the transport can (a dropped connection, an answer that never comes in
time). `Simulator` is the object tests hold; `run_simulator` serves until SIGINT/SIGTERM.

Nothing is ever delivered: accepted messages go to memory and, optionally, a JSON Lines log; their
delivery events go where the account sends them (account.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import socket
import socketserver
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, cast

from campaign.simulator.account import Account, SimulatorStats
from campaign.simulator.config import SimulatorConfig, is_loopback
from campaign.simulator.errors import ApiError, validation_error
from campaign.simulator.events import ErrorCallback
from campaign.simulator.validation import parse_send_request

TARGET_PREFIX = "PinpointSMSVoiceV2."
ERROR_NAMESPACE = "com.amazonaws.pinpointsmsvoicev2#"
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"

# SimulatorConfig is re-exported: `campaign.simulator.server` was the whole simulator once, and
# callers still import both from here (campaign.simulator is the preferred path).
__all__ = ["Reply", "Simulator", "SimulatorConfig", "error_body", "run_simulator"]


@dataclass(frozen=True)
class Reply:
    status: int
    payload: Mapping[str, Any]
    request_id: str
    delay_s: float = 0.0
    drop: bool = False  # close the connection without answering


def error_body(error: ApiError, request_id: str) -> dict[str, Any]:
    """The JSON 1.0 error body: botocore reads the code from __type and the message from
    "message" or "Message"; the modeled members (Reason, Fields, ...) land at the top of
    error.response."""
    body: dict[str, Any] = {
        "__type": ERROR_NAMESPACE + error.name,
        "message": error.message,
        "Message": error.message,
        **error.members,
    }
    if error.name == "InternalServerException":
        body.setdefault("RequestId", request_id)
    return body


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        request = json.loads(raw or b"{}")
    except ValueError:
        raise validation_error("CANNOT_PARSE", [], "request body is not valid JSON") from None
    if not isinstance(request, dict):
        raise validation_error("CANNOT_PARSE", [], "request body must be a JSON object")
    return request


class Simulator:
    """The simulated service: the account model behind an HTTP server on loopback."""

    def __init__(
        self, config: SimulatorConfig, *, on_event_error: ErrorCallback | None = None
    ) -> None:
        if not is_loopback(config.host):  # also checked by the config; never serve the network
            raise ValueError(f"the simulator binds to loopback only, not {config.host!r}")
        self._account = Account(config)
        self._lock = threading.Lock()  # the open connections
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._url: str | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._on_event_error = on_event_error or _print_event_error
        # X-Amz-Target operation -> handler; a new operation is one more entry.
        self._operations: Mapping[str, Callable[[dict[str, Any], str], Reply]] = {
            "SendTextMessage": self._send_text_message,
            "DescribePhoneNumbers": self._describe_phone_numbers,
            "DescribeOptedOutNumbers": self._describe_opted_out_numbers,
            # Enough of the configuration sets for `campaign events setup` (configsets.py).
            "CreateConfigurationSet": self._account_operation(
                self._account.create_configuration_set
            ),
            "DescribeConfigurationSets": self._account_operation(
                self._account.describe_configuration_sets
            ),
            "CreateEventDestination": self._account_operation(
                self._account.create_event_destination
            ),
            "UpdateEventDestination": self._account_operation(
                self._account.update_event_destination
            ),
        }

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._url is not None:
            raise RuntimeError("a simulator starts once; make a new one")
        config = self.config
        server_class = _Server6 if ":" in config.host else _Server
        self._server = server_class((config.host, config.port), _Handler, self)  # may raise
        host, port = str(self._server.server_address[0]), int(self._server.server_address[1])
        self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._account.open_log()
        self._account.start_events(self._on_event_error)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="campaign-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Where the simulator listens (still known after stop, for messages)."""
        if self._url is None:
            raise RuntimeError("simulator not started")
        return self._url

    def stop(self) -> None:
        """Stop serving and close every open connection; handler threads waiting end at once."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            # Keep-alive handler threads block reading the next request; wake them with EOF.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._account.close_log()
        self._account.stop_events(flush=True)  # what is planned goes out, due or not

    def __enter__(self) -> Simulator:
        return self.start() if self._url is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- inspection and control (the account's) ------------------------------------------

    @property
    def config(self) -> SimulatorConfig:
        return self._account.config

    def accepted(self, dry_run: bool | None = None) -> list[dict[str, Any]]:
        """Copies of the accepted-message records, oldest first; filter by dry_run if given."""
        return self._account.accepted(dry_run)

    def stats(self) -> SimulatorStats:
        return self._account.stats()

    def set_faults(self, **changes: Any) -> None:
        """Change fault rates, fail_after, mps, latency... while serving (validated as config)."""
        self._account.set_faults(**changes)

    def opt_out(self, number: str) -> None:
        self._account.opt_out(number)

    def flush_events(self, timeout: float = 30.0) -> bool:
        """Release every delivery event planned so far, without waiting for its delay."""
        return self._account.flush_events(timeout)

    def opted_out(self) -> frozenset[str]:
        return self._account.opted_out()

    def throttle_describes(self, calls: int) -> None:
        self._account.throttle_describes(calls)

    # --- request handling (called from the HTTP handler threads) -------------------------

    def _register(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if not add:
                self._connections.discard(conn)
                return
            self._connections.add(conn)
        if self._stopping.is_set():  # accepted just as stop() swept the connections
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _wait(self, seconds: float) -> None:
        # Interruptible sleep: stop() must not wait for a 30 s simulated timeout.
        if seconds > 0:
            self._stopping.wait(seconds)

    def handle(self, target: str | None, raw: bytes) -> Reply:
        """Answer one API call: `target` is the X-Amz-Target header, `raw` the JSON body."""
        request_id = str(uuid.uuid4())
        operation = (
            target[len(TARGET_PREFIX) :] if target and target.startswith(TARGET_PREFIX) else None
        )
        latency = self._account.begin_request(operation or "<unknown>")
        try:
            request = _decode(raw)
            handler = self._operations.get(operation or "")
            if handler is None:
                raise ApiError(
                    "UnknownOperationException", f"unknown or unsupported operation: {target}"
                )
            reply = handler(request, request_id)
        except Exception as unexpected:
            if not isinstance(unexpected, ApiError):
                # A bug here must still answer: a silent close would look like a lost response.
                traceback.print_exc()
                unexpected = ApiError("InternalServerException", "simulator bug", status=500)
            error = unexpected
            self._account.count_error(error)
            return Reply(error.status, error_body(error, request_id), request_id, delay_s=latency)
        return dataclasses.replace(reply, delay_s=reply.delay_s + latency)

    def _send_text_message(self, request: dict[str, Any], request_id: str) -> Reply:
        accepted = self._account.send_text_message(parse_send_request(request))
        return Reply(
            200,
            {"MessageId": accepted.message_id},
            request_id,
            delay_s=accepted.delay_s,
            drop=accepted.drop,
        )

    @staticmethod
    def _account_operation(
        operation: Callable[[dict[str, Any]], Mapping[str, Any]],
    ) -> Callable[[dict[str, Any], str], Reply]:
        """An operation whose answer is the account's result as is."""
        return lambda request, request_id: Reply(200, operation(request), request_id)

    def _describe_phone_numbers(self, request: dict[str, Any], request_id: str) -> Reply:
        return Reply(200, self._account.describe_phone_numbers(request), request_id)

    def _describe_opted_out_numbers(self, request: dict[str, Any], request_id: str) -> Reply:
        return Reply(200, self._account.describe_opted_out_numbers(request), request_id)


def _print_event_error(where: str, error: BaseException) -> None:
    # Once per sink and kind of error (the emitter dedupes): the simulator keeps serving.
    print(f"simulator: delivery events to {where} failed: {error}", file=sys.stderr, flush=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck connection never keeps the process alive
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        simulator: Simulator,
    ) -> None:
        self.simulator = simulator
        # Listen backlog: the sender opens ~150 connections at once. Set before bind/listen.
        self.request_queue_size = simulator.config.request_queue_size
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanishes mid-request (a killed sender) is routine, not worth a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError) and not self.simulator.config.verbose:
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server_version = "campaign-simulator"

    def version_string(self) -> str:
        return self.server_version

    @property
    def simulator(self) -> Simulator:
        return cast(_Server, self.server).simulator

    def setup(self) -> None:
        super().setup()
        self.simulator._register(self.connection, add=True)

    def finish(self) -> None:
        self.simulator._register(self.connection, add=False)
        with contextlib.suppress(OSError):  # the client went away first
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if self.simulator.config.verbose:
            super().log_message(format, *args)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True  # cannot find the next request without a length
            self._send(411, {"message": "Content-Length required"}, str(uuid.uuid4()))
            return
        raw = self.rfile.read(int(length))
        reply = self.simulator.handle(self.headers.get("X-Amz-Target"), raw)
        if reply.drop:
            # The request was accepted but the answer never comes: "outcome unknown".
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.simulator._wait(reply.delay_s)
        try:
            self._send(reply.status, reply.payload, reply.request_id)
        except OSError:
            self.close_connection = True  # e.g. the client's read timeout already fired

    def do_GET(self) -> None:
        # A cheap health check for scripts waiting on `campaign simulator` to come up.
        payload = {"service": "pinpoint-sms-voice-v2 simulator", **self.simulator.stats().as_dict()}
        self._send(200, payload, str(uuid.uuid4()), content_type="application/json")

    def _send(
        self,
        status: int,
        payload: Mapping[str, Any],
        request_id: str,
        content_type: str = JSON_CONTENT_TYPE,
    ) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", request_id)
        error_type = payload.get("__type")
        if isinstance(error_type, str):
            self.send_header("x-amzn-ErrorType", error_type.rsplit("#", 1)[-1])
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def run_simulator(
    config: SimulatorConfig, *, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly; on_ready(url) runs once listening."""
    stop = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous: Any = None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    simulator = Simulator(config)
    if in_main_thread:  # signal handlers can only be installed from the main thread
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        simulator.start()  # may raise OSError (port in use): the handler is restored below
        if on_ready is not None:
            on_ready(simulator.url)
        while not stop.wait(0.2):  # short waits keep Ctrl-C responsive
            pass
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
